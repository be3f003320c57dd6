"""ModelFactory: version strings -> adapters, with one cached, loaded instance per model."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from llm.model_names import DEFAULT_VERSIONS, resolve_model_name

if TYPE_CHECKING:
    from llm.adapters.base import ModelAdapter
    from llm.config import LLMSettings

AdapterBuilder = Callable[["LLMSettings", "str | None"], "ModelAdapter"]

# Imported on first use, so a CPU machine never imports the GPU or cloud stacks it does not need.
BUILTIN_ADAPTERS = {
    "custom": "llm.adapters.custom:CustomTransformerAdapter",
    "qlora": "llm.adapters.qlora:QLoRAAdapter",
    "gemini": "llm.adapters.gemini:GeminiAdapter",
}


def _import_builder(path: str) -> AdapterBuilder:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


class ModelFactory:
    def __init__(self, settings: LLMSettings, builders: dict[str, AdapterBuilder | str] | None = None):
        self.settings = settings
        self._builders: dict[str, AdapterBuilder | str] = dict(builders or BUILTIN_ADAPTERS)
        self._instances: dict[str, ModelAdapter] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._builders)

    def resolve(self, name_or_version: str) -> str:
        """`custom_model_built_0.0.0` or `custom` -> `custom`; UnknownModelError lists the valid ones."""
        return resolve_model_name(name_or_version, self.names)

    def default_version(self, name: str) -> str | None:
        return DEFAULT_VERSIONS.get(name)

    def loaded(self) -> dict[str, ModelAdapter]:
        """The instances made so far (none is created by asking)."""
        return dict(self._instances)

    async def get(self, name_or_version: str) -> ModelAdapter:
        """The one instance of that model, created and loaded on first use.

        Concurrent first calls share one load. A load that fails is not cached, so a later call retries
        (for example after `bankbot train custom`).
        """
        name = self.resolve(name_or_version)
        if name in self._instances:
            return self._instances[name]
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._instances:
                builder = self._builders[name]
                if isinstance(builder, str):
                    builder = _import_builder(builder)
                version = name_or_version if name_or_version != name else None
                adapter = builder(self.settings, version)
                await adapter.load()
                self._instances[name] = adapter
        return self._instances[name]

    async def aclose(self) -> None:
        for adapter in self._instances.values():
            await adapter.aclose()
        self._instances.clear()
