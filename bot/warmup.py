"""Warm-up: `bankbot serve` loads every configured model in the background once its port is open.

The active model and the FALLBACK_ORDER models are loaded concurrently through the factory (which imports an
adapter's module, and its SDK, in a worker thread; each adapter loads its weights off the loop). A model that
fails to load is logged and reported by /ready; the factory keeps no failed load, so a later request retries.
When the custom model is configured but has no checkpoint, it is trained first (bot/training.py) while the
other models serve; /ready reports the training's progress.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.training import CustomTraining, TrainingFailed

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

WARMING_UP = "I'm warming up: try again in a few minutes."
LOADING, TRAINING, WARM, FAILED = "loading", "training", "warm", "failed"


@dataclass(frozen=True)
class ModelWarmth:
    state: str  # loading | training | warm | failed
    reason: str = ""  # what it is doing, or why it failed
    progress: float | None = None  # training: 0..1


class Warmup:
    def __init__(self, runtime: Runtime, *, training: CustomTraining | None = None):
        """`training`: train the custom model first (it is configured and has no checkpoint)."""
        self.runtime = runtime
        self.training = training
        self.models: dict[str, ModelWarmth] = {}
        self._task: asyncio.Task | None = None

    def names(self) -> list[str]:
        pipeline = self.runtime.pipeline
        return list(dict.fromkeys([pipeline.active_model, *pipeline.options.fallback_order]))

    def start(self) -> asyncio.Task:
        for name in self.names():
            self.models[name] = (ModelWarmth(TRAINING, "training the custom model", 0.0)
                                 if name == "custom" and self.training else ModelWarmth(LOADING, f"loading {name}"))
        self._task = asyncio.get_running_loop().create_task(self.run(), name="warm-up")
        return self._task

    async def run(self) -> None:
        await asyncio.gather(*(self._warm(name) for name in self.models))
        log.info("warm-up done: %s", ", ".join(f"{name} {w.state}" for name, w in self.models.items()))

    async def _warm(self, name: str) -> None:
        if name == "custom" and self.training is not None:
            try:
                await self.training.run()
            except TrainingFailed as exc:
                log.error("%s", exc)
                self.models[name] = ModelWarmth(FAILED, str(exc))
                return
            self.models[name] = ModelWarmth(LOADING, f"loading {name}")
        try:
            await self.runtime.factory.get(name)
        except Exception as exc:  # noqa: BLE001 - a model that cannot load is reported, the others serve
            reason = str(exc) or type(exc).__name__
            log.warning("model %s did not load: %s", name, reason)
            self.models[name] = ModelWarmth(FAILED, reason)
            return
        self.runtime.pipeline.breaker(name).record_success()  # failures while it loaded said nothing of it
        self.models[name] = ModelWarmth(WARM)
        log.info("model %s is warm", name)

    def status(self, name: str) -> ModelWarmth | None:
        """`name`'s warm-up; a training reports its latest progress. None: not part of the warm-up."""
        warmth = self.models.get(name)
        if warmth is not None and warmth.state == TRAINING and self.training is not None:
            return ModelWarmth(TRAINING, warmth.reason, self.training.progress)
        return warmth

    def in_progress(self) -> bool:
        return any(w.state in (LOADING, TRAINING) for w in self.models.values())

    async def aclose(self) -> None:
        """Stop the warm-up task, then a training still running (its child process)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.training is not None:
            await self.training.aclose()
