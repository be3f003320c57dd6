"""Training the custom model while `bankbot serve` serves: in a child process, never on the event loop.

A child process (`python -m bot.training`) rather than a thread: training is minutes of Python and torch work
that would hold the GIL and both cores, and a thread cannot be stopped at shutdown. The child runs at a lower
CPU priority (nice 10) so the server's loop stays responsive, and reports progress as JSON lines on its stdout:
``{"progress": 0.42, "phase": "main loop"}``. Its stderr (logs and the training's progress bar) goes to the
server's, so `make run` shows the bar. The checkpoint goes to
MODEL_DIR/custom, where the custom adapter reads it once the child exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # at shutdown the child gets this long after SIGTERM, then SIGKILL
NICENESS = 10


class TrainingFailed(Exception):
    pass


def custom_training_needed(settings: Settings) -> bool:
    """The custom model is configured (active or a fallback) and has no checkpoint."""
    from llm.custom.checkpoint import checkpoint_exists
    from llm.model_names import resolve_model_name

    needed = "custom" in {resolve_model_name(settings.llm_model_version), *settings.fallback_names}
    return needed and not checkpoint_exists(settings.custom_checkpoint_dir)


class CustomTraining:
    """One training run in a child process; `progress` (0..1) and `phase` follow its reports."""

    def __init__(self, settings: Settings, command: list[str] | None = None):
        self.settings = settings
        self.command = command or [sys.executable, "-m", "bot.training"]
        self.progress = 0.0
        self.phase = "starting"
        self.process: asyncio.subprocess.Process | None = None

    async def run(self) -> None:
        """Train to the end; TrainingFailed when the child exits non-zero."""
        env = os.environ | {"MODEL_DIR": str(self.settings.model_dir)}
        if self.settings.banking77_dir:
            env["BANKING77_DIR"] = str(self.settings.banking77_dir)
        self.process = await asyncio.create_subprocess_exec(*self.command, stdout=asyncio.subprocess.PIPE, env=env)
        log.info("training the custom model in process %d (progress on /ready)", self.process.pid)
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self._read_report(line)
        code = await self.process.wait()
        if code != 0:
            raise TrainingFailed(f"training the custom model failed (exit code {code}); see the log above")
        self.progress, self.phase = 1.0, "done"

    def _read_report(self, line: bytes) -> None:
        try:
            report = json.loads(line)
            self.progress = min(max(float(report["progress"]), 0.0), 1.0)
            self.phase = str(report.get("phase", ""))
        except (ValueError, KeyError, TypeError):
            log.debug("training: %s", line.decode(errors="replace").rstrip())

    async def aclose(self) -> None:
        """Stop the child if it still runs (SIGTERM, then SIGKILL after STOP_GRACE_S)."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("training of the custom model stopped at %.0f%% (shutdown)", self.progress * 100)


# -- the child ----------------------------------------------------------------------------------------

def report(fraction: float, phase: str = "") -> None:
    """One progress line for the parent."""
    print(json.dumps({"progress": round(float(fraction), 4), "phase": phase}), flush=True)


def run_child(train: Callable[[], Any]) -> None:
    """The child's body: lower its priority, then train; stdout carries only reports."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    report(0.0, "starting")
    train()
    report(1.0, "done")


def main() -> None:
    from bot.json_logging import configure_logging
    from bot.settings import load_settings
    from llm.custom.train import train_custom

    settings = load_settings()
    configure_logging(settings.log_level)
    # the progress bar goes to stderr, the server's terminal (`make run` shows it); reports go to the parent
    run_child(lambda: train_custom(settings, progress=True, on_progress=report))


if __name__ == "__main__":
    main()
