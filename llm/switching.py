"""Which model is active, and the routing policy (canary, shadow, escalation): kept in the database so every
replica follows a change, with an audit trail."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm.adapters.base import HealthStatus
from llm.errors import UnknownModelError
from llm.routing.policy import POLICY_KEY, Canary, RoutingPolicy

if TYPE_CHECKING:
    from llm.factory import ModelFactory
    from llm.ports import PipelineStore

log = logging.getLogger(__name__)

ACTIVE_MODEL_KEY = "active_model"  # the model every replica serves
CONFIGURED_MODEL_KEY = "configured_model"  # LLM_MODEL_VERSION as last seen at start-up


@dataclass(frozen=True)
class SwitchOutcome:
    ok: bool
    previous: str
    target: str  # the resolved adapter name, or the raw input when it is unknown
    reason: str = ""
    version: str | None = None  # the version string asked for and served, None for a bare name

    @property
    def served(self) -> str:
        """What serves now (on success) or was refused: the version string, else the name."""
        return self.version or self.target


class ModelSwitcher:
    def __init__(self, factory: ModelFactory, store: PipelineStore, default_model: str, poll_s: float = 1.0):
        self.factory = factory
        self.store = store
        self.configured = default_model  # LLM_MODEL_VERSION
        self.active, self.active_version = self._parse(default_model)  # name, and version string or None
        self.poll_s = poll_s
        self._poller: asyncio.Task | None = None
        self.policy = RoutingPolicy()  # canary, shadow, escalation: read with the active model

    async def start(self, *, apply_configured: bool = True) -> None:
        """Follow the database's active model.

        A server (`apply_configured`) first applies LLM_MODEL_VERSION when it changed since the last start
        (`cp .env.qlora .env`), audited as a switch by "startup"; otherwise the database's active model wins, so a
        runtime switch survives restarts. One-off commands (`bankbot ask`, `bench`) never change it.
        """
        seen = await self.store.get_setting(CONFIGURED_MODEL_KEY)
        stored = await self.store.get_setting(ACTIVE_MODEL_KEY)
        if apply_configured and (seen != self.configured or stored is None):
            await self.store.put_setting(CONFIGURED_MODEL_KEY, self.configured)
            await self.store.put_setting(ACTIVE_MODEL_KEY, self.version_of(self.active))
            if stored is not None and stored != self.version_of(self.active):
                await self.store.record_switch(from_model=stored, to_model=self.active, by="startup", ok=True,
                                               reason=f"LLM_MODEL_VERSION is now {self.configured}")
        elif stored is not None:
            self._adopt(stored)
        await self._read_policy()
        if self._poller is None and self.poll_s > 0:
            self._poller = asyncio.create_task(self._follow(), name="active-model-poller")

    async def refresh(self) -> str:
        stored = await self.store.get_setting(ACTIVE_MODEL_KEY)
        if stored:
            self._adopt(stored)
        await self._read_policy()
        return self.active

    async def _read_policy(self) -> None:
        try:
            policy = RoutingPolicy.from_json(await self.store.get_setting(POLICY_KEY))
        except ValueError as exc:
            log.error("ignoring the routing policy in the database: %s", exc)
            return
        if policy != self.policy:
            log.info("routing policy is now: %s", "; ".join(policy.describe()))
            self.policy = policy

    def _parse(self, value: str) -> tuple[str, str | None]:
        """`gemini_2.5_pro_v1.0.0` -> ("gemini", "gemini_2.5_pro_v1.0.0"); `gemini` or a model's default version
        string -> ("gemini", None): the bare name builds the default."""
        name = self.factory.resolve(value)
        version = value.strip().lower()
        return name, (None if version in (name, self.factory.default_version(name)) else version)

    def version_of(self, name: str) -> str:
        """What to ask the factory for: the active model's version string, or the bare name of any other."""
        return self.active_version or name if name == self.active else name

    def _adopt(self, stored: str) -> None:
        try:
            name, version = self._parse(stored)
        except UnknownModelError:
            log.error("ignoring unknown active model %r in the database", stored)
            return
        if (name, version) != (self.active, self.active_version):
            log.info("active model is now %s (was %s)", version or name, self.version_of(self.active))
            self.active, self.active_version = name, version

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - a database outage must not stop the poller
                log.debug("could not refresh the active model: %s", exc)

    async def switch(self, target: str, *, by: str) -> SwitchOutcome:
        """Make `target` (a name, or a version string its adapter can serve) active, once it is healthy.

        A version string is served as that version or refused with the versions the adapter can serve."""
        previous = self.version_of(self.active)
        try:
            await self.factory.check_version(target)
            name, version = self._parse(target)
        except UnknownModelError as exc:  # UnsupportedVersionError too
            return await self._audit(SwitchOutcome(False, previous, target.strip(), str(exc)), by)
        wanted = version or name
        health = await self.health_of(wanted)
        if not health.healthy:
            return await self._audit(
                SwitchOutcome(False, previous, name, f"{wanted} is unhealthy: {health.reason}", version), by)
        await self.store.put_setting(ACTIVE_MODEL_KEY, wanted)
        self.active, self.active_version = name, version
        return await self._audit(SwitchOutcome(True, previous, name, version=version), by)

    async def set_policy(self, policy: RoutingPolicy, *, by: str, what: str) -> SwitchOutcome:
        """Store `policy` for every replica after checking the models it names (and the health of a new canary
        or shadow); audited like a switch, `what` saying what changed (e.g. "canary qlora 10%")."""
        active = self.version_of(self.active)
        try:
            policy.check()
            for part in (policy.canary, policy.shadow, policy.escalation):
                if part is not None:
                    await self.factory.check_version(part.model)
        except (UnknownModelError, ValueError) as exc:
            return await self._audit(SwitchOutcome(False, active, what, str(exc)), by)
        for part, before in ((policy.canary, self.policy.canary), (policy.shadow, self.policy.shadow)):
            if part is not None and (before is None or before.model != part.model):
                health = await self.health_of(part.model)
                if not health.healthy:
                    return await self._audit(
                        SwitchOutcome(False, active, what, f"{part.model} is unhealthy: {health.reason}"), by)
        await self.store.put_setting(POLICY_KEY, policy.to_json())
        self.policy = policy
        return await self._audit(SwitchOutcome(True, active, what), by)

    async def canary(self, target: str, percent: float, *, by: str) -> SwitchOutcome:
        """`target` for `percent` of users (sticky); 100 promotes it (a switch) and ends the canary."""
        if percent >= 100:
            outcome = await self.switch(target, by=by)
            if outcome.ok and self.policy.canary is not None:
                await self.set_policy(self.policy.with_(canary=None), by=by, what="canary off (promoted)")
            return outcome
        return await self.set_policy(self.policy.with_(canary=Canary(target.strip().lower(), percent)), by=by,
                                     what=f"canary {target.strip()} {percent:g}%")

    async def _audit(self, outcome: SwitchOutcome, by: str) -> SwitchOutcome:
        await self.store.record_switch(from_model=outcome.previous, to_model=outcome.served, by=by,
                                       ok=outcome.ok, reason=outcome.reason)
        return outcome

    async def health_of(self, name: str) -> HealthStatus:
        """`name` (or a version string) is loaded and answers one probe within its timeout."""
        try:
            adapter = await self.factory.get(self.version_of(name))
            async with asyncio.timeout(adapter.default_timeout_s + 1):  # a check that hangs is a failed check
                return await adapter.health_check()
        except TimeoutError:
            return HealthStatus(False, "the health check timed out")
        except Exception as exc:  # noqa: BLE001 - a model that cannot load is unhealthy, with its reason
            return HealthStatus(False, str(exc) or type(exc).__name__)

    async def health_of_all(self, names: list[str]) -> dict[str, HealthStatus]:
        ordered = list(dict.fromkeys([self.active, *names]))
        results = await asyncio.gather(*(self.health_of(n) for n in ordered))
        return dict(zip(ordered, results, strict=True))

    async def aclose(self) -> None:
        if self._poller:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
