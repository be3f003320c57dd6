"""Per-request cost of cloud models from a price table: USD per 1M input and output tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input_per_mtok: float  # USD per 1M prompt tokens
    output_per_mtok: float  # USD per 1M output tokens (thinking tokens are billed as output)

    def cost(self, prompt_tokens: int, output_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


# Gemini Developer API list prices, paid tier, text input, prompts <= 200k tokens, no context caching.
# Source: https://ai.google.dev/gemini-api/docs/pricing (figures as published since mid-2025, when 2.5 Flash
# went GA at $0.30/$2.50; re-check before relying on them: override with GEMINI_PRICE_TABLE).
GEMINI_PRICES: dict[str, Price] = {
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.5-pro": Price(1.25, 10.00),  # $2.50 / $15.00 above 200k prompt tokens; our prompts are ~6k
}


def parse_price_table(raw: str) -> dict[str, Price]:
    """A JSON object of model id -> [input, output] or {"input": x, "output": y}, USD per 1M tokens.

    Example: GEMINI_PRICE_TABLE='{"gemini-2.5-flash": [0.30, 2.50]}'
    """
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"price table is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("price table must be a JSON object of model id -> prices")
    table = {}
    for model, value in data.items():
        if isinstance(value, Mapping) and set(value) == {"input", "output"}:
            pair = (value["input"], value["output"])
        elif isinstance(value, list | tuple) and len(value) == 2:
            pair = tuple(value)
        else:
            raise ValueError(f"price of {model!r} must be [input, output] or {{'input': x, 'output': y}}")
        if not all(isinstance(p, int | float) and not isinstance(p, bool) and p >= 0 for p in pair):
            raise ValueError(f"prices of {model!r} must be non-negative numbers, got {value!r}")
        table[model] = Price(float(pair[0]), float(pair[1]))
    return table


def price_table(override: str | None = None, base: Mapping[str, Price] = GEMINI_PRICES) -> dict[str, Price]:
    """The built-in table, with entries of the JSON `override` added or replacing built-in ones."""
    table = dict(base)
    if override:
        table.update(parse_price_table(override))
    return table


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """The price of `model`; pinned ids ("gemini-2.0-flash-001", "models/...") fall back to their family."""
    model = model.removeprefix("models/")
    if model in table:
        return table[model]
    # longest known id that the pinned id extends with "-<suffix>"
    matches = [known for known in table if model.startswith(known + "-")]
    return table[max(matches, key=len)] if matches else None
