"""The request log: rows are buffered in memory and written in batches, off the request path.

``add`` never blocks and never raises. A background task writes one bulk INSERT every ``flush_interval_s``
or as soon as ``batch_size`` rows wait. While the database is unreachable the rows stay in the buffer and
the writer retries with exponential backoff; past ``buffer_limit`` the OLDEST rows are dropped (counted in
``dropped``, with a warning), so memory stays bounded however long the outage lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.dialects import dialect_insert
from storage.models import ModelCallRecord, RequestRecord, utcnow

log = logging.getLogger(__name__)

_TABLE = RequestRecord.__table__
_CALLS = ModelCallRecord.__table__
_CALL_KEYS = {"model": str, "outcome": str, "latency_ms": (int, float), "role": str, "error_kind": str,
              "model_version": str, "intent": str, "confidence": (int, float), "cost_usd": (int, float),
              "escalated_from": str}
_REQUIRED = {"request_id": str, "source": str, "model": str, "latency_ms": (int, float)}
_OPTIONAL = {
    "created_at": datetime, "user_hash": str, "model_version": str, "device": str, "prompt_tokens": int,
    "completion_tokens": int, "confidence": (int, float), "intent": str, "error": str, "fallback_from": str,
    "message": str, "model_latency_ms": (int, float), "ttft_ms": (int, float),
    "calls": list,  # one dict per model call (keys _CALL_KEYS), written to model_calls with the request
}
_INT_MAX = 2**31 - 1  # INTEGER columns on PostgreSQL
MAX_BACKOFF_S = 30.0
CLOSE_TIMEOUT_S = 10.0
WARN_EVERY_S = 10.0  # at most one "dropped rows" warning per this many seconds


def _summary(exc: BaseException) -> str:
    """`Type: first line of the message`, short enough for a log line."""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


def _insert_once(dialect: str):
    """INSERT that skips rows whose request_id is already stored (a retried batch that had been committed)."""
    return dialect_insert(dialect, _TABLE).on_conflict_do_nothing(index_elements=["request_id"])


def _insert_calls_once(dialect: str):
    return dialect_insert(dialect, _CALLS).on_conflict_do_nothing(index_elements=["request_id", "seq"])


async def _write(conn, rows: list[dict[str, Any]]) -> None:
    """The request rows, then their model calls, in the caller's transaction."""
    dialect = conn.dialect.name
    await conn.execute(_insert_once(dialect), [{k: v for k, v in row.items() if k != "calls"} for row in rows])
    calls = [{"request_id": row["request_id"], "created_at": row["created_at"], "seq": seq}
             | {key: call.get(key) for key in _CALL_KEYS}
             for row in rows for seq, call in enumerate(row["calls"] or ())]
    if calls:
        await conn.execute(_insert_calls_once(dialect), calls)


def _problem(row: dict[str, Any]) -> str | None:
    """Why ``row`` cannot be stored, or None. Checked in ``add`` so one bad row never blocks a batch."""
    if not isinstance(row, dict):
        return f"expected a dict, got {type(row).__name__}"
    unknown = set(row) - _REQUIRED.keys() - _OPTIONAL.keys()
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    for key in _REQUIRED:
        if row.get(key) is None:
            return f"missing {key!r}"
    for key, value in row.items():
        kind = _REQUIRED.get(key) or _OPTIONAL[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return f"{key!r} must be {kind}, got {type(value).__name__}"
        if isinstance(value, int) and not -_INT_MAX <= value <= _INT_MAX:
            return f"{key!r} out of range: {value}"
    for call in row.get("calls") or ():
        if not isinstance(call, dict) or call.get("model") is None or call.get("outcome") is None \
                or not isinstance(call.get("latency_ms"), int | float) or set(call) - _CALL_KEYS.keys():
            return f"malformed call record {call!r}"
    return None


class RequestLog:
    def __init__(self, engine: AsyncEngine, *, buffer_limit: int = 10_000, flush_interval_s: float = 0.5,
                 batch_size: int = 500):
        if buffer_limit < 1 or batch_size < 1 or flush_interval_s <= 0:
            raise ValueError("buffer_limit and batch_size must be >= 1, flush_interval_s > 0")
        self.engine = engine
        self.buffer_limit = buffer_limit
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.written = 0  # rows flushed to the database
        self.dropped = 0  # oldest rows discarded because the buffer was full
        self.rejected = 0  # rows refused by ``add`` (unknown/missing keys, wrong types)
        self.last_error: str | None = None  # the latest write failure, None once a write succeeds
        self._buffer: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._backing_off = False
        self._unreported_drops = 0
        self._last_warning = 0.0

    @property
    def pending(self) -> int:
        """Rows waiting to be written, including a batch being written right now."""
        return len(self._buffer) + self._in_flight

    def add(self, row: dict[str, Any]) -> None:
        """Queue one request row. Never blocks, never raises."""
        try:
            problem = _problem(row)
            if problem:
                self.rejected += 1
                log.warning("request log: row rejected: %s", problem)
                return
            row = {column.key: None for column in _TABLE.columns if column.key != "id"} | {"calls": None} | row
            row["created_at"] = row["created_at"] or utcnow()
            row["prompt_tokens"] = row["prompt_tokens"] or 0
            row["completion_tokens"] = row["completion_tokens"] or 0
            for key, value in row.items():
                if isinstance(value, str) and "\x00" in value:
                    row[key] = value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
            self._buffer.append(row)
            self._trim()
            self._ensure_task()
            if len(self._buffer) >= self.batch_size and not self._backing_off:
                self._wake.set()
        except Exception:  # noqa: BLE001 - metrics must never fail a user's request
            log.exception("request log: add failed")

    def start(self) -> None:
        """Start the background writer (``add`` does this lazily). Needs a running event loop."""
        self._closed = False
        self._ensure_task()

    async def flush(self) -> int:
        """Write every buffered row now, in batches, and wait for a batch the background writer is writing.
        Returns rows written by this call; keeps the rest on failure."""
        total = 0
        while True:
            async with self._write_lock:  # a batch taken by the background writer is written (or put back) first
                pass
            if not self._buffer:
                return total
            count = await self._write_batch()
            if count == 0:
                return total
            total += count

    async def aclose(self) -> None:
        """Stop the writer and flush what is left (best effort: rows that cannot be written are reported)."""
        self._closed = True
        if self._task is not None:
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=CLOSE_TIMEOUT_S)  # cancels it on timeout
            self._task = None
        await self.flush()
        if self.pending:
            log.warning("request log closed with %d rows unwritten (%s)", self.pending, self.last_error)
        self._report_drops(force=True)

    # -- internals ------------------------------------------------------------------------------------

    def _trim(self) -> None:
        over = len(self._buffer) + self._in_flight - self.buffer_limit
        if over <= 0:
            return
        over = min(over, len(self._buffer))  # a batch being written cannot be dropped
        for _ in range(over):
            self._buffer.popleft()
        self.dropped += over
        self._unreported_drops += over
        self._report_drops()

    def _report_drops(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._unreported_drops and (force or now - self._last_warning >= WARN_EVERY_S):
            log.warning("request log buffer full (%d rows): dropped %d oldest rows (%d in total; %s)",
                        self.buffer_limit, self._unreported_drops, self.dropped, self.last_error)
            self._unreported_drops = 0
            self._last_warning = now

    def _ensure_task(self) -> None:
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # called outside an event loop: rows wait for the next add/flush inside one
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._write_lock = asyncio.Lock()
            self._task = loop.create_task(self._run(), name="request-log-writer")

    async def _run(self) -> None:
        delay = self.flush_interval_s
        failures = 0
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            if not self._buffer:
                continue
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the writer must survive anything
                log.exception("request log: unexpected flush failure")
            if self.last_error is None:
                failures, delay, self._backing_off = 0, self.flush_interval_s, False
            else:
                failures += 1
                delay = min(self.flush_interval_s * 2**failures, MAX_BACKOFF_S)
                self._backing_off = True
                log.warning("request log: write failed (%s); %d rows kept, retry in %.1f s",
                            self.last_error, self.pending, delay)

    async def _write_batch(self) -> int:
        async with self._write_lock:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            if not batch:
                return 0
            self._in_flight = len(batch)
            try:
                async with self.engine.begin() as conn:
                    await _write(conn, batch)
            except (DataError, IntegrityError):  # a row the database refuses must not block the rest forever
                self._in_flight = 0
                return await self._write_rows_one_by_one(batch)
            except BaseException as exc:  # database down, table missing, cancelled...: keep the rows
                self._in_flight = 0
                self._buffer.extendleft(reversed(batch))
                self._trim()
                if not isinstance(exc, Exception):
                    raise
                self.last_error = _summary(exc)
                return 0
            self._in_flight = 0
            self.written += len(batch)
            self.last_error = None
            return len(batch)

    async def _write_rows_one_by_one(self, batch: list[dict[str, Any]]) -> int:
        """After a data error: write each row alone, reject (and count) only the rows the database refuses."""
        written = 0
        for index, row in enumerate(batch):
            try:
                async with self.engine.begin() as conn:
                    await _write(conn, [row])
            except (DataError, IntegrityError) as exc:
                self.rejected += 1
                log.warning("request log: row %s rejected by the database: %s", row.get("request_id"),
                            _summary(exc))
            except Exception as exc:  # noqa: BLE001 - the database went away: keep this row and the rest
                self._buffer.extendleft(reversed(batch[index:]))
                self._trim()
                self.last_error = _summary(exc)
                break
            else:
                written += 1
        self.written += written
        if written:
            self.last_error = None
        return written
