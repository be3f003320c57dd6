"""ORM models: the request log and its model calls, benchmark runs, the model-switch audit trail, settings,
delivery claims (durable: the work they stand for), and the dialogue: turns, clarifications (labelled examples),
hand-off cases, feedback.

Every timestamp is timezone-aware UTC on the way in and on the way out, on PostgreSQL and on SQLite
(which stores naive text, so ``UTCDateTime`` converts at the boundary).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so migrations can drop/alter them on every backend (SQLite batch mode too).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend. Naive datetimes are taken to be UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}

    def as_dict(self) -> dict[str, Any]:
        return {column.key: getattr(self, column.key) for column in self.__table__.columns}


class RequestRecord(Base):
    """One pipeline ``generate``: who asked (hashed), which model answered, how fast, how well."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_model_created_at", "model", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String, index=True, unique=True)  # retried batches write once
    source: Mapped[str] = mapped_column(String)  # slack, api, cli or benchmark
    user_hash: Mapped[str | None] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    model_version: Mapped[str | None] = mapped_column(String)
    device: Mapped[str | None] = mapped_column(String)
    latency_ms: Mapped[float] = mapped_column(Float)  # what the user waited: every model tried, fallbacks included
    model_latency_ms: Mapped[float | None] = mapped_column(Float)  # the answering model's own time
    ttft_ms: Mapped[float | None] = mapped_column(Float)  # until the first words reached the user (streamed)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    confidence: Mapped[float | None] = mapped_column(Float)
    intent: Mapped[str | None] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(Text)  # None on success
    fallback_from: Mapped[str | None] = mapped_column(String)
    message: Mapped[str | None] = mapped_column(Text)  # only when STORE_MESSAGES is on, redacted by the caller


class ModelCallRecord(Base):
    """One model call of a request (first try, each fallback): per-model error rates are computed from these."""

    __tablename__ = "model_calls"
    __table_args__ = (
        UniqueConstraint("request_id", "seq"),  # a retried batch writes each call once
        Index("ix_model_calls_model_created_at", "model", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String)
    seq: Mapped[int] = mapped_column(Integer)  # 0 for the first call of the request
    model: Mapped[str] = mapped_column(String)
    model_version: Mapped[str | None] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)  # primary | fallback | canary | escalation | shadow
    outcome: Mapped[str] = mapped_column(String)  # ok | error | timeout | skipped (open circuit, spent budget)
    error_kind: Mapped[str | None] = mapped_column(String)
    latency_ms: Mapped[float] = mapped_column(Float)
    intent: Mapped[str | None] = mapped_column(String)  # what this call understood (shadow agreement)
    confidence: Mapped[float | None] = mapped_column(Float)  # calibrated
    cost_usd: Mapped[float | None] = mapped_column(Float)  # None where the model has no price
    escalated_from: Mapped[str | None] = mapped_column(String)  # an escalation: the model that was unsure


class BenchmarkRun(Base):
    __tablename__ = "benchmark_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String)  # periodic, manual or cli
    sample_size: Mapped[int] = mapped_column(Integer)
    recommendation: Mapped[str] = mapped_column(Text, default="")

    results: Mapped[list[BenchmarkResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="BenchmarkResult.id"
    )


class BenchmarkResult(Base):
    """One model's figures within a benchmark run. Figures are None where the model was unavailable."""

    __tablename__ = "benchmark_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String)
    model_version: Mapped[str | None] = mapped_column(String)
    device: Mapped[str | None] = mapped_column(String)
    available: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")  # why unavailable; empty otherwise
    n: Mapped[int] = mapped_column(Integer, default=0)  # prompts answered
    latency_p50_ms: Mapped[float | None] = mapped_column(Float)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    queue_p50_ms: Mapped[float | None] = mapped_column(Float)  # waiting behind live traffic, apart from latency

    run: Mapped[BenchmarkRun] = relationship(back_populates="results")


class ModelSwitch(Base):
    """The audit trail of active-model changes, successful or not."""

    __tablename__ = "model_switches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    from_model: Mapped[str | None] = mapped_column(String)
    to_model: Mapped[str] = mapped_column(String)
    by: Mapped[str] = mapped_column(String)  # who asked: a Slack user, "api", "cli", "startup"
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")


class Setting(Base):
    """Key/value settings shared by every replica, e.g. the active model."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProcessedEvent(Base):
    """A delivery (Slack event id, Teams activity) claimed by one replica; the primary key makes the claim atomic.

    A durable claim (``state`` set) also records the work: the redacted question, where to answer, the replica
    holding it and its lease, and the posted answer's message id (storage/claims.py). Plain markers (reply
    chains, commands) leave ``state`` empty and are never swept.
    """

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_state_lease", "state", "lease_expires_at"),)

    event_id: Mapped[str] = mapped_column(String, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str | None] = mapped_column(String)  # the front end: slack, teams
    user_id: Mapped[str | None] = mapped_column(String)  # the front end's id of the person who asked
    question: Mapped[str | None] = mapped_column(Text)  # redacted before it is stored
    reference: Mapped[str | None] = mapped_column(Text)  # JSON: where to answer (channel, thread, conversation)
    state: Mapped[str | None] = mapped_column(String)  # claimed -> answering -> answered, or failed
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed (or was given up)
    holder: Mapped[str | None] = mapped_column(String)  # hostname:pid:uuid of the replica working on it
    lease_expires_at: Mapped[datetime | None]  # renewed while the holder works; past it, another replica takes over
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # take-overs so far
    answer_ref: Mapped[str | None] = mapped_column(String)  # the posted answer's message id (Slack ts, Teams id)
    updated_at: Mapped[datetime | None]


class Lease(Base):
    """A named lock with an expiry, shared by every replica: e.g. "one benchmark at a time".

    A holder that dies leaves the row behind; once ``expires_at`` has passed anyone may take it over.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    holder: Mapped[str] = mapped_column(String)  # hostname:pid:uuid of the process that holds it
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class RateLimitCounter(Base):
    """Hits of one key (a Slack user, an API client) within one fixed window, counted across replicas."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds, a multiple of window_s
    window_end: Mapped[int] = mapped_column(BigInteger, index=True)  # Unix seconds; pruned once past
    count: Mapped[int] = mapped_column(Integer)


class DialogueTurn(Base):
    """One question in a conversation and what the bot did with it: answered, asked which intent was meant
    (clarify), or handed the conversation to a person. The question is stored redacted."""

    __tablename__ = "dialogue_turns"
    __table_args__ = (Index("ix_dialogue_turns_conversation_id", "conversation", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    request_id: Mapped[str | None] = mapped_column(String, index=True)  # the pipeline request; None: no model ran
    source: Mapped[str] = mapped_column(String)  # slack | teams
    conversation: Mapped[str] = mapped_column(String)  # the front end's thread / conversation key
    user_hash: Mapped[str | None] = mapped_column(String)
    question: Mapped[str] = mapped_column(Text)  # redacted
    kind: Mapped[str] = mapped_column(String)  # answer | clarify | handoff
    low: Mapped[bool] = mapped_column(Boolean, default=False)  # below the out-of-scope threshold
    model: Mapped[str | None] = mapped_column(String)
    intent: Mapped[str | None] = mapped_column(String)
    confidence: Mapped[float | None] = mapped_column(Float)
    arm: Mapped[str | None] = mapped_column(String)  # the routing arm, when a router chose the model


class Clarification(Base):
    """A "Do you mean ...?" question; once the customer picks, a labelled example (`bankbot export-labels`)."""

    __tablename__ = "clarifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("dialogue_turns.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)  # redacted
    offered: Mapped[str] = mapped_column(String)  # "intent_a,intent_b"
    confidences: Mapped[str] = mapped_column(String)  # "0.41,0.37"
    model: Mapped[str | None] = mapped_column(String)
    chosen: Mapped[str | None] = mapped_column(String)  # an offered intent, or "something_else"; None: no click
    chosen_at: Mapped[datetime | None]
    chosen_by: Mapped[str | None] = mapped_column(String)  # hashed user id


class HandoffCase(Base):
    """A conversation handed to a person, with its audit trail: opened, taken by, resolved."""

    __tablename__ = "handoff_cases"
    __table_args__ = (Index("ix_handoff_cases_conversation_status", "conversation", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("dialogue_turns.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String)
    conversation: Mapped[str] = mapped_column(String)
    link: Mapped[str | None] = mapped_column(Text)  # to the customer's conversation
    question: Mapped[str] = mapped_column(Text)  # redacted
    model: Mapped[str | None] = mapped_column(String)
    intent: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)  # asked | urgent | repeated_failure | something_else
    status: Mapped[str] = mapped_column(String, default="open")  # open | taken | resolved | undelivered
    post_ref: Mapped[str | None] = mapped_column(String)  # where the case message is (channel:ts, activity id)
    taken_by: Mapped[str | None] = mapped_column(String)  # the agent's front-end id
    taken_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String)
    resolved_at: Mapped[datetime | None]


class Feedback(Base):
    """A thumbs-up or -down on one answer, one row per person and answer (a second click changes it)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("request_id", "user_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    request_id: Mapped[str] = mapped_column(String)  # the answer's request record
    user_hash: Mapped[str] = mapped_column(String)
    positive: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String)  # wrong_topic | not_helpful | wanted_person
    source: Mapped[str] = mapped_column(String)
    conversation: Mapped[str | None] = mapped_column(String)
    model: Mapped[str | None] = mapped_column(String)  # copied from the request record
    intent: Mapped[str | None] = mapped_column(String)
    confidence: Mapped[float | None] = mapped_column(Float)
    arm: Mapped[str | None] = mapped_column(String)


class ModelSpend(Base):
    """What one paid model cost on one UTC day, summed over every replica (MODEL_BUDGET_USD_PER_DAY)."""

    __tablename__ = "model_spend"

    model: Mapped[str] = mapped_column(String, primary_key=True)
    day: Mapped[str] = mapped_column(String, primary_key=True)  # YYYY-MM-DD, UTC
    usd: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
