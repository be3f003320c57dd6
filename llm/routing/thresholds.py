"""Choosing the escalation threshold on validation data: what share to escalate, what accuracy to reach, or the
route's best accuracy.

Given, per validation question, the first model's calibrated confidence and whether each model got it right,
escalating the k least confident questions gives accuracy (first right on the rest + escalation right on
those k) / n. The threshold is the confidence of the (k+1)-th least confident question: below it, escalate.
Questions that may not be escalated (the first model called them out of scope and the policy keeps those) keep
the first answer whatever the threshold. The lists must describe the same questions in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    expected_accuracy: float
    escalation_share: float
    cost_per_1000_usd: float | None  # None where neither model has a price
    first_accuracy: float  # the first model alone
    escalation_accuracy: float  # the escalation model alone

    def to_dict(self) -> dict:
        return asdict(self)


def choose_threshold(confidence: Sequence[float], first_correct: Sequence[bool], escalation_correct: Sequence[bool],
                     *, target_escalation: float | None = None, target_accuracy: float | None = None,
                     maximize_accuracy: bool = False, escalatable: Sequence[bool] | None = None,
                     first_cost_usd: float | None = None, escalation_cost_usd: float | None = None
                     ) -> ThresholdChoice:
    """Costs are per question (None: no price). Exactly one objective: a share to escalate, an accuracy to reach
    (else the best), or the best accuracy at the smallest share. ValueError without data."""
    n = len(confidence)
    if n == 0:
        raise ValueError("no validation questions")
    if (target_escalation is not None) + (target_accuracy is not None) + bool(maximize_accuracy) != 1:
        raise ValueError("give exactly one of target_escalation, target_accuracy and maximize_accuracy")
    order = sorted((i for i in range(n) if escalatable is None or escalatable[i]), key=lambda i: confidence[i])
    m = len(order)
    # right[k]: correct answers when the k least confident are escalated
    right = [sum(bool(c) for c in first_correct)]
    for i in order:
        right.append(right[-1] - bool(first_correct[i]) + bool(escalation_correct[i]))
    # ties: a threshold cannot split questions of equal confidence
    cuts = [k for k in range(m + 1) if k in (0, m) or confidence[order[k]] != confidence[order[k - 1]]]
    if target_escalation is not None:
        k = max(c for c in cuts if c <= min(m, max(0, int(target_escalation * n))))
    elif target_accuracy is not None:
        k = next((k for k in cuts if right[k] / n >= target_accuracy), max(cuts, key=lambda k: right[k]))
    else:
        k = max(cuts, key=lambda k: (right[k], -k))
    threshold = confidence[order[k]] if k < m else 1.0 + 1e-9
    cost = None
    if first_cost_usd is not None or escalation_cost_usd is not None:
        cost = 1000 * ((first_cost_usd or 0.0) + k / n * (escalation_cost_usd or 0.0))
    return ThresholdChoice(threshold, right[k] / n, k / n, cost, right[0] / n,
                           sum(bool(c) for c in escalation_correct) / n)
