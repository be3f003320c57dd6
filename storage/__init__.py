"""Persistence for bankbot: request log, benchmark runs, model-switch audit trail, settings, Slack dedupe."""

from storage.database import Database
from storage.request_log import RequestLog

__all__ = ["Database", "RequestLog"]
