"""Per-arm figures of the routing (served, canary, escalation, fallback, shadow) over a time window.

An arm is a model call's role. Each arm reports, per model: calls, failed calls, latency p50/p99 of the calls
that answered, cost, how many of its answers were escalated (primary and canary arms), and feedback where it
exists. The shadow arm also reports how often its intent matched the answer the user was shown (the request
row's intent). The statistics (Wilson intervals, significance) are the caller's (llm.routing.compare).

Latencies of one window are read back in the database's order, newest ``MAX_LATENCIES`` per arm and model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import Feedback as F
from storage.models import ModelCallRecord as C
from storage.models import RequestRecord as R

MAX_LATENCIES = 20_000


async def routing_metrics(conn: AsyncConnection, since: datetime | None = None) -> list[dict[str, Any]]:
    window = [C.created_at >= since] if since is not None else []
    ok = C.outcome == "ok"
    rows = (await conn.execute(
        select(C.role, C.model, func.count().label("calls"), func.sum(case((ok, 0), else_=1)).label("failed"),
               func.coalesce(func.sum(C.cost_usd), 0.0).label("cost_usd"),
               func.count(C.cost_usd).label("priced"))
        .where(*window).group_by(C.role, C.model))).mappings().all()
    arms: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        arms[(row["role"], row["model"])] = {
            "arm": row["role"], "model": row["model"], "calls": int(row["calls"]), "failed": int(row["failed"]),
            "cost_usd": float(row["cost_usd"]) if row["priced"] else None, "escalated": 0,
            "agree": None, "compared": None, "feedback": 0, "positive": 0,
            "latencies_ms": await _latencies(conn, row["role"], row["model"], window)}

    escalation = C.__table__.alias("escalation")
    escalated = await conn.execute(  # first calls whose answer an escalation replaced (or tried to)
        select(C.role, C.model, func.count())
        .join(escalation, and_(escalation.c.request_id == C.request_id, escalation.c.role == "escalation",
                               escalation.c.escalated_from == C.model))
        .where(C.role.in_(("primary", "canary", "fallback")), *window).group_by(C.role, C.model))
    for role, model, count in escalated:
        if (role, model) in arms:
            arms[(role, model)]["escalated"] = int(count)

    shadow = await conn.execute(
        select(C.model, func.count(), func.sum(case((C.intent == R.intent, 1), else_=0)))
        .join(R, R.request_id == C.request_id)
        .where(C.role == "shadow", ok, R.error.is_(None), *window).group_by(C.model))
    for model, compared, agree in shadow:
        if ("shadow", model) in arms:
            arms[("shadow", model)] |= {"compared": int(compared), "agree": int(agree or 0)}

    feedback_window = [F.created_at >= since] if since is not None else []
    feedback = await conn.execute(
        select(C.role, C.model, func.count(), func.sum(case((F.positive, 1), else_=0)))
        .join(C, and_(C.request_id == F.request_id, C.outcome == "ok", C.role != "shadow"))
        .join(R, and_(R.request_id == F.request_id, R.model == C.model))  # the call whose answer was shown
        .where(*feedback_window).group_by(C.role, C.model))
    for role, model, count, positive in feedback:
        if (role, model) in arms:
            arms[(role, model)] |= {"feedback": int(count), "positive": int(positive or 0)}
    return [arms[key] for key in sorted(arms)]


async def _latencies(conn: AsyncConnection, role: str, model: str, window: list) -> list[float]:
    query = (select(C.latency_ms).where(C.role == role, C.model == model, C.outcome == "ok", *window)
             .order_by(C.id.desc()).limit(MAX_LATENCIES))
    return sorted((await conn.execute(query)).scalars().all())
