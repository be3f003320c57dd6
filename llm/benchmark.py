"""Benchmark runs: every configured model answers a labelled sample of Banking77's test split.

One run at a time across every replica: a run holds the database lease ``benchmark`` (renewed while it
lasts, released at the end; a replica that dies mid-run frees it after ``LEASE_TTL_S``). A periodic run
that finds it taken is skipped; any other run raises ``BenchmarkBusyError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.budget import SpendGuard
from llm.errors import BenchmarkBusyError
from llm.evaluation import evaluate

if TYPE_CHECKING:
    from llm.banking77 import Example
    from llm.factory import ModelFactory
    from llm.ports import PipelineStore

log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]  # (model name, examples done) -> None

LEASE_NAME = "benchmark"
LEASE_TTL_S = 300.0  # a replica that dies mid-run blocks other runs for at most this long
LEASE_RENEW_S = 60.0  # a running benchmark renews its lease this often


def holder_id() -> str:
    """Who holds a lease: unique per runner, readable in the database (hostname:pid:uuid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class ModelBenchmark:
    model: str
    model_version: str | None = None
    device: str | None = None
    available: bool = True
    reason: str = ""  # why unavailable
    n: int = 0  # examples asked
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    accuracy: float | None = None  # over all n examples; an error counts as wrong
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    cost_usd: float | None = None
    queue_p50_ms: float | None = None  # waiting behind live requests (not part of the latency figures)


@dataclass
class BenchmarkRun:
    trigger: str
    sample_size: int
    started_at: datetime
    finished_at: datetime | None = None
    results: list[ModelBenchmark] = field(default_factory=list)
    recommendation: str = ""
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


def stratified_sample(examples: Sequence[Example], n: int | None, seed: int = 0) -> list[Example]:
    """n examples spread over the intents round-robin (all of them when n is None or too large)."""
    if n is None or n >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example)
    pools = [rng.sample(items, len(items)) for _, items in sorted(by_intent.items())]
    rng.shuffle(pools)
    picked: list[Example] = []
    while len(picked) < n:
        for pool in pools:
            if pool and len(picked) < n:
                picked.append(pool.pop())
    return picked


def recommend(results: Sequence[ModelBenchmark]) -> str:
    """"X for fastest, Y for most accurate", from the models that answered."""
    usable = [r for r in results if r.available and r.latency_p50_ms is not None and r.accuracy is not None]
    if not usable:
        return "no model answered the benchmark"
    fastest = min(usable, key=lambda r: r.latency_p50_ms)
    best = max(usable, key=lambda r: (r.accuracy, -r.latency_p50_ms))
    if fastest.model == best.model:
        return f"{fastest.model} is both fastest and most accurate"
    return f"{fastest.model} for fastest, {best.model} for most accurate"


class BenchmarkRunner:
    def __init__(self, factory: ModelFactory, examples: Callable[[], Sequence[Example]], store: PipelineStore,
                 log_path: Path, models: Sequence[str], concurrency: int = 4, timeout_s: float = 60.0):
        self.factory = factory
        self.examples = examples  # the labelled test split, loaded on first run
        self.store = store
        self.log_path = Path(log_path)
        self.models = list(models)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._lock = asyncio.Lock()  # one run at a time in this process
        self.holder = holder_id()  # one run at a time across replicas: the database lease
        self.lease_ttl_s = LEASE_TTL_S
        self.lease_renew_s = LEASE_RENEW_S
        self.skip_reason: Callable[[str], str | None] = lambda name: None  # the pipeline: open circuits
        self.budget_usd_per_day: float = getattr(factory.settings, "benchmark_budget_usd_per_day", 1.0)

    @property
    def running(self) -> bool:
        """True while this process runs a benchmark (another replica's run shows as BenchmarkBusyError)."""
        return self._lock.locked()

    async def run(self, *, models: Sequence[str] | None = None, sample: int | None = 20,
                  trigger: str = "manual", seed: int | None = None,
                  progress: Progress | None = None) -> BenchmarkRun | None:
        """Benchmark ``models`` (all configured ones by default) on ``sample`` test examples and store the run.

        Waits for a run of this process to finish, except a periodic one, which is skipped. When another
        replica is running one, a periodic run returns None and any other raises BenchmarkBusyError.
        """
        if trigger == "periodic" and self._lock.locked():
            log.info("periodic benchmark skipped: one is already running in this process")
            return None
        async with self._lock:
            if not await self.store.acquire_lease(LEASE_NAME, self.holder, self.lease_ttl_s):
                if trigger == "periodic":
                    log.info("periodic benchmark skipped: another replica is running one")
                    return None
                raise BenchmarkBusyError("a benchmark is already running on another replica; "
                                         "try again when it has finished")
            renewer = asyncio.create_task(self._renew_lease(), name="benchmark-lease-renewer")
            try:
                return await self._run(models, sample, trigger, seed, progress)
            finally:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
                try:
                    await self.store.release_lease(LEASE_NAME, self.holder)
                except Exception as exc:  # noqa: BLE001 - the lease then expires on its own
                    log.warning("could not release the benchmark lease (it expires in %gs): %s",
                                self.lease_ttl_s, exc)

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(self.lease_renew_s)
            try:
                if not await self.store.acquire_lease(LEASE_NAME, self.holder, self.lease_ttl_s):
                    log.warning("the benchmark lease expired and another replica took it; two runs may overlap")
            except Exception as exc:  # noqa: BLE001 - a database blip must not stop the run
                log.warning("could not renew the benchmark lease: %s", exc)

    async def _run(self, models: Sequence[str] | None, sample: int | None, trigger: str, seed: int | None,
                   progress: Progress | None) -> BenchmarkRun:
        chosen = stratified_sample(await asyncio.to_thread(self.examples), sample,
                                   seed if seed is not None else time.time_ns())
        run = BenchmarkRun(trigger=trigger, sample_size=len(chosen), started_at=datetime.now(UTC))
        for name in models or self.models:
            run.results.append(await self._benchmark_model(name, chosen, progress, trigger))
        run.finished_at = datetime.now(UTC)
        run.recommendation = recommend(run.results)
        run.id = await self.store.save_benchmark_run(run.to_dict() | {
            "started_at": run.started_at, "finished_at": run.finished_at})
        await asyncio.to_thread(self._append_log, run)
        return run

    async def _benchmark_model(self, name: str, examples: list[Example], progress: Progress | None,
                               trigger: str = "manual") -> ModelBenchmark:
        outcome = ModelBenchmark(model=name, n=len(examples))
        skip = self.skip_reason(name)  # a model whose circuit is open is not asked: it is failing users already
        if skip:
            outcome.available, outcome.reason = False, f"skipped: {skip}"
            return outcome
        try:
            adapter = await self.factory.get(name)
        except Exception as exc:  # noqa: BLE001 - an unavailable model is recorded with its reason
            outcome.available, outcome.reason = False, str(exc) or type(exc).__name__
            return outcome
        spend = None
        if trigger == "periodic" and adapter.sends_data_off_host:  # nobody asked for these paid calls
            if adapter.estimated_call_cost_usd is None:
                outcome.available, outcome.reason = False, "skipped: no known price, so no budget can hold"
                return outcome
            since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            spend = SpendGuard(self.budget_usd_per_day, await self.store.benchmark_spend(since, "periodic"),
                               adapter.estimated_call_cost_usd)
        done = 0

        def tick(step: int) -> None:
            nonlocal done
            done += step
            if progress:
                progress(name, done)

        report = await evaluate(adapter, examples, concurrency=self.concurrency, timeout_s=self.timeout_s,
                                progress=tick, spend=spend)
        figures = report.summary()
        outcome.n = report.asked
        outcome.queue_p50_ms = figures["queue_p50_ms"]
        outcome.model_version, outcome.device = adapter.version, adapter.device
        outcome.latency_p50_ms, outcome.latency_p99_ms = figures["latency_p50_ms"], figures["latency_p99_ms"]
        outcome.accuracy, outcome.errors = report.accuracy, report.errors
        outcome.prompt_tokens, outcome.completion_tokens = report.prompt_tokens, report.completion_tokens
        outcome.cost_usd = report.cost_usd if adapter.sends_data_off_host else None
        outcome.reason = report.first_error
        if spend is not None and spend.refused:
            outcome.reason = "; ".join(filter(None, [spend.describe(), outcome.reason]))
        if examples and (report.asked == 0 or report.errors == report.asked):
            outcome.available = False
        return outcome

    def _append_log(self, run: BenchmarkRun) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(run.to_dict()) + "\n")
