"""app_context_changed (agent view): what the user is looking at while the app's conversation is open (a channel,
a canvas, a list, a message), most relevant first. bankbot answers from the question alone, so it only notes the
kinds of things viewed (never their ids or contents) at debug level, and acknowledges; without this listener
bolt would answer 404 and Slack would retry the event."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)
SLACK_EVENTS = ("app_context_changed",)


async def on_app_context_changed(event) -> None:
    entities = (event.get("context") or {}).get("entities") or []
    log.debug("app context changed: %s", [e.get("type", "?").rpartition("/")[2] for e in entities] or "(none)")


def register(app: AsyncApp) -> None:
    app.event("app_context_changed")(on_app_context_changed)
