"""Each intent's answer generated once, at load, and served from the cache: the same answer that generating it
for the request would give. Small random models, no training: what matters is that the cache and the per-request
generation agree token for token, whatever the weights."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.adapters.base import OUT_OF_SCOPE
from llm.adapters.custom import CustomTransformerAdapter
from llm.config import LLMSettings
from llm.custom.answer_cache import AnswerCache
from llm.custom.checkpoint import CheckpointMeta, save_checkpoint
from llm.custom.predictor import Predictor
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, GPTConfig
from llm.knowledge_base import load_knowledge_base

LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed")
TEXTS = [
    "I am still waiting on my card?",
    "What is the exchange rate for euros?",
    "Someone stole my card!",
    "My top-up didn't work.",
    "card",
    "why was I charged a fee for my cash withdrawal at the airport this morning",
    "lost",
    "",
]


def random_predictor(answers_see_question: bool = False, intent_embeddings: bool = True, threshold: float = 0.0):
    kb = load_knowledge_base()
    answers = [kb.answer(label) for label in LABELS]
    tok = BankTokenizer.train([normalize_question(t) for t in TEXTS] + answers, LABELS, vocab_size=500)
    torch.manual_seed(3)
    config = GPTConfig(
        vocab_size=tok.vocab_size,
        block_size=64,
        n_layer=2,
        n_head=2,
        n_embd=32,
        dropout=0.0,
        n_intents=len(LABELS) if intent_embeddings else 0,
        answer_sees_question=answers_see_question,
    )
    model = GPT(config).eval()
    if config.n_intents:
        torch.nn.init.normal_(model.wie.weight, std=1.0)  # each intent its own answer
    meta = CheckpointMeta(
        gpt=config, labels=list(LABELS), kb_version=kb.version, max_question_tokens=16, oos_threshold=threshold
    )
    return Predictor(model, tok, meta)


@pytest.fixture(scope="module", params=[True, False], ids=["intent-embeddings", "label-token-only"])
def predictor(request):
    return random_predictor(intent_embeddings=request.param)


def test_answers_for_is_what_respond_generates_after_that_intent(predictor):
    replies = predictor.respond(TEXTS)  # left-padded batch, answers generated per question
    assert len({r.intent.label for r in replies}) > 1  # several intents, so several answers are compared
    cached = dict(zip(LABELS, predictor.answers_for(list(LABELS)), strict=True))
    for reply in replies:
        assert (reply.answer, reply.completion_tokens, reply.finished) == cached[reply.intent.label]
    assert all(tokens > 1 for _, tokens, _ in cached.values())


def test_answers_for_refuses_a_model_whose_answers_see_the_question():
    predictor = random_predictor(answers_see_question=True)
    assert not predictor.answers_follow_intent
    with pytest.raises(ValueError, match="depend on the question"):
        predictor.answers_for(["card_arrival"])
    with pytest.raises(ValueError, match="depend on the question"):
        AnswerCache(predictor, load_knowledge_base())


def test_cache_holds_every_intent_checks_the_kb_and_generates_a_missing_one(predictor):
    kb = load_knowledge_base()
    cache = AnswerCache(predictor, kb, batch_size=3)  # two batches
    cache.fill()
    assert len(cache) == len(LABELS)
    generated = dict(zip(LABELS, predictor.answers_for(list(LABELS)), strict=True))
    assert cache.divergent == [label for label in LABELS if generated[label][0] != kb.answer(label)]
    found = cache.answers(["exchange_rate", "card_arrival"])
    assert [hit for _, hit in found] == [True, True]
    assert found[0][0].generated == generated["exchange_rate"][0]
    assert found[0][0].shown == (kb.answer("exchange_rate") if found[0][0].diverges else generated["exchange_rate"][0])
    del cache._answers["top_up_failed"]  # an intent whose generation is missing
    again = cache.answers(["top_up_failed", "card_arrival"])
    assert [hit for _, hit in again] == [False, True]
    assert again[0][0].generated == generated["top_up_failed"][0]
    assert cache.answers(["top_up_failed"])[0][1] is True  # generated once, then kept


def write_checkpoint(tmp_path, predictor):
    save_checkpoint(tmp_path / "models" / "custom", predictor.model, predictor.tok, predictor.meta)
    return CustomTransformerAdapter(LLMSettings(model_dir=tmp_path / "models"))


async def test_adapter_serves_cached_answers_equal_to_per_request_generation(tmp_path, predictor):
    adapter = write_checkpoint(tmp_path, predictor)
    kb = load_knowledge_base()
    try:
        assert adapter.get_metrics()["answer_cache_hit_rate"] is None  # before any request
        await adapter.load()
        assert adapter.answer_cache is not None and len(adapter.answer_cache) == len(LABELS)
        metrics = adapter.get_metrics()
        assert metrics["kb_divergent_intents"] == len(adapter.answer_cache.divergent)
        assert metrics["answer_cache_hit_rate"] is None  # filling the cache at load is not a request
        results = await asyncio.gather(*(adapter.generate(t) for t in TEXTS))
        own = predictor.respond(TEXTS)  # what generating for each request would give
        for result, reply in zip(results, own, strict=True):
            entry = kb.answer(reply.intent.label)
            assert result.intent == reply.intent.label
            assert result.text == (entry if reply.answer != entry else reply.answer)
            assert result.extra["kb_divergence"] is (reply.answer != entry)
            assert result.completion_tokens == reply.completion_tokens
            assert result.extra["answer_cached"] is True
        metrics = adapter.get_metrics()
        assert (metrics["answer_cache_hits"], metrics["answer_cache_misses"]) == (len(TEXTS), 0)
        assert metrics["answer_cache_hit_rate"] == 1.0
        assert metrics["kb_divergences"] == sum(r.extra["kb_divergence"] for r in results)

        missing = results[0].intent
        del adapter.answer_cache._answers[missing]  # should not happen; then it is generated and kept
        first, second = await adapter.generate(TEXTS[0]), await adapter.generate(TEXTS[0])
        assert (first.extra["answer_cached"], second.extra["answer_cached"]) == (False, True)
        assert first.text == second.text == results[0].text
        assert first.completion_tokens == results[0].completion_tokens
        metrics = adapter.get_metrics()
        assert (metrics["answer_cache_hits"], metrics["answer_cache_misses"]) == (len(TEXTS) + 1, 1)
        assert metrics["answer_cache_hit_rate"] == pytest.approx((len(TEXTS) + 1) / (len(TEXTS) + 2))
    finally:
        await adapter.aclose()


async def test_adapter_generates_per_request_when_answers_see_the_question(tmp_path):
    predictor = random_predictor(answers_see_question=True)
    adapter = write_checkpoint(tmp_path, predictor)
    try:
        result = await adapter.generate(TEXTS[1])
        reply = predictor.respond([TEXTS[1]])[0]
        entry = load_knowledge_base().answer(reply.intent.label)
        assert adapter.answer_cache is None and adapter.get_metrics()["kb_divergent_intents"] is None
        assert result.text == (entry if reply.answer != entry else reply.answer)
        assert result.completion_tokens == reply.completion_tokens and result.extra["answer_cached"] is False
        metrics = adapter.get_metrics()
        assert (metrics["answer_cache_hits"], metrics["answer_cache_misses"], metrics["answer_cache_hit_rate"]) == (
            0, 1, 0.0
        )
    finally:
        await adapter.aclose()


async def test_out_of_scope_needs_no_answer(tmp_path):
    adapter = write_checkpoint(tmp_path, random_predictor(threshold=1.01))  # nothing is confident enough
    try:
        result = await adapter.generate(TEXTS[0])
        assert result.intent == OUT_OF_SCOPE and result.text == load_knowledge_base().out_of_scope_answer
        assert result.completion_tokens == 1  # the label it decoded
        metrics = adapter.get_metrics()
        assert metrics["answer_cache_hit_rate"] is None and metrics["answers_generated"] == 0
    finally:
        await adapter.aclose()
