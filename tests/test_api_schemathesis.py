"""Schemathesis fuzzes every operation of /openapi.json against a live server: no 5xx, no schema violation.

The server runs on its own event loop in a thread; the Schemathesis CLI runs as a separate process.
"""

import asyncio
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from aiohttp import web

from bot.runtime import Runtime
from bot.server import build_web_app
from tests.api_helpers import ADMIN_TOKEN, make_settings, scripted_models
from tests.scripted import Scripted, ScriptedAdapter, builders

pytest.importorskip("schemathesis")


@contextmanager
def live_server(models, **settings):
    """The bankbot web app on 127.0.0.1:<ephemeral port>; yields its base URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def start():
        runtime = await Runtime.create(make_settings(**settings), builders=builders(*models.values()),
                                       serving=False)
        app = build_web_app(runtime)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        state.update(runtime=runtime, runner=runner, port=runner.addresses[0][1])

    async def stop():
        await state["runner"].cleanup()
        await state["runtime"].aclose()

    def run():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            state["error"] = exc
        started.set()
        if "error" not in state:
            loop.run_forever()
            loop.run_until_complete(stop())
        loop.close()

    thread = threading.Thread(target=run, name="api-server", daemon=True)
    thread.start()
    started.wait(60)
    if "error" in state:
        raise state["error"]
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def schemathesis(base_url: str, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{base_url}/openapi.json", "--checks", "all",
               "--max-examples", "60", "--seed", "1", "--workers", "1", "--request-timeout", "10", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_schemathesis_finds_no_server_error_and_no_schema_violation():
    models = scripted_models(gemini=ScriptedAdapter("gemini", load_error=RuntimeError("no API key")))
    models["qlora"].default = Scripted("slow answer", delay_s=0.001)
    with live_server(models, admin_api_token=ADMIN_TOKEN) as url:
        run = schemathesis(url, "-H", f"Authorization: Bearer {ADMIN_TOKEN}")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout


def test_schemathesis_with_admin_endpoints_disabled():
    # While ADMIN_API_TOKEN is unset the admin endpoints answer 403 even without an Authorization header (the
    # issue asks for that), where Schemathesis's missing_required_header check expects a 401.
    with live_server(scripted_models()) as url:
        run = schemathesis(url, "--include-path-regex", "^/(model|ready|health)",
                           "--exclude-checks", "missing_required_header")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
