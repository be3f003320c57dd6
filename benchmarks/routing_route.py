"""Custom escalating to the encoder, against the encoder alone (issue 14's target). Every choice is made on the
validation slice that both models held out of training (checked from what their checkpoints recorded); test is
only scored, with the chosen threshold, through llm.routing.offline.evaluate_route as `bankbot eval --route` does.

On validation it reports each model alone, the share of questions at least one of them gets right (the ceiling
of any route between them), the threshold with the route's best accuracy with custom's out-of-scope answers kept
and escalated (the policy's `out_of_scope`; test uses whichever is better on validation, kept on a tie), and the
same route when an escalated question shows whichever answer is more confident instead of the encoder's.

    BANKING77_DIR=... python benchmarks/routing_route.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics

from llm import banking77
from llm.adapters.base import OUT_OF_SCOPE
from llm.config import LLMSettings
from llm.custom.data import stratified_split
from llm.factory import ModelFactory
from llm.routing.confidence_map import Calibrations
from llm.routing.offline import answer_each, evaluate_route
from llm.routing.policy import Escalation
from llm.routing.thresholds import choose_threshold

SPLIT_KEYS = ("seed", "val_fraction", "intents", "per_intent")


def common_split(settings: LLMSettings) -> dict:
    """The validation split both checkpoints recorded; ValueError when they held out different rows."""
    custom = json.loads((settings.custom_checkpoint_dir / "config.json").read_text())["train"]["params"]
    encoder = json.loads((settings.encoder_checkpoint_dir / "encoder.json").read_text())["train"]["params"]
    mine, theirs = ({k: p.get(k) for k in SPLIT_KEYS} for p in (custom, encoder))
    if mine != theirs:
        raise ValueError(f"the models held out different validation rows: custom {mine}, encoder {theirs}")
    return mine


def more_confident(first: list, second: list, gold: list[str], threshold: float) -> float:
    shown = [(b if b.confidence >= a.confidence else a) if a.confidence < threshold and a.intent != OUT_OF_SCOPE
             else a for a, b in zip(first, second, strict=True)]
    return sum(s.intent == g for s, g in zip(shown, gold, strict=True)) / len(gold)


async def main(runs: int) -> None:
    settings = LLMSettings()
    split = common_split(settings)
    val = stratified_split(banking77.load_split("train"), split["val_fraction"], split["seed"])[1]
    test = banking77.load_split("test")
    factory = ModelFactory(settings)
    calibrate = Calibrations(settings.model_dir).apply
    try:
        custom, encoder = await factory.get("custom"), await factory.get("encoder")
        first = await answer_each(custom, val, calibrate=calibrate)
        second = await answer_each(encoder, val, calibrate=calibrate)
        gold = [e.intent for e in val]
        c_ok = [a.intent == g for a, g in zip(first, gold, strict=True)]
        e_ok = [b.intent == g for b, g in zip(second, gold, strict=True)]
        conf = [a.confidence for a in first]
        kept = choose_threshold(conf, c_ok, e_ok, maximize_accuracy=True,
                                escalatable=[a.intent != OUT_OF_SCOPE for a in first])
        escalated = choose_threshold(conf, c_ok, e_ok, maximize_accuracy=True)  # out-of-scope answers too
        out_of_scope = escalated.expected_accuracy > kept.expected_accuracy  # chosen on validation; ties: kept
        choice = escalated if out_of_scope else kept
        print(json.dumps({"validation": {
            "n": len(val), "split": split, "custom_alone": sum(c_ok) / len(val), "encoder_alone": sum(e_ok) / len(val),
            "either_right": sum(a or b for a, b in zip(c_ok, e_ok, strict=True)) / len(val),
            "custom_right_encoder_wrong": sum(a and not b for a, b in zip(c_ok, e_ok, strict=True)),
            "best_route": kept.to_dict(), "best_route_out_of_scope_escalated": escalated.to_dict(),
            "escalate_out_of_scope": out_of_scope,
            "more_confident_at_that_threshold": more_confident(first, second, gold, choice.threshold)}}))
        rule = Escalation("encoder", min(1.0, choice.threshold), out_of_scope=out_of_scope)
        routes = [await evaluate_route(custom, test, rule, encoder, concurrency=16, calibrate=calibrate)
                  for _ in range(runs)]
        alone = [await evaluate_route(encoder, test, concurrency=16, calibrate=calibrate) for _ in range(runs)]
        print(json.dumps({"test": {
            "threshold": rule.threshold, "out_of_scope": rule.out_of_scope, "route_accuracy": routes[0]["accuracy"],
            "escalation_share": routes[0]["escalation_share"],
            "route_p50_ms": statistics.median(r["latency_p50_ms"] for r in routes),
            "route_p99_ms": statistics.median(r["latency_p99_ms"] for r in routes),
            "encoder_alone_accuracy": alone[0]["accuracy"],
            "encoder_alone_p50_ms": statistics.median(a["latency_p50_ms"] for a in alone),  # measured alike
            "encoder_alone_p99_ms": statistics.median(a["latency_p99_ms"] for a in alone), "runs": runs}}))
    finally:
        await factory.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="test runs (latency medians)")
    asyncio.run(main(parser.parse_args().runs))
