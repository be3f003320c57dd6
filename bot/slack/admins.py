"""Who may run /llm-switch: SLACK_ADMIN_USER_IDS, or else the workspace's admins and owners (users.info).

With installs in many workspaces an entry may name its workspace (`T123:U456`); a bare `U456` counts in every
workspace. users.info answers are cached per workspace and user."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


class AdminDirectory:
    def __init__(self, configured: frozenset[str], ttl_s: float = 300.0):
        self.configured = configured  # when non-empty, the only admins
        self.ttl_s = ttl_s  # how long a users.info answer is trusted
        self._cache: dict[str, tuple[bool, float]] = {}

    async def is_admin(self, user_id: str, client: AsyncWebClient, workspace: str | None = None) -> bool:
        if self.configured:
            team = (workspace or "").rpartition(":")[2]
            return user_id in self.configured or (bool(team) and f"{team}:{user_id}" in self.configured)
        key = f"{workspace or ''}/{user_id}"
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[1] < self.ttl_s:
            return cached[0]
        try:
            user = (await client.users_info(user=user_id))["user"]
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s; treating them as not an admin", user_id,
                        exc.response.get("error"))
            return False
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._cache[key] = (admin, time.monotonic())
        return admin
