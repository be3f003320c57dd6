"""BankingLLMPipeline: the active model (or, for a canary's share of users, the canary) first, then the
fallback chain, with timeouts, circuit breakers, daily budgets of paid models, calibrated confidence, escalation
of unsure answers, a shadow model in the background, request records and a periodic background benchmark."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.adapters.base import OUT_OF_SCOPE
from llm.calls import CANARY, ESCALATION, PRIMARY, SHADOW, ModelCall, failed_call, ok_call
from llm.circuit_breaker import BreakerState, CircuitBreaker
from llm.errors import (
    AllModelsFailedError,
    BudgetExhaustedError,
    CircuitOpenError,
    InvalidPromptError,
    ModelTimeoutError,
)
from llm.live_metrics import LiveMetrics
from llm.priority import background_work
from llm.redact import redact
from llm.request import ChainWalk, GuardedCall, RequestContext, arm, ms_since, reason
from llm.routing.budgets import ModelBudgets, parse_budgets
from llm.routing.confidence_map import Calibrations
from llm.routing.policy import RoutingPolicy
from llm.routing.split import in_share
from llm.switching import ModelSwitcher

if TYPE_CHECKING:
    from llm.adapters.base import GenerationResult, ModelAdapter
    from llm.benchmark import BenchmarkRunner
    from llm.config import LLMSettings
    from llm.factory import ModelFactory
    from llm.ports import PipelineStore

log = logging.getLogger(__name__)


@dataclass
class PipelineOptions:
    fallback_order: list[str]
    timeout_s: float = 30.0  # upper bound; each adapter's default_timeout_s may be lower
    timeouts: dict[str, float] = field(default_factory=dict)  # per-model overrides
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    benchmark_every_n: int = 50  # 0 disables the periodic benchmark
    benchmark_sample: int = 20
    max_prompt_chars: int = 4000
    store_messages: bool = False  # keep the (redacted) message text in request rows
    user_hash_salt: str = "bankbot"
    clock: Callable[[], float] = time.monotonic  # the circuit breakers' clock (tests move one by hand)
    model_dir: Path | None = None  # $MODEL_DIR/calibration/<model>.json: confidence maps of LLMs
    budgets: dict[str, float] = field(default_factory=dict)  # MODEL_BUDGET_USD_PER_DAY per paid model
    default_budget: float | None = None  # any other paid model's; None: no limit

    @classmethod
    def from_settings(cls, settings: LLMSettings, **overrides: Any) -> PipelineOptions:
        values = dict(
            fallback_order=settings.fallback_names, timeout_s=settings.model_timeout_s,
            breaker_failures=settings.breaker_failures, breaker_cooldown_s=settings.breaker_cooldown_s,
            benchmark_every_n=settings.benchmark_every_n, benchmark_sample=settings.benchmark_sample,
            max_prompt_chars=settings.max_prompt_chars, model_dir=settings.model_dir,
        )
        values["budgets"], values["default_budget"] = parse_budgets(settings.model_budget_usd_per_day)
        values.update(overrides)
        return cls(**values)


class BankingLLMPipeline:
    def __init__(self, factory: ModelFactory, store: PipelineStore, options: PipelineOptions, *,
                 default_model: str, benchmark: BenchmarkRunner | None = None):
        self.factory = factory
        self.store = store
        self.options = options
        self.benchmark = benchmark
        self.switcher = ModelSwitcher(factory, store, default_model)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.request_count = 0
        self.fallbacks = 0
        self.benchmark_task: asyncio.Task | None = None
        self.request_listeners: list[Callable[[dict[str, Any]], None]] = []  # e.g. Prometheus, JSON logs
        self.live = LiveMetrics()  # per-model figures from the call records (what users' requests met)
        self.budgets = ModelBudgets(store, options.budgets, options.default_budget)
        self.calibrations = Calibrations(options.model_dir)
        self.shadow_tasks: set[asyncio.Task] = set()
        if benchmark is not None:  # a failing model, or one whose budget is spent, is not benchmarked on top
            benchmark.skip_reason = lambda name: self._open_circuit(name) or self.budgets.exhausted(name)

    @property
    def active_model(self) -> str:
        return self.switcher.active

    async def start(self, *, apply_configured: bool = True) -> None:
        """Read the active model from the database and follow switches made by other replicas."""
        await self.switcher.start(apply_configured=apply_configured)

    def breaker(self, name: str) -> CircuitBreaker:
        if name not in self.breakers:
            self.breakers[name] = CircuitBreaker(self.options.breaker_failures, self.options.breaker_cooldown_s,
                                                 self.options.clock)
        return self.breakers[name]

    def _open_circuit(self, name: str) -> str | None:
        breaker = self.breakers.get(name)
        if breaker is None or breaker.state is not BreakerState.OPEN:
            return None
        return f"circuit open after {breaker.consecutive_failures} failures"

    @property
    def policy(self) -> RoutingPolicy:
        return self.switcher.policy

    def chain(self, first: str | None = None) -> list[str]:
        """`first` (default: the active model), then the active model, then FALLBACK_ORDER."""
        active = self.active_model
        return list(dict.fromkeys([first or active, active, *self.options.fallback_order]))

    def first_model(self, context: RequestContext) -> tuple[str, str | None, str]:
        """(name, version, role): the canary for the users in its share (sticky), else the active model."""
        canary = self.policy.canary
        if canary is not None and in_share(self.options.user_hash_salt, "canary", context.user_id, canary.percent):
            name = self.factory.resolve(canary.model)
            if name != self.active_model:
                return name, canary.model, CANARY
        return self.active_model, None, PRIMARY

    async def generate(self, prompt: str, context: RequestContext | None = None) -> GenerationResult:
        request = self._begin(prompt, context)
        try:
            for name in self.chain(request.first):
                role = request.next_role()
                call_started = time.perf_counter()
                try:
                    result = await self._call(name, request.prompt, request.version_for(name))
                except Exception as exc:  # noqa: BLE001 - every failure moves down the chain
                    request.failed(name, exc, call_started, role)
                    continue
                request.answered(name, result, call_started, role)
                result = replace(result, extra=result.extra | {"arm": arm(role)})
                result = await self._escalate(result, request.prompt, request.calls, request.context)
                return self._serve(request, result)
            raise self._all_failed(request)
        finally:
            self._count_request()

    def _begin(self, prompt: str, context: RequestContext | None) -> ChainWalk:
        """A request's walk down the chain, once its prompt is valid and its first model chosen."""
        context = context or RequestContext()
        prompt = self._validate(prompt)
        started = time.perf_counter()
        first, first_version, first_role = self.first_model(context)
        return ChainWalk(context, prompt, first, first_version, first_role, started)

    def _serve(self, request: ChainWalk, result: GenerationResult) -> GenerationResult:
        """The answer that ends the walk: stamped with the request's figures, recorded, and stored once any
        shadow call is done."""
        fallback_from = next(iter(request.failures), None)
        self.fallbacks += fallback_from is not None
        result = replace(result, fallback_from=fallback_from, request_id=request.context.request_id,
                         latency_ms=ms_since(request.started), model_latency_ms=result.latency_ms)
        row = self._record(request.context, request.prompt, request.calls, result=result, store=False)
        if not self._start_shadow(request.prompt, row, request.context):
            self.store.request_log.add(row)
        return result

    def _record_failure(self, request: ChainWalk, error: str) -> None:
        self._record(request.context, request.prompt, request.calls, error=error,
                     latency_ms=ms_since(request.started))

    def _all_failed(self, request: ChainWalk) -> AllModelsFailedError:
        """Every model failed: the request is recorded, and the error to raise carries each model's reason."""
        error = AllModelsFailedError(request.failures)
        self._record_failure(request, str(error))
        return error

    def _validate(self, prompt: str) -> str:
        text = (prompt or "").strip()
        if not text:
            raise InvalidPromptError("the message is empty")
        if len(text) > self.options.max_prompt_chars:
            raise InvalidPromptError(
                f"the message is {len(text)} characters long; the limit is {self.options.max_prompt_chars}")
        return text

    async def _escalate(self, first: GenerationResult, prompt: str, calls: list[ModelCall],
                        context: RequestContext) -> GenerationResult:
        """Ask the escalation model when `first` is unsure (calibrated confidence below the threshold); its
        answer is shown. If it fails, times out or is over its budget, `first` stands. Out-of-scope answers are
        escalated only when the policy says so."""
        rule = self.policy.escalation
        if rule is None or first.confidence >= rule.threshold:
            return first
        target = self.factory.resolve(rule.model)
        if target == first.model or (first.intent == OUT_OF_SCOPE and not rule.out_of_scope):
            return first
        started = time.perf_counter()
        try:
            result = await self._call(target, prompt, rule.model)
        except Exception as exc:  # noqa: BLE001 - the first answer stands
            calls.append(failed_call(target, exc, ms_since(started), ESCALATION, escalated_from=first.model))
            log.warning("escalation to %s failed for request %s: %s", target, context.request_id, reason(exc))
            return first
        calls.append(ok_call(target, result, ms_since(started), ESCALATION, escalated_from=first.model))
        return replace(result, extra=result.extra | {"arm": "escalation", "escalated_from": first.model,
                                                     "first_confidence": first.confidence})

    def _start_shadow(self, prompt: str, row: dict[str, Any], context: RequestContext) -> bool:
        """Also send the request to the shadow model, in the background (a sampled share of requests): its
        answer is never shown and never waited for; the request row is stored once the shadow call is done,
        with the shadow call among its calls. False when no shadow call is made (the caller stores the row)."""
        rule = self.policy.shadow
        if rule is None or not in_share(self.options.user_hash_salt, "shadow", context.request_id, rule.percent):
            return False
        name = self.factory.resolve(rule.model)
        if name == row["model"] or self.budgets.exhausted(name) or self._open_circuit(name):
            return False
        task = asyncio.create_task(self._shadow(name, rule.model, prompt, row), name=f"shadow-{name}")
        self.shadow_tasks.add(task)
        task.add_done_callback(self.shadow_tasks.discard)
        return True

    async def _shadow(self, name: str, version: str, prompt: str, row: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            with background_work():  # live requests go first where the model queues
                result = await self._call(name, prompt, version)
        except BaseException as exc:  # noqa: BLE001 - cancelled at shutdown included: the row is still stored
            call = failed_call(name, exc, ms_since(started), SHADOW)
            if not isinstance(exc, Exception):
                raise
        else:
            call = ok_call(name, result, ms_since(started), SHADOW)
            self.live.record_shadow(name, result.intent == row.get("intent"), call.latency_ms, result.cost_usd)
        finally:
            row["calls"] = [*row["calls"], call.to_row()]
            self.store.request_log.add(row)

    async def drain_shadows(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for shadow calls in flight, then cancel the rest (their rows are stored)."""
        if not self.shadow_tasks:
            return
        tasks = list(self.shadow_tasks)
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _call(self, name: str, prompt: str, version: str | None = None) -> GenerationResult:
        """One model call (`version`: a version string to ask for, else the model's own), guarded by
        `_guarded_call`. The confidence comes back calibrated."""
        async with self._guarded_call(name, version) as call:
            try:
                async with asyncio.timeout(call.timeout_s):  # no extra task per call, unlike wait_for on 3.11
                    call.result = await call.adapter.generate(prompt)
            except TimeoutError:
                raise ModelTimeoutError(f"timed out after {call.timeout_s:g}s") from None
        return self.calibrations.apply(call.result)

    @asynccontextmanager
    async def _guarded_call(self, name: str, version: str | None) -> AsyncIterator[GuardedCall]:
        """What every model call goes through, plain or streamed: the breaker, the load (bounded by the model's
        timeout), a paid model's reservation of its estimated cost of the day's budget, then the body, which
        sets `result`. Model faults (transport, timeout, 5xx, cannot load) count against the breaker; an answer
        rejected for this one prompt (a safety block, malformed output) does not, nor does a spent budget."""
        breaker = self.breaker(name)
        if not breaker.allows_call():
            raise CircuitOpenError(f"circuit open after {breaker.consecutive_failures} failures; "
                                   f"retry in {breaker.retry_in_s():.0f}s")
        reserved: float | None = None
        try:
            load_timeout = self.options.timeouts.get(name, self.options.timeout_s)
            try:  # a model still loading (vLLM: minutes) holds a request up to the timeout; the load goes on
                async with asyncio.timeout(load_timeout):
                    adapter = await self.factory.get(version or self.switcher.version_of(name))
            except TimeoutError:
                raise ModelTimeoutError(f"still loading after {load_timeout:g}s") from None
            if adapter.estimated_call_cost_usd is not None:
                reserved = await self.budgets.reserve(name, adapter.estimated_call_cost_usd)
                if reserved is None:
                    raise BudgetExhaustedError(self.budgets.exhausted(name) or "daily budget spent")
            call = GuardedCall(adapter, self._timeout(name, adapter))
            yield call
        except Exception as exc:
            if reserved is not None:
                await self.budgets.settle(name, reserved, 0.0)
            if getattr(exc, "model_fault", True):
                breaker.record_failure()
            else:
                breaker.record_neutral()
            raise
        if reserved is not None:
            await self.budgets.settle(name, reserved, call.result.cost_usd)
        breaker.record_success()

    def _timeout(self, name: str, adapter: ModelAdapter) -> float:
        if name in self.options.timeouts:
            return self.options.timeouts[name]
        return min(self.options.timeout_s, adapter.default_timeout_s)

    def _record(self, context: RequestContext, prompt: str, calls: list[ModelCall], *,
                result: GenerationResult | None = None, error: str | None = None,
                latency_ms: float | None = None, store: bool = True) -> dict[str, Any]:
        """One request row (latency_ms: what the user waited; model_latency_ms: the answering model's own time)
        with one record per model call, for the request log and every listener."""
        row: dict[str, Any] = {
            "created_at": datetime.now(UTC), "request_id": context.request_id, "source": context.source,
            "user_hash": self._hash_user(context.user_id), "error": error,
            "message": redact(prompt) if self.options.store_messages else None,
            "calls": [call.to_row() for call in calls],
        }
        if result is not None:
            row.update(model=result.model, model_version=result.model_version, device=result.device,
                       latency_ms=result.latency_ms, model_latency_ms=result.model_latency_ms,
                       ttft_ms=result.extra.get("ttft_ms", result.latency_ms),  # unstreamed: all at once
                       prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                       confidence=result.confidence, intent=result.intent, fallback_from=result.fallback_from)
        else:
            row.update(model=self.active_model, latency_ms=latency_ms)
        self.live.record(calls, result)
        if store:
            self.store.request_log.add(row)
        for listener in self.request_listeners:
            try:
                listener(row)
            except Exception:  # noqa: BLE001 - an observer must never fail a request
                log.exception("request listener failed")
        return row

    def _hash_user(self, user_id: str | None) -> str | None:
        if not user_id:
            return None
        return hashlib.sha256(f"{self.options.user_hash_salt}:{user_id}".encode()).hexdigest()[:32]

    def _count_request(self) -> None:
        self.request_count += 1
        every = self.options.benchmark_every_n
        if self.benchmark and every and self.request_count % every == 0:
            self.start_background_benchmark()

    def start_background_benchmark(self) -> asyncio.Task | None:
        """Start a benchmark of all models unless one is running; never awaited by a user's request."""
        if self.benchmark is None or (self.benchmark_task and not self.benchmark_task.done()):
            return None
        self.benchmark_task = asyncio.create_task(self._benchmark_in_background(), name="periodic-benchmark")
        return self.benchmark_task

    async def _benchmark_in_background(self) -> None:
        try:
            await self.benchmark.run(sample=self.options.benchmark_sample, trigger="periodic")
        except Exception:  # noqa: BLE001 - a failed benchmark must never surface to users
            log.exception("periodic benchmark failed")

    async def switch_model(self, target: str, *, by: str):
        """Validate and health-check `target`, then make it active for every replica."""
        return await self.switcher.switch(target, by=by)

    async def health(self) -> dict[str, Any]:
        """Each configured model's health (loads models that are not loaded yet)."""
        return await self.switcher.health_of_all(self.options.fallback_order)

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per model: its adapter's own figures (version, device, caches) under the figures of every call the
        requests made to it (requests, errors and error rate, latency, tokens, confidence, cost)."""
        loaded = self.factory.loaded()
        names = dict.fromkeys([*loaded, *self.live.models()])
        return {name: (loaded[name].get_metrics() if name in loaded else {"model": name})
                | self.live.snapshot(name) for name in names}

    async def aclose(self) -> None:
        await self.drain_shadows(0)
        await self.switcher.aclose()
        if self.benchmark_task and not self.benchmark_task.done():
            self.benchmark_task.cancel()
            await asyncio.gather(self.benchmark_task, return_exceptions=True)
        await self.factory.aclose()
