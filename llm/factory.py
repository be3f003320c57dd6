"""ModelFactory: version strings -> adapters, with one cached, loaded instance per model."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from llm.errors import UnsupportedVersionError
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
    "encoder": "llm.adapters.encoder:EncoderAdapter",
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
        self._loads: dict[tuple[str, str | None], asyncio.Future] = {}  # loads under way
        self._built_as: dict[str, str] = {}  # name -> the version string its instance was built for
        self._retired: list[ModelAdapter] = []  # instances replaced by another version of the same model

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

    async def builder(self, name: str) -> AdapterBuilder:
        """The builder of `name`; an adapter module (and the SDK it imports) is imported in a worker thread."""
        builder = self._builders[name]
        if isinstance(builder, str):
            builder = self._builders[name] = await asyncio.to_thread(_import_builder, builder)
        return builder

    async def check_version(self, name_or_version: str) -> tuple[str, str | None]:
        """(name, version or None for a bare name). A version string its adapter cannot serve raises
        UnsupportedVersionError listing the ones it can, so nobody is told "switched" while another one serves."""
        name = self.resolve(name_or_version)
        version = name_or_version.strip().lower()
        if version == name:
            return name, None
        servable = getattr(await self.builder(name), "servable_versions", None)
        if servable is not None:
            versions = servable(self.settings)
            if version not in versions:
                raise UnsupportedVersionError(f"{name} cannot serve {name_or_version!r}; it serves "
                                              f"{', '.join(versions)}")
        return name, version

    async def get(self, name_or_version: str) -> ModelAdapter:
        """The one instance of that model, created and loaded on first use (a bare name takes the instance
        there is, whatever its version; a version string replaces an instance of another version).

        Concurrent first calls share one load. The load runs as a task of its own: a caller that stops waiting
        (a request's timeout) leaves it running for the next caller. A load that fails is not cached, so a later
        call retries (for example after `bankbot train custom`).
        """
        name, version = await self.check_version(name_or_version)
        if name in self._instances and version in (None, self._built_as[name]):
            return self._instances[name]
        key = (name, version)
        task = self._loads.get(key)
        if task is None:
            task = self._loads[key] = asyncio.ensure_future(self._load(name, version))
            task.add_done_callback(lambda _: self._loads.pop(key, None))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # never "unretrieved"
        return await asyncio.shield(task)

    def loading(self, name: str) -> bool:
        """True while a load of `name` is under way."""
        return any(key[0] == name for key in self._loads)

    async def _load(self, name: str, version: str | None) -> ModelAdapter:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            current = self._instances.get(name)
            if current is None or version not in (None, self._built_as[name]):
                adapter = (await self.builder(name))(self.settings, version)
                await adapter.load()
                if current is not None and current is not adapter:
                    self._retired.append(current)  # requests may still run on it; closed with the factory
                self._instances[name] = adapter
                self._built_as[name] = version or adapter.version.lower()
        return self._instances[name]

    async def aclose(self) -> None:
        for task in list(self._loads.values()):
            task.cancel()
        await asyncio.gather(*self._loads.values(), return_exceptions=True)
        for adapter in [*self._retired, *self._instances.values()]:
            await adapter.aclose()
        self._instances.clear()
        self._retired.clear()
