"""Structured logs: a JSON formatter (one object per line) and the per-request log line.

The request line carries the reference id, source, model, latency (what the user waited, and the answering
model's own time), every model call (model:outcome:latency), outcome, intent, confidence and tokens;
never the user's message (not even the redacted copy that STORE_MESSAGES keeps in the database).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

REQUEST_LOGGER = logging.getLogger("bankbot.requests")
FIELDS = "fields"  # the `extra` key whose dict is merged into the JSON object
MAX_ERROR_CHARS = 1000


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...extra fields}` on one line; exceptions as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if fields:
            data.update(fields)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Every log record of the process as one JSON line on `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def log_request(row: dict[str, Any]) -> None:
    """A pipeline request listener: one INFO line per request on the `bankbot.requests` logger."""
    if not REQUEST_LOGGER.isEnabledFor(logging.INFO):
        return
    error = row.get("error")
    fields = {
        "request_id": row["request_id"],
        "source": row.get("source"),
        "model": row["model"],
        "model_version": row.get("model_version"),
        "latency_ms": _round(row.get("latency_ms")),  # what the user waited, every model tried included
        "model_latency_ms": _round(row.get("model_latency_ms")),  # the answering model's own time
        "outcome": "error" if error else ("fallback" if row.get("fallback_from") else "ok"),
        "fallback_from": row.get("fallback_from"),
        "intent": row.get("intent"),
        "confidence": row.get("confidence"),
        "tokens": (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0),
        "calls": [f"{c['model']}:{c['outcome']}:{c['latency_ms']:.1f}ms" for c in row.get("calls") or ()],
    }
    if error:
        fields["error"] = error[:MAX_ERROR_CHARS]
    REQUEST_LOGGER.info("request", extra={FIELDS: fields})
