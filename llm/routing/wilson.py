"""Proportions with their uncertainty: Wilson score intervals and a two-proportion test, in plain words."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of successes/n (95% by default); None without data."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of a pooled two-proportion z-test; None without data in either arm."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))


def difference_sentence(what: str, a: str, k1: int, n1: int, b: str, k2: int, n2: int) -> str:
    """e.g. "canary's error rate (1.0%) vs served (3.0%): significant (p = 0.004)"."""
    p = two_proportion_p(k1, n1, k2, n2)
    if p is None:
        return f"{what}: not enough data to compare {a} with {b}."
    verdict = "the difference is significant" if p < 0.05 else "the difference is not significant (could be chance)"
    return f"{what}: {a} {k1 / n1:.1%} of {n1} vs {b} {k2 / n2:.1%} of {n2}: {verdict} (p = {p:.3g})."
