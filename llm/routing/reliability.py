"""How far a model's confidence can be trusted: expected calibration error and the risk-coverage curve.

- ``ece``: 15 equal-width confidence bins; the mean |accuracy - confidence| of each bin, weighted by its share of
  the questions. 0 means "80% sure" is right 80% of the time.
- ``risk_coverage``: keep the most confident share c of the questions (answer those, hand the rest on); the
  accuracy on what is kept. A good ranking keeps accuracy high as c falls.
- ``aurc``: the area under the risk (1 - accuracy) vs coverage curve, over every cut; lower is better, and the
  floor is set by the model's overall accuracy (a perfect ranking puts every error last).
"""

from __future__ import annotations

from collections.abc import Sequence

COVERAGES = (0.5, 0.8, 0.9, 1.0)


def ece(confidence: Sequence[float], correct: Sequence[bool], bins: int = 15) -> float | None:
    if not confidence:
        return None
    totals = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum of confidence, sum of correct
    for c, ok in zip(confidence, correct, strict=True):
        b = totals[min(bins - 1, max(0, int(c * bins)))]
        b[0] += 1
        b[1] += c
        b[2] += bool(ok)
    n = len(confidence)
    return sum(abs(s_ok - s_c) for count, s_c, s_ok in totals if count) / n


def _ranked(confidence: Sequence[float], correct: Sequence[bool]) -> list[bool]:
    """Correctness, most confident first (ties keep their order)."""
    order = sorted(range(len(confidence)), key=lambda i: -confidence[i])
    return [bool(correct[i]) for i in order]


def risk_coverage(confidence: Sequence[float], correct: Sequence[bool],
                  coverages: Sequence[float] = COVERAGES) -> list[dict[str, float | None]]:
    ranked = _ranked(confidence, correct)
    points = []
    for c in coverages:
        kept = ranked[:max(1, round(c * len(ranked)))] if ranked else []
        points.append({"coverage": c, "accuracy": sum(kept) / len(kept) if kept else None})
    return points


def aurc(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Mean of the risk over every cut k = 1..n of the ranked questions."""
    ranked = _ranked(confidence, correct)
    if not ranked:
        return None
    errors, total = 0, 0.0
    for k, ok in enumerate(ranked, start=1):
        errors += not ok
        total += errors / k
    return total / len(ranked)


def reliability_figures(confidence: Sequence[float], correct: Sequence[bool]) -> dict:
    """The three figures `bankbot eval --json` reports."""
    return {"ece": ece(confidence, correct), "risk_coverage": risk_coverage(confidence, correct),
            "aurc": aurc(confidence, correct)}
