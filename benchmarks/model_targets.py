"""What the model target benchmarks (custom_targets.py, encoder_targets.py) share: the process's memory, the
questions timed one by one, and the figures printed beside their targets."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def spread_sample(examples: Sequence[T], size: int) -> Sequence[T]:
    """`size` examples spread evenly over `examples` (all of them when there are fewer)."""
    return examples[:: max(1, len(examples) // size)][:size]


def print_figures(figures: dict[str, Any], targets: dict[str, str]) -> None:
    """One line a figure, with its target where it has one, then all of them as one JSON line."""
    for key, value in figures.items():
        print(f"{key:>26}: {value}" + (f"   (target {targets[key]})" if key in targets else ""))
    print(json.dumps(figures))
