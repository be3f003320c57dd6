"""Start-up in the background: nothing heavy on the event loop, every configured model warmed, /ready telling
what is loading or training (with progress), and a "warming up" answer while no model can answer."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.runtime import Runtime
from bot.server import build_web_app
from bot.settings import Settings
from bot.training import CustomTraining
from bot.warmup import FAILED, WARM, WARMING_UP, Warmup
from llm.errors import ModelUnavailableError
from tests.fake_slack import BOT_USER_ID
from tests.loop_lag import LoopLag
from tests.scripted import Scripted, ScriptedAdapter, builders
from tests.slack_helpers import mention, slack_harness

REPO = Path(__file__).resolve().parent.parent
CUSTOM = "llm.adapters.custom:CustomTransformerAdapter"  # the real adapter: no checkpoint until trained
STALL_S = 0.25  # the heavy adapter blocks for 1 s at import and 1 s at load: a stall on the loop shows that


class GatedLoad(ScriptedAdapter):
    """A scripted model whose load waits for `loaded_gate`."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.loaded_gate = asyncio.Event()

    async def load(self) -> None:
        await self.loaded_gate.wait()
        await super().load()


def settings(**overrides) -> Settings:
    return Settings(**(dict(llm_model_version="custom", fallback_order="custom,gemini", benchmark_every_n=0)
                       | overrides))


async def eventually(check, within_s: float = 60.0):
    """Poll `check()` (a coroutine function) until it returns something truthy; returns it."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not (value := await check()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)
    return value


def gated_training(tmp_path: Path, monkeypatch, runtime: Runtime) -> tuple[CustomTraining, Path]:
    """The tiny training's child process, held after reporting 42% until the returned path exists."""
    gate = tmp_path / "go-on"
    monkeypatch.setenv("TINY_TRAINING_GATE", str(gate))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return CustomTraining(runtime.settings, command=[sys.executable, "-m", "tests.tiny_training"]), gate


async def ready(client: TestClient) -> tuple[int, dict]:
    async with client.get("/ready") as response:
        return response.status, await response.json()


async def ask(client: TestClient, message: str = "where is my card?") -> tuple[int, dict]:
    async with client.post("/api/v1/chat", json={"message": message}) as response:
        return response.status, await response.json()


async def test_a_first_request_to_a_model_not_loaded_yet_does_not_stall_the_loop():
    sys.modules.pop("tests.heavy_adapter", None)  # its import is paid again, on this request
    runtime = await Runtime.create(settings(fallback_order="custom"), serving=False,
                                   builders={"custom": "tests.heavy_adapter:HeavyAdapter"})
    try:
        async with LoopLag() as lag:
            result = await runtime.pipeline.generate("where is my card?")
        assert result.text == "heavy answers: where is my card?"
        assert lag.max_s < STALL_S, f"the event loop stalled for {lag.max_s:.2f} s"
    finally:
        await runtime.aclose()


async def test_every_configured_model_warms_up_and_ready_follows_the_active_one():
    custom = GatedLoad("custom", default=Scripted("custom answers"))
    qlora = ScriptedAdapter("qlora", load_error=ModelUnavailableError("no GPU"))
    gemini = ScriptedAdapter("gemini", default=Scripted("gemini answers"))
    runtime = await Runtime.create(settings(fallback_order="custom,qlora,gemini"),
                                   builders=builders(custom, qlora, gemini), serving=False)
    runtime.warmup = Warmup(runtime)
    async with TestClient(TestServer(build_web_app(runtime), host="127.0.0.1")) as client:
        try:
            runtime.warmup.start()
            status, body = await ready(client)
            assert (status, body["ready"], body["reason"]) == (503, False, "loading custom")
            assert "progress" not in body and custom.prompts == []  # no model call while it loads
            await eventually(lambda: asyncio.sleep(0, runtime.warmup.models["gemini"].state == WARM))
            assert runtime.warmup.models["qlora"] == runtime.warmup.status("qlora")
            assert (runtime.warmup.models["qlora"].state, runtime.warmup.models["qlora"].reason) == (FAILED, "no GPU")
            assert runtime.warming_up()
            custom.loaded_gate.set()
            status, body = await eventually(lambda: _ready_now(client))
            assert body["ready"] is True and "reason" not in body and not runtime.warming_up()
        finally:
            await runtime.aclose()


async def _ready_now(client: TestClient) -> tuple[int, dict] | None:
    status, body = await ready(client)
    return (status, body) if status == 200 else None


@pytest.mark.usefixtures("banking77_dir")
async def test_while_custom_trains_ready_shows_progress_fallbacks_answer_then_custom_serves(tmp_path, monkeypatch):
    gemini = ScriptedAdapter("gemini").enqueue(Scripted("gemini answers"))  # one answer, then it fails
    runtime = await Runtime.create(settings(model_dir=tmp_path / "models"), serving=False,
                                   builders={"custom": CUSTOM} | builders(gemini))
    training, gate = gated_training(tmp_path, monkeypatch, runtime)
    runtime.warmup = Warmup(runtime, training=training)
    async with TestClient(TestServer(build_web_app(runtime), host="127.0.0.1")) as client:
        try:
            runtime.warmup.start()
            status, body = await eventually(lambda: _with_progress(client, 0.42))
            assert (status, body["ready"], body["reason"]) == (503, False, "training the custom model")

            status, answer = await ask(client)  # custom cannot answer yet: the fallback does
            assert (status, answer["model"], answer["fallback_from"]) == (200, "gemini", "custom")
            status, refusal = await ask(client)  # and when no model can answer: "warming up"
            assert (status, refusal["error"], refusal["message"]) == (503, "warming_up", WARMING_UP)

            gate.touch()  # the tiny training goes on to the end, then the custom model loads
            status, body = await eventually(lambda: _ready_now(client))
            assert body["ready"] is True and runtime.warmup.models["custom"].state == WARM
            status, answer = await ask(client)
            assert (status, answer["model"], answer["fallback_from"]) == (200, "custom", None)
        finally:
            await runtime.aclose()
    assert training.process is not None and training.process.returncode == 0


async def _with_progress(client: TestClient, progress: float) -> tuple[int, dict] | None:
    status, body = await ready(client)
    return (status, body) if body.get("progress") == progress else None


async def test_slack_gets_the_warming_up_text_while_no_model_can_answer(tmp_path, monkeypatch):
    custom = ScriptedAdapter("custom", load_error=ModelUnavailableError("no custom model checkpoint"))
    gemini = ScriptedAdapter("gemini")  # nothing queued: it fails
    async with slack_harness(custom=custom, gemini=gemini) as h:
        training, _gate = gated_training(tmp_path, monkeypatch, h.runtime)
        h.runtime.warmup = Warmup(h.runtime, training=training)
        h.runtime.warmup.start()
        await h.post_event(mention(f"<@{BOT_USER_ID}> where is my card?"))
        [post] = await h.fake.wait_for(lambda f: f.posts())
        assert post["text"] == WARMING_UP
        await h.runtime.warmup.aclose()  # the held training child is stopped
        assert training.process is not None and training.process.returncode is not None
