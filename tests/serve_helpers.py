"""Real `bankbot serve` processes on scripted models (tests/serve_scripted.py), for shutdown tests and the chaos
benchmark: start one on a free port of 127.0.0.1, wait until it is healthy, read its /metrics, stop it."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
_ISOLATED = ("SLACK_", "DATABASE_", "LLM_", "FALLBACK_", "RATE_", "SCRIPTED_", "MODEL_", "BENCHMARK", "PORT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def wait_healthy(self, http: aiohttp.ClientSession, within_s: float = 60.0) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                async with http.get(self.url + "/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"server did not become healthy within {within_s:.0f} s:\n{self.log()[-3000:]}")

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float:
        """The value of an unlabelled sample in /metrics (e.g. bankbot_request_log_pending)."""
        async with http.get(self.url + "/metrics") as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    async def stop(self, within_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `within_s`. Returns the exit code."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            return await asyncio.wait_for(self.process.wait(), within_s)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()


async def start_server(workdir: Path, name: str, *, env: dict[str, str], port: int | None = None) -> ServerProcess:
    """`python -m tests.serve_scripted` in `workdir`, with `env` on top of a clean environment. Its output goes
    to `workdir/<name>.log`."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED)}
    full_env = clean | {"PORT": str(port), "PYTHONPATH": str(REPO), "MODEL_DIR": str(workdir / "models"),
                        "BENCHMARK_LOG": str(workdir / f"{name}-benchmark.jsonl")} | env
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("ab")  # noqa: ASYNC230 - opening a local log file does not block for long
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.serve_scripted", cwd=workdir, env=full_env, stdout=log_file,
            stderr=log_file)
    finally:
        log_file.close()  # the child has its own descriptor
    return ServerProcess(process, port, log_path)
