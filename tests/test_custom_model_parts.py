"""The custom model's parts without training: tokenizer, KV cache, constrained decoding, micro-batcher."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.custom.batcher import MicroBatcher
from llm.custom.checkpoint import CheckpointMeta
from llm.custom.constrained import LabelTrie, constrained_step
from llm.custom.predictor import Predictor
from llm.custom.tokenizer import BankTokenizer, label_token, normalize_question
from llm.custom.transformer import GPT, GPTConfig, KVCache

LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed")
TEXTS = [
    "I am still waiting on my card?",
    "What is the exchange rate for euros?",
    "Someone stole my card!",
    "My top-up didn't work.",
    "Sorry your card hasn't arrived yet.",
] * 4


@pytest.fixture(scope="module")
def tokenizer():
    return BankTokenizer.train([normalize_question(t) for t in TEXTS] + TEXTS, LABELS, vocab_size=400)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return GPT(
        GPTConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32, dropout=0.0)
    ).eval()


@pytest.mark.parametrize(
    "text",
    [
        "How do I activate my new card?",
        "Héllo  wörld £20 €5 \t tabs\nnewline",
        "Sorry your card hasn't arrived yet.",
        "🙂 emoji and 中文",
        "",
    ],
)
def test_tokenizer_round_trip(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_each_label_is_one_dedicated_token(tokenizer, tmp_path):
    for label, tid in zip(LABELS, tokenizer.label_ids, strict=True):
        assert tokenizer.encode(label_token(label)) == [tid]
    assert len(set(tokenizer.label_ids)) == len(LABELS)
    tokenizer.save(tmp_path / "tok.json")
    again = BankTokenizer.load(tmp_path / "tok.json", LABELS)
    assert again.label_ids == tokenizer.label_ids
    assert again.encode("my card is lost") == tokenizer.encode("my card is lost")


def test_normalize_question():
    assert normalize_question("  Ｈｅｌｌｏ\tWORLD \n") == "hello world"


def test_logits_equal_with_and_without_cache(model):
    torch.manual_seed(1)
    idx = torch.randint(0, model.config.vocab_size, (2, 20))
    with torch.no_grad():
        full = model(idx)
        cache = KVCache(model.config, batch_size=2)
        prefill = model(idx[:, :7], cache=cache)
        steps = [model(idx[:, t : t + 1], cache=cache) for t in range(7, 20)]
    incremental = torch.cat([prefill, *steps], dim=1)
    assert incremental.shape == full.shape
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=0)


def test_cache_overflow_is_an_error(model):
    cache = KVCache(model.config, batch_size=1, max_len=4)
    with torch.no_grad(), pytest.raises(ValueError, match="KV cache holds 4"):
        model(torch.zeros((1, 5), dtype=torch.long), cache=cache)


def _predictor(model, tokenizer):
    meta = CheckpointMeta(
        gpt=model.config, labels=list(LABELS), kb_version="test", max_question_tokens=16, oos_threshold=0.0
    )
    return Predictor(model, tokenizer, meta)


def test_left_padded_batch_equals_each_row_alone(model, tokenizer):
    predictor = _predictor(model, tokenizer)
    texts = ["card", "what is the exchange rate for my money today", "lost"]
    batch = predictor.respond(texts, max_answer_tokens=12)
    for text, together in zip(texts, batch, strict=True):
        alone = predictor.respond([text], max_answer_tokens=12)[0]
        assert together.intent.label == alone.intent.label
        assert together.intent.confidence == pytest.approx(alone.intent.confidence, abs=1e-5)
        assert together.answer == alone.answer


def test_generation_with_and_without_cache_agrees(model, tokenizer):
    predictor = _predictor(model, tokenizer)
    prompt = predictor.prompt_ids("where is my card")
    assert predictor.generate_tokens(prompt, 20, use_cache=True) == predictor.generate_tokens(prompt, 20, False)


def test_constrained_decoding_yields_only_labels(model, tokenizer):
    predictor = _predictor(model, tokenizer)
    intents = predictor.classify(["anything at all", "", "tell me a joke", "card card card"] * 3)
    for intent in intents:
        assert intent.label in LABELS
        assert 0.0 < intent.confidence <= 1.0


def test_constrained_step_never_picks_a_disallowed_token():
    torch.manual_seed(0)
    labels = [[5, 6], [5, 7, 9], [8]]  # several-token labels exercise the trie beyond depth one
    trie = LabelTrie(labels)
    for _ in range(50):
        prefixes: list[list[int]] = [[] for _ in range(4)]
        confidence = torch.ones(4)
        while not all(trie.is_complete(p) for p in prefixes):
            logits = torch.randn(4, 12) * 5
            logits[:, 0] = 100.0  # the unconstrained favourite is never allowed
            _, probs = constrained_step(logits, trie, prefixes)
            confidence *= probs
        assert all(p in labels for p in prefixes)
        assert bool((confidence > 0).all() and (confidence <= 1).all())


def test_trie_rejects_ambiguous_labels():
    with pytest.raises(ValueError, match="share"):
        LabelTrie([[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="prefix"):
        LabelTrie([[1, 2, 3], [1, 2]])


async def test_micro_batcher_groups_concurrent_requests():
    seen: list[int] = []

    def double(items: list[int]) -> list[int]:
        seen.append(len(items))
        return [2 * i for i in items]

    batcher = MicroBatcher(double, max_batch=8, window_ms=5)
    try:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
        assert results == [2 * i for i in range(20)]
        assert sum(seen) == 20 and max(seen) == 8 and len(seen) < 20
        assert await batcher.submit(7) == 14
    finally:
        batcher.close()


async def test_micro_batcher_passes_errors_to_every_caller():
    def fail(items):
        raise RuntimeError("boom")

    batcher = MicroBatcher(fail, window_ms=1)
    try:
        results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
    finally:
        batcher.close()


def test_training_sequences_put_label_and_answer_at_fixed_positions(tokenizer):
    from llm.custom.data import SequenceBuilder, label_position

    answers = ["Open the app.", "Rates are shown in the app.", "Freeze your card.", "Try again later."]
    builder = SequenceBuilder(tokenizer, answers, max_question_tokens=8)
    short, long = tokenizer.encode("card"), tokenizer.encode("what is the exchange rate for my money today")
    batch = builder.batch([(short, 0, True), (long, 1, True), (short, 2, False)])
    P = label_position(8)
    for row, (q, label) in enumerate([(short, 0), (long[:8], 1), (short, 2)]):
        sep = len(q) + 1
        assert int(batch.sep_pos[row]) == sep and int(batch.idx[row, sep]) == tokenizer.sep_id
        assert int(batch.idx[row, sep + 1]) == tokenizer.label_ids[label]
        assert int(batch.positions[row, sep]) == sep and int(batch.positions[row, sep + 1]) == P
    answer = builder.answer_ids[0]
    assert batch.targets[0][batch.answer_mask[0]].tolist() == answer  # the answer and its <eos>
    assert not batch.answer_mask[2].any()


def test_decode_step_equals_the_full_forward(model):
    """The generation hot path (one token per row, fewer ops) computes exactly what forward() does."""
    torch.manual_seed(1)
    idx = torch.randint(0, model.config.vocab_size, (2, 12))
    with torch.no_grad():
        full = model(idx)  # (2, 12, vocab)
        cache = KVCache(model.config, batch_size=2, max_len=12)
        model(idx[:, :5], cache=cache)
        steps = [model.decode_step(idx[:, t], torch.full((2,), t), cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.stack(steps, dim=1), full[:, 5:], atol=1e-5, rtol=0)


def test_decode_step_honours_the_key_mask(model):
    """With a key mask (left-padded batches), the hot path agrees with the general attention path."""
    torch.manual_seed(2)
    idx = torch.randint(0, model.config.vocab_size, (2, 6))
    mask = torch.tensor([[True] * 7, [False, False, True, True, True, True, True]])[:, None, None, :]
    nxt, positions = torch.tensor([7, 9]), torch.tensor([6, 4])
    with torch.no_grad():
        caches = [KVCache(model.config, batch_size=2, max_len=8) for _ in range(2)]
        for cache in caches:
            model(idx, cache=cache)
        fast = model.decode_step(nxt, positions, caches[0], mask)
        general = model(nxt[:, None], positions[:, None], caches[1], mask)[:, -1]
    torch.testing.assert_close(fast, general, atol=1e-5, rtol=0)


def test_last_only_prefill_gives_the_last_state_and_the_same_cache(model):
    torch.manual_seed(3)
    idx = torch.randint(0, model.config.vocab_size, (2, 9))
    with torch.no_grad():
        full_cache, last_cache = KVCache(model.config, 2, max_len=12), KVCache(model.config, 2, max_len=12)
        full = model.hidden(idx, cache=full_cache)
        last = model.hidden(idx, cache=last_cache, last_only=True)
    assert last.shape == (2, 1, model.config.n_embd)
    torch.testing.assert_close(last, full[:, -1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(last_cache.k, full_cache.k, atol=0, rtol=0)
    torch.testing.assert_close(last_cache.v, full_cache.v, atol=0, rtol=0)
