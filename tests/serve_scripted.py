"""`bankbot serve` on scripted models, for tests and benchmarks that need a real server process.

    python -m tests.serve_scripted     # settings from the environment, as `bankbot serve`

The server code is `bot.server.serve`, unchanged; only the models are scripted. Two models:
- `custom` (the active one) answers after SCRIPTED_DELAY_S seconds (default 0.2); a question containing
  "[hang]" never gets an answer (the pipeline's timeout, MODEL_TIMEOUT_S, must fire), one containing
  "[raise]" makes it raise;
- `gemini` (the fallback) ignores the markers and answers after SCRIPTED_FALLBACK_DELAY_S seconds (default 0.05).
Each answer names its model and echoes the question, so a test can tell who answered what.
"""

from __future__ import annotations

import asyncio
import os

from bot.server import serve
from bot.settings import load_settings
from llm.adapters.base import GenerationResult
from tests.scripted import ScriptedAdapter, builders

HANG, RAISE = "[hang]", "[raise]"


class PromptScripted(ScriptedAdapter):
    """A scripted model whose behaviour is chosen by markers in the question."""

    def __init__(self, name: str, delay_s: float, *, obeys_markers: bool):
        super().__init__(name)
        self.delay_s = delay_s
        self.obeys_markers = obeys_markers

    async def _generate(self, prompt: str) -> GenerationResult:
        if self.obeys_markers and HANG in prompt:
            await asyncio.Event().wait()  # forever: only a timeout ends it
        await asyncio.sleep(self.delay_s)
        if self.obeys_markers and RAISE in prompt:
            raise RuntimeError(f"{self.name} failed on purpose")
        text = f"{self.name} answers: {prompt}"
        return GenerationResult(text=text, intent="card_arrival", latency_ms=self.delay_s * 1000,
                                prompt_tokens=len(prompt.split()), completion_tokens=len(text.split()),
                                confidence=0.9, model_version=self.version, device=self.device, model=self.name)


def scripted_builders() -> dict:
    custom = PromptScripted("custom", float(os.environ.get("SCRIPTED_DELAY_S", "0.2")), obeys_markers=True)
    gemini = PromptScripted("gemini", float(os.environ.get("SCRIPTED_FALLBACK_DELAY_S", "0.05")),
                            obeys_markers=False)
    return builders(custom, gemini)


def main() -> None:
    os.environ.setdefault("LLM_MODEL_VERSION", "custom")
    os.environ.setdefault("FALLBACK_ORDER", "custom,gemini")
    os.environ.setdefault("BENCHMARK_EVERY_N", "0")
    asyncio.run(serve(load_settings(), builders=scripted_builders()))


if __name__ == "__main__":
    main()
