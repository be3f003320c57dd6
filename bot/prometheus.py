"""Prometheus metrics of one Runtime, in its own CollectorRegistry (served at GET /metrics).

Per request (a pipeline request listener): requests by model and outcome, the latency the user waited
(fallbacks included) by answering model, each model call by model and outcome (ok, error, timeout, skipped)
with its latency, the confidence of answers, tokens by model and kind, fallbacks. Read at scrape time:
circuit-breaker state, the active model, each model's last known health, device utilization, the custom
model's answer-cache hit rate, the latest benchmark's accuracy and latency, and the request log's backlog.
Routing: escalations (from, to, outcome), shadow calls by agreement with the answer shown, and each paid model's
spend today (every replica's, from the database) beside its budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bot.conversation.durable import claims_of
from bot.device_usage import CpuShare
from bot.prometheus_dialogue import DialogueGauges
from llm.calls import OUTCOMES
from llm.circuit_breaker import BreakerState

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DEVICE_READ_TIMEOUT_S = 2.0
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
OK, ERROR = "ok", "error"


class _ModelSeries:
    """The per-model children, resolved once: `labels()` is too slow to call on every request."""

    def __init__(self, metrics: PrometheusMetrics, model: str):
        self.ok = metrics.requests.labels(model, OK)
        self.error = metrics.requests.labels(model, ERROR)
        self.latency = metrics.latency.labels(model)
        self.confidence = metrics.confidence.labels(model)
        self.calls = {outcome: metrics.calls.labels(model, outcome) for outcome in OUTCOMES}
        self.call_latency = metrics.call_latency.labels(model)
        self.prompt_tokens = metrics.tokens.labels(model, "prompt")
        self.completion_tokens = metrics.tokens.labels(model, "completion")


class PrometheusMetrics:
    def __init__(self, runtime: Runtime, health: Any | None = None):
        """`health`, when given, has `healthy() -> {model: bool}` (the readiness probe's latest results)."""
        self.runtime = runtime
        self.health = health
        self.registry = CollectorRegistry()
        self.requests = Counter("bankbot_requests", "Pipeline requests by the model that answered (or was "
                                "active, for errors) and outcome (ok|error)", ["model", "outcome"],
                                registry=self.registry)
        self.latency = Histogram("bankbot_request_latency_seconds", "What the user waited for each request, "
                                 "every model tried included, by the model that answered (or was active)",
                                 ["model"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.calls = Counter("bankbot_model_calls", "Every model call of a request (first try, each fallback) by "
                             "model and outcome (ok|error|timeout|skipped)", ["model", "outcome"],
                             registry=self.registry)
        self.call_latency = Histogram("bankbot_model_call_latency_seconds", "Latency of each model call, failed "
                                      "ones included (skipped calls excepted)", ["model"],
                                      buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.confidence = Histogram("bankbot_confidence", "Confidence of each answer, by the model that answered",
                                    ["model"], buckets=CONFIDENCE_BUCKETS, registry=self.registry)
        self.tokens = Counter("bankbot_tokens", "Tokens by model and kind (prompt|completion)",
                              ["model", "kind"], registry=self.registry)
        self.fallbacks = Counter("bankbot_fallbacks", "Requests answered by a fallback model, by the model "
                                 "that failed first and the one that answered", ["from_model", "to_model"],
                                 registry=self.registry)
        self.latest_benchmark: dict[str, Any] | None = None  # refreshed from the database at each scrape
        self.device_utilization: dict[str, float] = {}  # model -> its own figure (vLLM), refreshed at each scrape
        self.oldest_claim_age_s = 0.0  # the oldest question not answered yet, any replica's: read at each scrape
        self.registry.register(_StateCollector(self))
        self.dialogue = DialogueGauges(runtime, DEVICE_READ_TIMEOUT_S)  # bot/prometheus_dialogue.py
        self.registry.register(self.dialogue)
        self._series: dict[str, _ModelSeries] = {}
        self.cpu = CpuShare()

    # -- per request (hot path) ------------------------------------------------------------------------

    def _of(self, model: str) -> _ModelSeries:
        series = self._series.get(model)
        if series is None:
            series = self._series[model] = _ModelSeries(self, model)
        return series

    def observe(self, row: dict[str, Any]) -> None:
        """A pipeline request listener: one call per request row."""
        model = row["model"]
        series = self._of(model)
        if row["error"] is None:
            series.ok.inc()
        else:
            series.error.inc()
        latency_ms = row.get("latency_ms")
        if latency_ms is not None:
            series.latency.observe(latency_ms / 1000)
        if row.get("confidence") is not None and row["error"] is None:
            series.confidence.observe(row["confidence"])
        for call in row.get("calls") or ():
            called = self._of(call["model"])
            called.calls[call["outcome"]].inc()
            if call["outcome"] != "skipped":
                called.call_latency.observe(call["latency_ms"] / 1000)
        if row.get("prompt_tokens"):
            series.prompt_tokens.inc(row["prompt_tokens"])
        if row.get("completion_tokens"):
            series.completion_tokens.inc(row["completion_tokens"])
        if row.get("fallback_from"):
            self.fallbacks.labels(row["fallback_from"], model).inc()

    # -- at scrape time --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Cache the latest benchmark run (any replica's) and the models' own device figures for the gauges."""
        await self._refresh_devices()
        try:
            runs = await self.runtime.db.latest_benchmark_runs(1)
        except Exception as exc:  # noqa: BLE001 - a scrape must work while the database is down
            log.warning("metrics: could not read the latest benchmark run: %s", exc)
            return
        if runs:
            self.latest_benchmark = runs[0]
        try:
            async with asyncio.timeout(DEVICE_READ_TIMEOUT_S):
                await self.runtime.pipeline.budgets.refresh()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: could not read today's spend: %s", exc)

    async def _refresh_devices(self) -> None:
        figures: dict[str, float] = {}
        for name, adapter in self.runtime.factory.loaded().items():
            try:
                async with asyncio.timeout(DEVICE_READ_TIMEOUT_S):
                    value = await adapter.device_utilization()
            except Exception as exc:  # noqa: BLE001 - a scrape must work whatever one model does
                log.debug("device utilization of %s unavailable: %s", name, exc)
                continue
            if value is not None:
                figures[name] = value
        self.device_utilization = figures

    async def _refresh_claims(self) -> None:
        try:
            self.oldest_claim_age_s = await self.runtime.db.oldest_open_claim_age_s()
        except Exception as exc:  # noqa: BLE001 - a scrape must work while the database is down
            log.warning("metrics: could not read the oldest unanswered claim: %s", exc)

    async def render(self) -> bytes:
        await self.refresh()
        await self._refresh_claims()
        await self.dialogue.refresh()
        return generate_latest(self.registry)


class _StateCollector:
    """Gauges read from the runtime when Prometheus scrapes."""

    def __init__(self, metrics: PrometheusMetrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        pipeline = self.metrics.runtime.pipeline
        names = list(dict.fromkeys([*pipeline.chain(), *pipeline.breakers]))

        active = GaugeMetricFamily("bankbot_active_model", "1 for the model serving requests, 0 for the others",
                                   labels=["model"])
        state = GaugeMetricFamily("bankbot_circuit_breaker_state",
                                  "Circuit breaker of each model: 0 closed, 1 half-open, 2 open", labels=["model"])
        failures = GaugeMetricFamily("bankbot_circuit_breaker_consecutive_failures",
                                     "Consecutive failures counted by each model's breaker", labels=["model"])
        for name in names:
            active.add_metric([name], 1.0 if name == pipeline.active_model else 0.0)
            breaker = pipeline.breakers.get(name)
            state.add_metric([name], BREAKER_VALUES[breaker.state] if breaker else 0)
            failures.add_metric([name], breaker.consecutive_failures if breaker else 0)
        yield from (active, state, failures)

        if self.metrics.health is not None:
            healthy = GaugeMetricFamily("bankbot_model_healthy",
                                        "1 when the model's latest health check passed (readiness probe)",
                                        labels=["model"])
            for name, ok in self.metrics.health.healthy().items():
                healthy.add_metric([name], 1.0 if ok else 0.0)
            yield healthy

        yield from self._model_gauges()
        yield from _routing_metrics(pipeline)
        yield from _stream_metrics(pipeline, self.metrics.runtime.factory.loaded())
        yield from _benchmark_gauges(self.metrics.latest_benchmark)

        request_log = self.metrics.runtime.db.request_log
        yield GaugeMetricFamily("bankbot_request_log_pending", "Request rows waiting to be written",
                                value=request_log.pending)
        yield CounterMetricFamily("bankbot_request_log_dropped", "Request rows dropped while the database "
                                  "was unreachable", value=request_log.dropped)
        yield from _claim_metrics(claims_of(self.metrics.runtime), self.metrics.oldest_claim_age_s)


    def _model_gauges(self) -> Iterator[Metric]:
        """Device utilization of each loaded model (its own figure, e.g. vLLM's KV-cache usage, else the
        process's CPU share for CPU models) and the answer-cache hit rate of models that have one."""
        utilization = GaugeMetricFamily("bankbot_device_utilization", "Utilization (0..1) of the device each "
                                        "loaded model runs on: the process's CPU share for CPU models, vLLM's "
                                        "KV-cache usage for a vLLM server",
                                        labels=["model", "device"])
        cache = GaugeMetricFamily("bankbot_answer_cache_hit_ratio", "Share of answers served from the model's "
                                  "answer cache (0..1)", labels=["model"])
        cpu_share = self.metrics.cpu.read()
        for name, adapter in self.metrics.runtime.factory.loaded().items():
            try:
                figures = adapter.get_metrics()
            except Exception:  # noqa: BLE001 - one adapter must not break the scrape
                log.exception("metrics of %s failed", name)
                continue
            value = self.metrics.device_utilization.get(name)
            if value is None and adapter.device == "cpu":
                value = cpu_share
            if value is not None:
                utilization.add_metric([name, adapter.device], value)
            if figures.get("answer_cache_hit_rate") is not None:
                cache.add_metric([name], figures["answer_cache_hit_rate"])
        yield from (utilization, cache)


def _claim_metrics(book: Any, oldest_age_s: float) -> Iterator[Metric]:
    """Durable claims (bot/conversation/durable.py): this replica's take-overs, late answers and give-ups, and
    the age of the oldest question no replica has answered yet."""
    yield CounterMetricFamily("bankbot_claims_taken_over", "Questions of a replica that died (lease expired) this "
                              "replica took over", value=book.taken_over)
    yield CounterMetricFamily("bankbot_claims_late_answers", "Questions answered after a take-over",
                              value=book.late_answers)
    yield CounterMetricFamily("bankbot_claims_given_up", "Questions older than ANSWER_GIVE_UP_S that got the "
                              "'sorry for the delay, please ask again' message instead of an answer",
                              value=book.give_ups)
    yield CounterMetricFamily("bankbot_claims_already_posted", "Take-overs that found the answer already posted "
                              "and did not post it again", value=book.already_posted)
    yield GaugeMetricFamily("bankbot_claims_held", "Questions this replica is answering now (leases it holds)",
                            value=len(book.held))
    yield GaugeMetricFamily("bankbot_oldest_unanswered_claim_age_seconds", "Age of the oldest acknowledged "
                            "question not answered yet, across replicas (0: none)", value=oldest_age_s)


def _benchmark_gauges(run: dict[str, Any] | None) -> Iterator[Metric]:
    accuracy = GaugeMetricFamily("bankbot_benchmark_accuracy", "Accuracy of each model in the latest benchmark",
                                 labels=["model"])
    latency = GaugeMetricFamily("bankbot_benchmark_latency_seconds",
                                "Latency quantiles of each model in the latest benchmark", labels=["model", "quantile"])
    finished = GaugeMetricFamily("bankbot_benchmark_last_run_timestamp_seconds",
                                 "When the latest benchmark finished (Unix time)")
    if run is not None:
        for result in run.get("results", []):
            if result.get("accuracy") is not None:
                accuracy.add_metric([result["model"]], result["accuracy"])
            for quantile, key in (("0.5", "latency_p50_ms"), ("0.99", "latency_p99_ms")):
                if result.get(key) is not None:
                    latency.add_metric([result["model"], quantile], result[key] / 1000)
        when = run.get("finished_at") or run.get("started_at")
        if when is not None:
            finished.add_metric([], when.timestamp())
    yield from (accuracy, latency, finished)


def _stream_metrics(pipeline: Any, loaded: dict[str, Any]) -> Iterator[Metric]:
    """Time to first words per model (p50/p99 of this replica's latest requests) and grounding rejections of the
    LLMs (answers whose model wording failed the faithfulness guard: the entry was shown)."""
    from llm.ttft import ttft_of

    ttft = GaugeMetricFamily("bankbot_ttft_seconds", "Time to the first words of the answer (every model tried "
                             "before included), p50 and p99 of this replica's latest requests", labels=["model",
                                                                                                       "quantile"])
    stats = ttft_of(pipeline)
    for model in stats.models():
        figures = stats.snapshot(model)
        for quantile, key in (("0.5", "ttft_p50_ms"), ("0.99", "ttft_p99_ms")):
            if figures[key] is not None:
                ttft.add_metric([model, quantile], figures[key] / 1000)
    rejections = CounterMetricFamily("bankbot_grounding_rejections", "LLM answers that failed the faithfulness "
                                     "guard (the knowledge-base entry was shown instead)", labels=["model"])
    grounded = CounterMetricFamily("bankbot_grounded_answers", "LLM answers judged by the faithfulness guard",
                                   labels=["model"])
    for name, adapter in loaded.items():
        figures = getattr(adapter, "grounding", None)
        if figures is not None:
            rejections.add_metric([name], figures.rejections)
            grounded.add_metric([name], figures.judged)
    yield from (ttft, rejections, grounded)


def _routing_metrics(pipeline: Any) -> Iterator[Metric]:
    escalations = CounterMetricFamily("bankbot_escalations", "Escalations of unsure answers by the model that was "
                                      "unsure, the escalation model and its outcome", labels=["from", "to", "outcome"])
    for (first, to, outcome), count in pipeline.live.escalations.items():
        escalations.add_metric([first, to, outcome], count)
    shadow = CounterMetricFamily("bankbot_shadow_calls", "Shadow calls that answered, by model and whether their "
                                 "intent agreed with the answer shown", labels=["model", "agreement"])
    for (model, agreed), count in pipeline.live.shadow_calls.items():
        shadow.add_metric([model, "agree" if agreed else "disagree"], count)
    spend = GaugeMetricFamily("bankbot_model_spend_usd", "What each paid model has cost today (UTC), every "
                              "replica's calls, as this replica last read it", labels=["model"])
    budget = GaugeMetricFamily("bankbot_model_budget_usd", "Each paid model's daily budget (MODEL_BUDGET_USD_PER_DAY)",
                               labels=["model"])
    figures_by_model = pipeline.budgets.snapshot()
    for name, adapter in pipeline.factory.loaded().items():  # a paid model that spent nothing yet shows 0
        if adapter.sends_data_off_host and name not in figures_by_model:
            figures_by_model[name] = {"spent_usd": 0.0, "limit_usd": pipeline.budgets.limit_of(name)}
    for model, figures in figures_by_model.items():
        spend.add_metric([model], figures["spent_usd"])
        if figures["limit_usd"] is not None:
            budget.add_metric([model], figures["limit_usd"])
    yield from (escalations, shadow, spend, budget)
