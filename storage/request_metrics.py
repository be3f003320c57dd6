"""Per-model figures over a time window of the request log.

Counts, error rate and token sums cover every row; latency figures cover successful rows (error IS NULL)
only. Percentiles use numpy's default (linear) definition: PostgreSQL computes them with
``percentile_cont``; on SQLite the database sorts the latencies and Python interpolates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import RequestRecord as R

QUANTILES = {"latency_p50_ms": 0.50, "latency_p99_ms": 0.99}


def quantile_sorted(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of already sorted values by linear interpolation (numpy.percentile's default)."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


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
        func.coalesce(func.sum(R.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(R.completion_tokens), 0).label("completion_tokens"),
    ]
    if postgres:
        columns += [func.percentile_cont(q).within_group(ok_latency).label(name) for name, q in QUANTILES.items()]
    rows = (await conn.execute(select(*columns).where(*window).group_by(R.model).order_by(R.model))).mappings()

    metrics = []
    for row in rows:
        count = int(row["count"])
        figures = {
            "model": row["model"],
            "count": count,
            "avg_latency_ms": _float(row["avg_latency_ms"]),
            "error_rate": int(row["errors"]) / count,
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
        }
        figures |= {name: _float(row[name]) if postgres else None for name in QUANTILES}
        metrics.append(figures)

    if not postgres and metrics:
        latencies = await conn.execute(
            select(R.model, R.latency_ms).where(ok, *window).order_by(R.model, R.latency_ms)
        )
        by_model = {figures["model"]: figures for figures in metrics}
        for model, group in itertools.groupby(latencies, key=lambda row: row[0]):
            ordered = [row[1] for row in group]
            by_model[model] |= {name: quantile_sorted(ordered, q) for name, q in QUANTILES.items()}
    return metrics


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
