"""Shared bits for the adapter streaming tests."""

from __future__ import annotations

from llm.adapters.base import GenerationResult


async def collect(adapter, prompt):
    """(every text delta, the GenerationResult) of `adapter.stream(prompt)`, read to its end: a delta after the
    result still shows in the deltas, and a stream without a result gives None."""
    deltas, result = [], None
    async for item in adapter.stream(prompt):
        if isinstance(item, GenerationResult):
            result = item
        else:
            deltas.append(item)
    return deltas, result
