"""The buttons a reply may carry, whatever the front end: what they do and the value they send back.

A front end renders each `Action` (Block Kit buttons, Adaptive Card Action.Submit) and hands a click back to the
core as an `ActionEvent` (bot/conversation/dialogue.py). Values are short strings: ids, never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Do(StrEnum):
    CHOOSE = "choose"  # value "<clarification id>:<intent>": the customer meant this intent
    SOMETHING_ELSE = "something_else"  # value "<clarification id>": neither offered intent
    PERSON = "person"  # value "<reason>:<turn id>": the customer wants a person
    TAKE = "take"  # value "<case id>": an agent takes the case
    RESOLVE = "resolve"  # value "<case id>": the case is resolved
    FEEDBACK = "feedback"  # value "up:<request id>" or "down:<request id>"
    REASON = "reason"  # value "<reason>:<request id>": why an answer was disliked


@dataclass(frozen=True)
class Action:
    do: Do
    label: str
    value: str
    primary: bool = False  # the button to stress, where the front end can


@dataclass(frozen=True)
class ActionEvent:
    """A click, as the front end received it."""

    source: str  # slack | teams
    user: str  # the front end's id of whoever clicked
    do: Do
    value: str
    conversation: str  # where the clicked message is (the customer's thread, or the hand-off channel)
    link: str | None = None  # to that conversation, for a case opened from the click


def split_value(value: str) -> tuple[str, str]:
    head, _, tail = value.partition(":")
    return head, tail
