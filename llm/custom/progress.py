"""One progress bar over the whole custom-model training, every phase included, and a callback for servers.

Each phase counts its own units (optimizer steps, validation passes, questions checked) and carries a weight:
its typical share of the training's wall time on the default configuration (2 cores). The bar and the
callback show the weighted fraction of the whole training, so its ETA holds from the first step to the save.

    progress = TrainingProgress({"n-gram fit": 150 * NGRAM_STEP_S, ...}, show=True, on_progress=callback)
    with progress.phase("n-gram fit", total=150) as tick:
        for _ in range(150):
            ...
            tick()
    print(progress.summary())
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm

OnProgress = Callable[[float, str], None]  # (fraction of the whole training 0..1, phase), from the training thread
Tick = Callable[..., None]  # tick(units=1, **postfix): units of the current phase done, and what to show with them


class TrainingProgress:
    def __init__(self, weights: Mapping[str, float], show: bool = True, on_progress: OnProgress | None = None):
        if not weights or any(w < 0 for w in weights.values()) or not sum(weights.values()):
            raise ValueError(f"phase weights must be non-negative and not all zero: {dict(weights)}")
        total = sum(weights.values())
        self.shares = {name: w / total for name, w in weights.items()}  # phase -> share of the whole, sums to 1
        self.on_progress = on_progress
        self.fraction = 0.0
        self._reported: tuple[float, str] = (-1.0, "")  # the last (fraction, phase) passed to on_progress
        self.seconds: dict[str, float] = {}  # phase -> wall time, once finished
        self._started = time.perf_counter()
        self._bar = tqdm(
            total=100,
            disable=not show,
            desc="train custom",
            dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
        )

    @contextmanager
    def phase(self, name: str, total: float = 1) -> Iterator[Tick]:
        """Run one phase of `total` units; the context gives tick(units=1, **postfix). Ends at its full share."""
        start, share = self.fraction, self.shares[name]
        done = 0.0
        started = time.perf_counter()
        self._bar.set_description_str(name, refresh=False)
        self._bar.set_postfix_str("", refresh=False)
        self._report(start, name)

        def tick(units: float = 1, **postfix: Any) -> None:
            nonlocal done
            done += units
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._report(start + share * min(1.0, done / total if total else 1.0), name)

        yield tick
        self.seconds[name] = time.perf_counter() - started
        self._report(start + share, name)

    def _report(self, fraction: float, phase: str) -> None:
        fraction = min(1.0, max(self.fraction, fraction))  # never backwards
        self._bar.update(100 * fraction - self._bar.n)
        self.fraction = fraction
        if self.on_progress is not None and (  # at most about a thousand calls, and one per phase change
            phase != self._reported[1] or fraction - self._reported[0] >= 0.001 or fraction == 1.0
        ):
            self._reported = (fraction, phase)
            self.on_progress(fraction, phase)

    def close(self) -> None:
        self._bar.close()

    def summary(self) -> str:
        """Each phase's wall time and share of the whole, e.g. `main loop 150s (71%)`."""
        total = sum(self.seconds.values()) or 1.0
        return ", ".join(f"{name} {s:.0f}s ({s / total:.0%})" for name, s in self.seconds.items())
