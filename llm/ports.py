"""What the pipeline needs from persistence. `storage.Database` fulfils it; llm never imports storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class RequestSink(Protocol):
    def add(self, row: dict[str, Any]) -> None:
        """Queue one request row. Never blocks, never raises."""


class PipelineStore(Protocol):
    request_log: RequestSink

    async def get_setting(self, key: str) -> str | None: ...

    async def put_setting(self, key: str, value: str) -> None: ...

    async def record_switch(self, *, from_model: str | None, to_model: str, by: str, ok: bool,
                            reason: str = "") -> None: ...

    async def save_benchmark_run(self, run: dict[str, Any]) -> int: ...

    async def benchmark_spend(self, since: datetime, trigger: str) -> float:
        """USD spent by the benchmark runs of ``trigger`` started since ``since``, on every replica."""

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew a lock shared by every replica until ``ttl_s`` from now; False while another holds it."""

    async def release_lease(self, name: str, holder: str) -> None: ...
