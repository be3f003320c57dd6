"""Rate limits per Slack user and per API client, counted in the database so they hold across replicas.

Fixed one-minute windows (``Database.hit_rate_limit``). A limit of 0 disables that check. When the
database is down or slow the check fails OPEN: the request is allowed and the failure logged at debug
level, so an outage of the database never locks users out.

Keys hold the salted hash of the Slack user id or client address that request rows hold (`salted_hash`), never
the identity itself; the Runtime sets `salt` to the deployment's salt (USER_HASH_SALT, or the generated one).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass

from storage.database import Database

log = logging.getLogger(__name__)

WINDOW_S = 60
CHECK_TIMEOUT_S = 1.0  # a slow database must not delay an answer: past this the request is allowed


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int  # per minute; 0 when the check is disabled
    count: int = 0  # requests in the current window, this one included (0 when not counted)
    retry_after_s: float = 0.0  # when refused: seconds until the window ends
    message: str = ""  # when refused: a sentence fit to show the user

    @property
    def retry_after_whole_s(self) -> int:
        """``retry_after_s`` rounded up, at least 1: for a Retry-After header or a message."""
        return max(1, math.ceil(self.retry_after_s))


class RateLimiter:
    def __init__(self, db: Database, per_user_per_minute: int, per_client_per_minute: int, *,
                 timeout_s: float = CHECK_TIMEOUT_S, salt: str = ""):
        if per_user_per_minute < 0 or per_client_per_minute < 0:
            raise ValueError("rate limits must be >= 0 (0 disables)")
        self.db = db
        self.per_user_per_minute = per_user_per_minute
        self.per_client_per_minute = per_client_per_minute
        self.timeout_s = timeout_s
        self.salt = salt

    async def check_slack_user(self, user_id: str) -> RateLimitResult:
        result = await self._check(f"slack:{salted_hash(self.salt, user_id)}", self.per_user_per_minute)
        if result.allowed:
            return result
        wait = result.retry_after_whole_s
        return _with_message(result, "You're sending messages faster than I can answer — please wait "
                                     f"{wait} second{'s' if wait != 1 else ''}.")

    async def check_api_client(self, client_id: str) -> RateLimitResult:
        result = await self._check(f"api:{salted_hash(self.salt, client_id)}", self.per_client_per_minute)
        if result.allowed:
            return result
        return _with_message(result, f"Rate limit of {result.limit} requests per minute exceeded; "
                                     f"retry in {result.retry_after_whole_s} s.")

    async def _check(self, key: str, limit: int) -> RateLimitResult:
        if limit == 0:
            return RateLimitResult(allowed=True, limit=0)
        try:
            decision = await asyncio.wait_for(self.db.hit_rate_limit(key, WINDOW_S, limit), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - fail open: an outage must never block users
            log.debug("rate limit not checked (request allowed): %s", str(exc) or type(exc).__name__)
            return RateLimitResult(allowed=True, limit=limit)
        return RateLimitResult(decision.allowed, limit, decision.count, decision.retry_after_s)


def salted_hash(salt: str, identity: str) -> str:
    """The hash of a user id in request rows (llm.pipeline's `_hash_user`): a member list cannot be hashed to
    find who is who without the salt."""
    return hashlib.sha256(f"{salt}:{identity}".encode()).hexdigest()[:32]


def _with_message(result: RateLimitResult, message: str) -> RateLimitResult:
    return RateLimitResult(result.allowed, result.limit, result.count, result.retry_after_s, message)
