"""Structured logs: a JSON formatter (one object per line) and the per-request log line.

The request line carries the reference id, source, model, latency, outcome, intent, confidence and tokens;
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
        "latency_ms": round(row["latency_ms"], 3) if row.get("latency_ms") is not None else None,
        "outcome": "error" if error else ("fallback" if row.get("fallback_from") else "ok"),
        "fallback_from": row.get("fallback_from"),
        "intent": row.get("intent"),
        "confidence": row.get("confidence"),
        "tokens": (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0),
    }
    if error:
        fields["error"] = error[:MAX_ERROR_CHARS]
    REQUEST_LOGGER.info("request", extra={FIELDS: fields})
