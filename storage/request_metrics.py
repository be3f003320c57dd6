"""Per-model figures over a time window of the request log and its model calls.

- Requests (rows of ``requests``) are charged to the model that answered, or to the active model when every
  model failed. Latency is what the user waited (fallbacks included), over successful requests.
- Error rates come from ``model_calls``: every call a request made (first try, each fallback), so a model that
  always fails shows 100%, and a request on which every model failed is charged to each model it tried.
- Percentiles use numpy's default (linear) definition, computed in the database: ``percentile_cont`` on
  PostgreSQL; on SQLite the two neighbouring values of each rank are read with LIMIT/OFFSET, so Python never
  holds more than two latencies per quantile, however long the window.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import ModelCallRecord as C
from storage.models import RequestRecord as R

QUANTILES = {"latency_p50_ms": 0.50, "latency_p99_ms": 0.99}


async def request_metrics(conn: AsyncConnection, since: datetime | None = None) -> list[dict[str, Any]]:
    """One dict per model seen since ``since`` (all time when None), sorted by model name."""
    ok = R.error.is_(None)
    ok_latency = case((ok, R.latency_ms))  # NULL for failed rows: ignored by the aggregates below
    window = [R.created_at >= since] if since is not None else []
    postgres = conn.dialect.name == "postgresql"

    columns = [
        R.model,
        func.count().label("count"),
        func.sum(case((ok, 0), else_=1)).label("errors"),
        func.avg(ok_latency).label("avg_latency_ms"),
        func.avg(case((ok, R.model_latency_ms))).label("avg_model_latency_ms"),
        func.coalesce(func.sum(R.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(R.completion_tokens), 0).label("completion_tokens"),
    ]
    if postgres:
        columns += [func.percentile_cont(q).within_group(ok_latency).label(name) for name, q in QUANTILES.items()]
    rows = (await conn.execute(select(*columns).where(*window).group_by(R.model))).mappings()

    by_model: dict[str, dict[str, Any]] = {}
    for row in rows:
        count, errors = int(row["count"]), int(row["errors"])
        figures = by_model[row["model"]] = _empty(row["model"]) | {
            "count": count,
            "failed_requests": errors,
            "avg_latency_ms": _float(row["avg_latency_ms"]),
            "avg_model_latency_ms": _float(row["avg_model_latency_ms"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
        }
        for name, q in QUANTILES.items():
            figures[name] = (_float(row[name]) if postgres
                             else await _sqlite_quantile(conn, row["model"], count - errors, q, window))

    call_window = [C.created_at >= since] if since is not None else []
    calls = await conn.execute(
        select(C.model, func.count(), func.sum(case((C.outcome == "ok", 0), else_=1)))
        .where(*call_window).group_by(C.model))
    for model, total, failed in calls:
        figures = by_model.setdefault(model, _empty(model))
        figures |= {"calls": int(total), "failed_calls": int(failed), "error_rate": int(failed) / int(total)}
    for figures in by_model.values():
        if not figures["calls"] and figures["count"]:  # rows written before calls were recorded
            figures["error_rate"] = figures["failed_requests"] / figures["count"]
    return [by_model[model] for model in sorted(by_model)]


async def _sqlite_quantile(conn: AsyncConnection, model: str, n: int, q: float, window: list) -> float | None:
    """The q-quantile of ``model``'s successful latencies: the database sorts, two values come back."""
    if n <= 0:
        return None
    rank = (n - 1) * q
    low = math.floor(rank)
    values = (await conn.execute(
        select(R.latency_ms).where(R.model == model, R.error.is_(None), *window)
        .order_by(R.latency_ms).offset(low).limit(2))).scalars().all()
    high = values[1] if len(values) > 1 else values[0]
    return values[0] + (high - values[0]) * (rank - low)


def _empty(model: str) -> dict[str, Any]:
    return {"model": model, "count": 0, "failed_requests": 0, "calls": 0, "failed_calls": 0, "error_rate": 0.0,
            "avg_latency_ms": None, "avg_model_latency_ms": None, "prompt_tokens": 0, "completion_tokens": 0,
            **dict.fromkeys(QUANTILES)}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
