"""Generated text -> one valid intent label, and the model's confidence in it from token log-probabilities."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llm.adapters.base import OUT_OF_SCOPE

MIN_SIMILARITY = 0.8  # a closest label below this ratio is not trusted: out_of_scope instead


@dataclass(frozen=True)
class ParsedIntent:
    intent: str  # a valid label or OUT_OF_SCOPE
    raw: str  # the label as the model wrote it, normalised
    match: str  # "exact", "closest" or "none"
    similarity: float  # 1.0 for exact, difflib ratio for closest, 0.0 for none


def normalise(text: str) -> str:
    """First line, lower case, separators as underscores, stray punctuation and a 'intent:' prefix dropped."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^\s*(intent|label)\s*[:=-]\s*", "", line.lower())
    line = re.sub(r"[\s\-]+", "_", line.strip())
    return re.sub(r"[^a-z0-9_?]", "", line).strip("_")


def parse_intent(text: str, labels: Sequence[str]) -> ParsedIntent:
    """Exact label, else the closest label when similar enough, else out_of_scope."""
    raw = normalise(text)
    if raw in labels or raw == OUT_OF_SCOPE:
        return ParsedIntent(raw, raw, "exact", 1.0)
    if raw:
        best = max(labels, key=lambda label: difflib.SequenceMatcher(None, raw, label).ratio())
        ratio = difflib.SequenceMatcher(None, raw, best).ratio()
        if ratio >= MIN_SIMILARITY:
            return ParsedIntent(best, raw, "closest", ratio)
    return ParsedIntent(OUT_OF_SCOPE, raw, "none", 0.0)


def label_confidence(token_logprobs: Sequence[float], parsed: ParsedIntent) -> float:
    """Probability of the generated label sequence (exp of summed log-probs), scaled by how well it matched.

    Generation stops at the label's end, so the generated tokens are the label. A label that had to be
    corrected keeps only `similarity` of that probability; an unparseable one gets 0.
    """
    if parsed.match == "none" or not token_logprobs:
        return 0.0
    finite = [lp for lp in token_logprobs if lp is not None and math.isfinite(lp)]
    probability = math.exp(sum(finite)) if finite else 0.0
    return max(0.0, min(1.0, probability * parsed.similarity))
