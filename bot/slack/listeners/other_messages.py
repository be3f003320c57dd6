"""Every other message event (channel chatter, edits, deletions, bots) is acknowledged and ignored.

Without this listener bolt answers unmatched events with 404, and Slack would retry them.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

SLACK_EVENTS = ()  # receives whatever message events the others do not take


async def ignore(ack) -> None:
    await ack()


def register(app: AsyncApp) -> None:
    app.event("message")(ignore)
