"""A real bankbot web app (build_web_app + attach_api) over scripted models, on 127.0.0.1, for the API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp.test_utils import TestClient, TestServer

from bot.runtime import Runtime
from bot.server import build_web_app
from bot.settings import Settings
from tests.scripted import Scripted, ScriptedAdapter, builders

ADMIN_TOKEN = "s3cret-admin-token"


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    models: dict[str, ScriptedAdapter]

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))


def scripted_models(**overrides: ScriptedAdapter) -> dict[str, ScriptedAdapter]:
    """custom, qlora and gemini, each answering by default unless overridden."""
    models = {name: ScriptedAdapter(name, default=Scripted(f"{name} says hello", "card_arrival", 0.8))
              for name in ("custom", "qlora", "gemini")}
    return models | overrides


def make_settings(**overrides) -> Settings:
    values = dict(llm_model_version="custom", fallback_order="custom,qlora,gemini", benchmark_every_n=0)
    return Settings(**(values | overrides))


@asynccontextmanager
async def running_api(models: dict[str, ScriptedAdapter] | None = None, **settings) -> AsyncIterator[Api]:
    models = models or scripted_models()
    runtime = await Runtime.create(make_settings(**settings), builders=builders(*models.values()),
                                   serving=False)
    app = build_web_app(runtime)  # the REST routes included
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Api(client, runtime, models)
    finally:
        await client.close()
        await runtime.aclose()
