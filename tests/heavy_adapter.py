"""A model adapter that is heavy the way the real ones are: importing its module blocks for IMPORT_S (as
`import torch` or an SDK does) and its load blocks for LOAD_S (as reading weights does), both in plain blocking
calls. That is fine in a worker thread and stalls everyone on the event loop: tests/test_warmup.py uses it to
show that the factory imports adapter modules, and adapters load, off the loop. Drop it from sys.modules
before each use to pay the import again."""

from __future__ import annotations

import asyncio
import time

from llm.adapters.base import GenerationResult, ModelAdapter

IMPORT_S = 1.0
LOAD_S = 1.0

time.sleep(IMPORT_S)  # the module's import: blocking, like a big C extension's


class HeavyAdapter(ModelAdapter):
    name = "custom"
    device = "cpu"
    default_version = "heavy_0.0.0"

    def __init__(self, settings, version: str | None = None):
        super().__init__(version)
        self.loaded = False

    async def load(self) -> None:
        await asyncio.to_thread(time.sleep, LOAD_S)  # reading weights: blocking, so in a worker thread
        self.loaded = True

    async def _generate(self, prompt: str) -> GenerationResult:
        return GenerationResult(text=f"heavy answers: {prompt}", intent="card_arrival", latency_ms=0.1,
                                prompt_tokens=1, completion_tokens=3, confidence=0.9, model_version=self.version,
                                device=self.device, model=self.name)
