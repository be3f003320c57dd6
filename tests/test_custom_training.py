"""Train a tiny custom model once per module on a small slice of train.csv, then check what it learned,
its checkpoint, and the adapter that serves it."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from llm.adapters.base import OUT_OF_SCOPE, GenerationResult
from llm.adapters.custom import CustomTransformerAdapter
from llm.banking77 import load_split
from llm.config import LLMSettings
from llm.custom.checkpoint import checkpoint_exists, load_checkpoint
from llm.custom.predictor import Predictor
from llm.custom.train import TrainParams, train_custom
from llm.custom.transformer import GPTConfig
from llm.errors import ModelUnavailableError
from llm.knowledge_base import load_knowledge_base

INTENTS = (
    "card_arrival",
    "exchange_rate",
    "lost_or_stolen_card",
    "top_up_failed",
    "cash_withdrawal_charge",
    "pin_blocked",
    "terminate_account",
    "declined_transfer",
)
PER_INTENT = 40
NOT_BANKING = ["what's the weather like in paris?", "write me a poem about the sea", "hello"]


def tiny_params(out_dir: Path, **overrides) -> TrainParams:
    values = dict(
        out_dir=out_dir,
        seed=7,
        vocab_size=600,
        epochs=14,
        batch_size=32,
        lr=3e-3,
        warmup_steps=10,
        gpt=GPTConfig(block_size=256, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
        intents=INTENTS,
        per_intent=PER_INTENT,
        val_fraction=0.15,
        p_answer=0.4,
        n_out_of_scope=80,
        max_threshold_cost=0.05,
        ema_decay=0.9,  # few steps: a short average
        answer_weight=0.5,
        polish_steps=10,
    )
    values.update(overrides)
    return TrainParams(**values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(checkpoint dir, report) of one tiny model; module-scoped fixtures run before `isolated` sets the env."""
    from conftest import BANKING77_DIR

    if not BANKING77_DIR:
        pytest.skip("Banking77 is not available: set BANKING77_DIR")
    out = tmp_path_factory.mktemp("custom") / "models" / "custom"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BANKING77_DIR", BANKING77_DIR)
        report = train_custom(tiny_params(out), progress=False)
    return out, report


def slice_examples():
    seen: dict[str, int] = {}
    out = []
    for e in load_split("train"):
        if e.intent in INTENTS and seen.get(e.intent, 0) < PER_INTENT:
            seen[e.intent] = seen.get(e.intent, 0) + 1
            out.append(e)
    return out


def test_loss_falls_and_slice_accuracy_is_far_above_chance(trained):
    out, report = trained
    assert report.epoch_losses[-1] < 0.6 * report.epoch_losses[0]
    examples = slice_examples()
    intents = Predictor.load(out).classify([e.text for e in examples])
    accuracy = sum(i.label == e.intent for i, e in zip(intents, examples, strict=True)) / len(examples)
    assert accuracy > 0.7  # chance is 1/77 over the constrained labels, 1/8 within the slice
    assert report.train_seconds > 0 and report.n_params > 0


def test_checkpoint_holds_everything(trained):
    out, report = trained
    assert checkpoint_exists(out)
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json"}
    checkpoint = load_checkpoint(out)
    tok, meta = checkpoint.tokenizer, checkpoint.meta
    assert len(meta.labels) == 77 and meta.kb_version == load_knowledge_base().version
    assert meta.oos_threshold == report.oos_threshold
    assert tok.decode(tok.encode("Where's my card?")) == "Where's my card?"


def test_reloaded_checkpoint_gives_identical_outputs(trained):
    out, _ = trained
    first, second = Predictor.load(out), Predictor.load(out)
    texts = [e.text for e in slice_examples()[::9]] + NOT_BANKING
    a, b = first.respond(texts), second.respond(texts)
    assert [(r.intent, r.answer) for r in a] == [(r.intent, r.answer) for r in b]
    idx = torch.tensor([first.prompt_ids("my card has not arrived")])
    with torch.no_grad():
        torch.testing.assert_close(first.model(idx), second.model(idx), atol=0, rtol=0)


def test_training_is_deterministic_under_a_seed_and_reports_its_progress(tmp_path):
    params = dict(epochs=1, per_intent=10, n_out_of_scope=16)
    calls: list[tuple[float, str]] = []
    one = train_custom(tiny_params(tmp_path / "a", **params), progress=False, on_progress=lambda *c: calls.append(c))
    two = train_custom(tiny_params(tmp_path / "b", **params), progress=False)
    assert one.epoch_losses == two.epoch_losses  # the callback changes nothing
    fractions, phases = [f for f, _ in calls], list(dict.fromkeys(p for _, p in calls))
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert phases == ["n-gram fit", "tokenizer", "main loop", "answer polish", "intent mix + threshold",
                      "exact-answer check", "save"]
    assert len({f for f, p in calls if p == "main loop"}) > 3  # it moves during the phases, not only between
    m1, m2 = load_checkpoint(tmp_path / "a").model, load_checkpoint(tmp_path / "b").model
    for (name, p1), (_, p2) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(p1, p2), name


def _adapter(out: Path) -> CustomTransformerAdapter:
    return CustomTransformerAdapter(LLMSettings(model_dir=out.parent))


async def test_adapter_answers_with_the_models_own_generation(trained):
    out, _ = trained
    adapter = _adapter(out)
    try:
        await adapter.load()
        question = "I am still waiting on my card?"
        result = await adapter.generate(question)
        assert isinstance(result, GenerationResult)
        assert result.intent == "card_arrival"
        expected = load_knowledge_base().answer("card_arrival")
        own = Predictor.load(out).respond([question])[0].answer  # what the model itself generates
        assert result.text == expected  # the model's own answer, or the entry where the two differ
        assert result.extra["kb_divergence"] is (own != expected)
        assert result.extra["intent_ms"] > 0
        assert result.prompt_tokens > 3 and result.completion_tokens > 10
        assert 0 < result.confidence <= 1
        assert (result.model, result.device, result.model_version) == ("custom", "cpu", "custom_model_built_0.0.0")
        assert result.extra["answer_cached"] is True  # generated at load, not for this request
        metrics = adapter.get_metrics()
        assert metrics["requests"] == 1 and metrics["answers_generated"] == 1
        assert metrics["kb_divergences"] == int(own != expected)
        assert (metrics["answer_cache_hits"], metrics["answer_cache_misses"]) == (1, 0)
        assert metrics["kb_divergent_intents"] == len(adapter.answer_cache.divergent)
    finally:
        await adapter.aclose()


async def test_adapter_cached_answers_are_the_answers_generated_per_question(trained):
    """The answer generated once per intent at load is what the trained model generates after each question."""
    out, _ = trained
    adapter = _adapter(out)
    try:
        texts = [e.text for e in slice_examples()[::4]]
        results = await asyncio.gather(*(adapter.generate(t) for t in texts))
        kb = load_knowledge_base()
        per_question = {r.intent.label: r for r in Predictor.load(out).respond(texts)}  # intent -> a generation
        compared = 0
        for result in results:
            reply = per_question.get(result.intent)  # by intent: float noise may flip a borderline question
            if reply is None:  # out of scope, or an intent only that noise produced
                continue
            assert result.extra["kb_divergence"] is (reply.answer != kb.answer(result.intent))
            assert result.completion_tokens == reply.completion_tokens
            cached, hit = adapter.answer_cache.answers([result.intent])[0]
            assert hit and cached.generated == reply.answer
            compared += 1
        assert compared > len(texts) // 2 and len({r.intent for r in results}) >= 6
        assert adapter.get_metrics()["answer_cache_hit_rate"] == 1.0
    finally:
        await adapter.aclose()


async def test_adapter_says_out_of_scope_for_non_banking_text(trained):
    out, _ = trained
    adapter = _adapter(out)
    try:
        results = [await adapter.generate(text) for text in NOT_BANKING]
        assert [r.intent for r in results] == [OUT_OF_SCOPE] * len(NOT_BANKING)
        assert all(r.text == load_knowledge_base().out_of_scope_answer for r in results)
        assert all(r.confidence < r.extra["oos_threshold"] for r in results)
    finally:
        await adapter.aclose()


async def test_adapter_offers_its_two_best_intents_with_calibrated_probabilities(trained):
    """extra["top_intents"]: the answer's intent at its confidence, then the runner-up on the same softmax."""
    out, _ = trained
    adapter = _adapter(out)
    try:
        result = await adapter.generate("I am still waiting on my card?")
        outside = await adapter.generate(NOT_BANKING[0])
        (first, p1), (second, p2) = result.extra["top_intents"]
        assert (first, p1) == (result.intent, pytest.approx(result.confidence))
        assert second in INTENTS and second != first and 0 < p2 <= p1 and p1 + p2 <= 1 + 1e-6
        expected = adapter.predictor.classify(["I am still waiting on my card?"])[0]  # the adapter's temperature
        assert expected.runner_up == (second, pytest.approx(p2, abs=1e-5))
        assert "top_intents" not in outside.extra  # out of scope: nothing to clarify between
    finally:
        await adapter.aclose()


async def test_adapter_batches_concurrent_requests(trained):
    out, _ = trained
    adapter = _adapter(out)
    try:
        await adapter.load()
        texts = [e.text for e in slice_examples()[::5]][:16]
        results = await asyncio.gather(*(adapter.generate(t) for t in texts))
        alone = [await adapter.generate(t) for t in texts[:4]]
        for together, single in zip(results[:4], alone, strict=True):  # the label, not the threshold's verdict:
            assert together.extra["predicted_intent"] == single.extra["predicted_intent"]  # float noise may
            assert together.confidence == pytest.approx(single.confidence, abs=1e-4)  # flip a borderline one
        assert max(r.extra["batch_size"] for r in results) > 1
        assert adapter.get_metrics()["batches"] < len(texts) + len(alone)
    finally:
        await adapter.aclose()


async def test_adapter_health_check_runs_a_real_inference(trained):
    out, _ = trained
    adapter = _adapter(out)
    try:
        status = await adapter.health_check()
        assert status.healthy and status.latency_ms > 0
        metrics = adapter.get_metrics()
        assert metrics["batches"] == 1  # one real inference ran
        assert metrics["requests"] == 0  # and it is not counted as user traffic
    finally:
        await adapter.aclose()


async def test_missing_checkpoint_names_the_train_command(tmp_path):
    adapter = CustomTransformerAdapter(LLMSettings(model_dir=tmp_path / "nowhere"))
    with pytest.raises(ModelUnavailableError, match="bankbot train custom"):
        await adapter.load()
    status = await adapter.health_check()
    assert not status.healthy and "bankbot train custom" in status.reason
    assert not checkpoint_exists(tmp_path / "nowhere" / "custom")


def test_report_is_serialisable(trained):
    import json

    _, report = trained
    json.dumps(asdict(report))
