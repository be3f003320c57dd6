"""Calibrated confidence for models without logits of their own (gemini, qlora): a monotone map from the raw
confidence they report to the accuracy observed at that confidence on a labelled sample (isotonic regression,
pool-adjacent-violators), stored in $MODEL_DIR/calibration/<model>.json and applied when present.

Never fitted on test.csv: `bankbot calibrate` uses a validation slice of train.csv (or --data).
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfidenceMap:
    xs: list[float]  # raw confidences, increasing (block ends)
    ys: list[float]  # calibrated confidence at each, non-decreasing
    n: int = 0  # examples it was fitted on

    def __call__(self, raw: float) -> float:
        """Linear between the fitted points, flat beyond them."""
        if not self.xs:
            return raw
        i = bisect.bisect_left(self.xs, raw)
        if i == 0:
            return self.ys[0]
        if i == len(self.xs):
            return self.ys[-1]
        x0, x1, y0, y1 = self.xs[i - 1], self.xs[i], self.ys[i - 1], self.ys[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    @classmethod
    def fit(cls, confidence: Sequence[float], correct: Sequence[bool]) -> ConfidenceMap:
        """Isotonic regression of correctness on confidence (pool adjacent violators)."""
        pairs = sorted(zip(confidence, correct, strict=True))
        blocks: list[list[float]] = []  # [sum of correct, count, last x]
        for x, ok in pairs:
            blocks.append([float(ok), 1.0, x])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
                s, c, last = blocks.pop()
                blocks[-1][0] += s
                blocks[-1][1] += c
                blocks[-1][2] = last
        return cls([b[2] for b in blocks], [b[0] / b[1] for b in blocks], len(pairs))

    def save(self, model_dir: Path, model: str) -> Path:
        path = Path(model_dir) / "calibration" / f"{model}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"method": "isotonic"} | asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: Path, model: str) -> ConfidenceMap | None:
        path = Path(model_dir) / "calibration" / f"{model}.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data.pop("method", None)
        return cls(**data)


class Calibrations:
    """The maps found under $MODEL_DIR/calibration, read once per model."""

    def __init__(self, model_dir: Path | None):
        self.model_dir = model_dir
        self._maps: dict[str, ConfidenceMap | None] = {}

    def get(self, model: str) -> ConfidenceMap | None:
        if model not in self._maps:
            try:
                self._maps[model] = ConfidenceMap.load(self.model_dir, model) if self.model_dir else None
            except (OSError, ValueError, TypeError) as exc:
                log.error("ignoring the calibration of %s: %s", model, exc)
                self._maps[model] = None
        return self._maps[model]

    def apply(self, result: GenerationResult) -> GenerationResult:
        mapping = self.get(result.model)
        if mapping is None:
            return result
        extra = result.extra | {"raw_confidence": result.confidence}
        if result.extra.get("top_intents"):  # the runner-up on the same scale, so a clarifying margin means one thing
            extra["top_intents"] = [[label, mapping(p)] for label, p in result.extra["top_intents"]]
        return replace(result, confidence=mapping(result.confidence), extra=extra)
