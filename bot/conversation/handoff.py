"""Hand-off to a person: when the customer asks for one (in their own words), on an urgent intent (answered at
once, with a "Talk to a person" button), or when the bot keeps failing. A case goes to the hand-off destination
(HANDOFF_CHANNEL in Slack, TEAMS_HANDOFF_CONVERSATION in Teams) with "Take it" and "Resolved"; once taken, the bot
stays silent in that conversation until it is resolved or HANDOFF_SILENCE_HOURS pass. With no destination, the
customer gets the knowledge base's support contact text: never stuck.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.conversation.actions import Action, Do

ASKED, URGENT, REPEATED_FAILURE, SOMETHING_ELSE = "asked", "urgent", "repeated_failure", "something_else"
REASONS = {ASKED: "the customer asked for a person", URGENT: "urgent matter",
           REPEATED_FAILURE: "the bot failed twice in a row", SOMETHING_ELSE: "none of the bot's readings fitted",
           "wanted_person": "the customer disliked an answer and wanted a person"}
TALK_TO_A_PERSON = "Talk to a person"

_PERSON = r"(?:a |an |some |the |real |actual |live |)(?:human|person|people|agent|representative|rep|advis[eo]r|" \
          r"operator|staff|somebody|someone|member of staff|customer service|customer support|support team)"
_ASKS = re.compile(
    r"\b(?:"
    rf"(?:talk|speak|chat|get through|be put through|connect me)\s+(?:to|with)\s+{_PERSON}"
    rf"|(?:want|need|like|get|give me|find me|transfer me to|put me through to)\s+{_PERSON}"
    r"|human\s+(?:being|please|agent)|real person|not a (?:bot|robot|machine)|are you a (?:bot|robot)"
    r"|complain|complaint|escalate|speak to (?:a |your )?manager"
    r")\b",
    re.IGNORECASE,
)
_ALONE = re.compile(r"^\W*(?:agent|human|person|operator|representative|help me|manager)\W*$", re.IGNORECASE)


def asks_for_person(text: str) -> bool:
    """The customer asks for a person: "talk to a human", "agent", "I want to complain"..."""
    return bool(_ASKS.search(text or "") or _ALONE.match(text or ""))


def person_action(reason: str, turn_id: int) -> Action:
    return Action(Do.PERSON, TALK_TO_A_PERSON, f"{reason}:{turn_id}", primary=True)


def told(case_id: int, minutes: int) -> str:
    return (f"I've passed your question to our support team (case #{case_id}). A person will reply in this "
            f"conversation, usually within {minutes} minutes. Until they are done, I'll stay quiet here so "
            "they can help you.")


def already_open(case_id: int, minutes: int) -> str:
    return (f"Our support team already has your question (case #{case_id}); a person will reply in this "
            f"conversation, usually within {minutes} minutes.")


def no_destination(support_contact: str) -> str:
    return f"I can't bring a person into this chat, but you can reach our team directly. {support_contact}"


OFFER_AFTER_FAILURES = ("I'm sorry I haven't been able to help. Would you like a person from our team to "
                        "take over?")
OFFER_AFTER_SOMETHING_ELSE = ("Thanks, I don't want to guess. Would you like a person from our team to help? "
                              "Or ask again in other words.")


@dataclass(frozen=True)
class Case:
    """A hand-off case as the destination shows it."""

    id: int
    reason: str
    question: str  # redacted
    intent: str | None
    link: str | None
    status: str  # open | taken | resolved
    taken_by: str | None = None
    resolved_by: str | None = None
    opened_at: datetime | None = None

    @classmethod
    def of(cls, row: dict) -> Case:
        return cls(row["id"], row["reason"], row["question"], row["intent"], row["link"], row["status"],
                   row.get("taken_by"), row.get("resolved_by"), row.get("opened_at"))

    @property
    def title(self) -> str:
        return f"Hand-off case #{self.id}: {REASONS.get(self.reason, self.reason)}"

    @property
    def state(self) -> str:
        if self.status == "taken":
            return f"Taken by {self.taken_by}"
        if self.status == "resolved":
            return f"Resolved by {self.resolved_by}"
        return "Open: waiting for a person"

    def actions(self) -> tuple[Action, ...]:
        if self.status == "open":
            return (Action(Do.TAKE, "Take it", str(self.id), primary=True),
                    Action(Do.RESOLVE, "Resolved", str(self.id)))
        if self.status == "taken":
            return (Action(Do.RESOLVE, "Resolved", str(self.id)),)
        return ()
