"""Feedback on answers: thumbs up or down, once per person and answer (a second click changes it), and an
optional reason after a thumbs-down. Each row is linked to the answer's request: model, intent, confidence and
routing arm."""

from __future__ import annotations

REASONS = {"wrong_topic": "Wrong topic", "not_helpful": "Not helpful", "wanted_person": "I wanted a person"}
ASK_REASON = "Sorry that wasn't helpful. What went wrong? (optional)"
THANKS = "Thanks for your feedback."


def parse(value: str) -> tuple[bool, str] | None:
    """("up"|"down", request id) from a feedback control's value."""
    vote, _, request_id = value.partition(":")
    if vote not in ("up", "down") or not request_id:
        return None
    return vote == "up", request_id
