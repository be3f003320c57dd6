"""The route's accuracy upper bound: custom escalating to a scripted model that always answers correctly, at
10%, 20% and 30% escalation. Thresholds are chosen on the validation slice of train.csv (custom's own held-out
slice), then the route runs on Banking77's test split through llm.routing.offline.evaluate_route.

    BANKING77_DIR=... python benchmarks/routing_upper_bound.py
"""

from __future__ import annotations

import asyncio
import json

from llm import banking77
from llm.adapters.base import GenerationResult, ModelAdapter
from llm.config import LLMSettings
from llm.custom.data import stratified_split
from llm.evaluation import evaluate
from llm.factory import ModelFactory
from llm.routing.offline import evaluate_route
from llm.routing.policy import Escalation


class Oracle(ModelAdapter):
    """Answers every labelled question with its gold intent (an upper bound for any escalation model)."""

    name, device, default_version = "oracle", "cpu", "oracle_0.0.0"

    def __init__(self, gold: dict[str, str]):
        super().__init__()
        self.gold = gold

    async def _generate(self, prompt: str) -> GenerationResult:
        return GenerationResult("", self.gold[prompt], 0.0, 0, 0, 1.0, self.version, self.device, model=self.name)


async def main() -> None:
    test = banking77.load_split("test")
    val = stratified_split(banking77.load_split("train"), 0.1, 1337)[1]
    factory = ModelFactory(LLMSettings())
    try:
        custom = await factory.get("custom")
        ranked = sorted((await evaluate(custom, val)).confidences)
        oracle = Oracle({e.text: e.intent for e in test})
        for share in (0.1, 0.2, 0.3):
            rule = Escalation("oracle", ranked[int(share * len(ranked))])
            report = await evaluate_route(custom, test, rule, oracle)
            print(json.dumps({"target_share": share, "threshold": rule.threshold, "accuracy": report["accuracy"],
                              "escalation_share": report["escalation_share"],
                              "custom_alone": report["models"]["custom"]["accuracy"]}))
    finally:
        await factory.aclose()


if __name__ == "__main__":
    asyncio.run(main())
