"""`bankbot serve` with an empty MODEL_DIR: the port opens at once (/health is 200 while the custom model is
still training), /ready reports the training and its progress, and SIGTERM stops the training child and exits 0.
A real `bankbot serve` process with the real training, stopped as soon as the training is seen in progress."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.serve_helpers import _ISOLATED, free_port

BANKBOT = Path(sys.executable).parent / "bankbot"


async def poll(http: aiohttp.ClientSession, url: str, until, within_s: float = 120.0) -> tuple[int, dict]:
    """GET `url` until `until(status, body)`; returns that response's status and JSON body."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as response:
                status, body = response.status, await response.json()
            if until(status, body):
                return status, body
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url}: condition not met within {within_s:.0f} s")


@pytest.mark.usefixtures("banking77_dir")
async def test_serve_with_an_empty_model_dir_answers_health_and_reports_training_on_ready(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED)} | {
        "PORT": str(port), "MODEL_DIR": str(tmp_path / "models"), "LLM_MODEL_VERSION": "custom",
        "FALLBACK_ORDER": "custom", "BENCHMARK_EVERY_N": "0",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:  # noqa: ASYNC230 - a local file, opened once
        process = await asyncio.create_subprocess_exec(BANKBOT, "serve", cwd=tmp_path, env=env, stdout=log_file,
                                                       stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    training_pid = None
    try:
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            status, body = await poll(http, url + "/health", lambda status, _: status == 200)
            print(f"/health answered {time.monotonic() - started:.2f} s after the process started")
            assert body["status"] == "ok"
            status, body = await poll(http, url + "/ready", lambda _, body: "progress" in body)
            assert (status, body["ready"], body["reason"]) == (503, False, "training the custom model")
            assert 0.0 <= body["progress"] < 1.0
            async with http.post(url + "/api/v1/chat", json={"message": "where is my card?"}) as response:
                assert response.status == 503 and (await response.json())["error"] == "warming_up"
            log = log_path.read_text(errors="replace")
            training_pid = int(re.search(r"training the custom model in process (\d+)", log).group(1))
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)  # bounds the wait; not a speed assertion
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    with pytest.raises(ProcessLookupError):  # the training child was stopped, not left behind
        os.kill(training_pid, 0)
    assert "Traceback" not in log, log[-3000:]
