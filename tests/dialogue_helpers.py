"""Clicks on the dialogue's buttons, as Slack sends them: signed block_actions and view_submission payloads."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from tests.fake_slack import TEAM_ID
from tests.slack_helpers import SlackHarness, signed_headers

_triggers = itertools.count(1)


def buttons_of(post: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in post.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def feedback_of(post: dict[str, Any]) -> dict[str, Any]:
    [control] = [e for b in post.get("blocks", []) if b["type"] == "context_actions" for e in b["elements"]]
    return control


async def click(h: SlackHarness, post: dict[str, Any], action: dict[str, Any], *, user: str = "U0001",
                value: str | None = None):
    """A block_actions payload for `action` (a button, or a feedback control with `value`) on the bot's `post`."""
    [message] = [m for m in h.fake.messages[post["channel"]] if m.get("text") == post.get("text")
                 and m.get("thread_ts") == post.get("thread_ts")][-1:]
    payload = {"type": "block_actions", "team": {"id": TEAM_ID}, "user": {"id": user, "team_id": TEAM_ID},
               "api_app_id": "A0001", "token": "legacy", "trigger_id": f"trigger.{next(_triggers)}",
               "container": {"type": "message", "message_ts": message["ts"], "channel_id": post["channel"]},
               "channel": {"id": post["channel"]}, "message": message,
               "actions": [{"type": action.get("type", "button"), "action_id": action["action_id"],
                            "block_id": "b", "value": value or action["value"], "action_ts": "1.2"}]}
    return await _post(h, payload)


async def submit_reason(h: SlackHarness, view: dict[str, Any], reason: str | None, *, user: str = "U0001"):
    selected = {"selected_option": {"value": reason}} if reason else {"selected_option": None}
    submitted = view | {"id": "V1", "state": {"values": {"reason": {"choice": {"type": "radio_buttons"} | selected}}}}
    payload = {"type": "view_submission", "team": {"id": TEAM_ID}, "user": {"id": user, "team_id": TEAM_ID},
               "api_app_id": "A0001", "token": "legacy", "trigger_id": "t", "view": submitted}
    return await _post(h, payload)


async def _post(h: SlackHarness, payload: dict[str, Any]):
    body = urlencode({"payload": json.dumps(payload)})
    return await h.post("/slack/events", body, signed_headers(body, content_type="application/x-www-form-urlencoded"))


async def rows(h: SlackHarness, model) -> list[dict[str, Any]]:
    async with h.runtime.db.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(model.__table__).order_by(model.id))).mappings()]
