"""The dialogue in Adaptive Cards: a reply's buttons and feedback controls as Action.Submit, hand-off cases with
"Take it" / "Resolved", and the thumbs-down reason card.

Teams delivers an Action.Submit click as a message activity whose `value` is the button's data: {"bankbot": <Do>,
"value": <the Action's value>}; `event_of` reads it back. Feedback uses card actions rather than Teams' feedback
loop: in the Agents SDK 1.9 the loop exists only on streamed replies, and its `message/submitAction` invoke names
the message by its activity id alone, which is not kept; the buttons carry the request id as Slack's do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from microsoft_agents.activity import Activity, Attachment

from bot.conversation import feedback
from bot.conversation.actions import Action, ActionEvent, Do
from bot.conversation.handoff import Case
from bot.teams.cards import CARD_CONTENT_TYPE, SCHEMA
from bot.teams.format import escape

KEY = "bankbot"  # the data key marking our buttons' clicks
HELPFUL, NOT_HELPFUL = "👍 Helpful", "👎 Not helpful"


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body, "actions": actions}


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True} | style


def submit(action: Action) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": action.label[:80], "data": {KEY: str(action.do), "value": action.value}
            } | ({"style": "positive"} if action.primary else {})


def attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=CARD_CONTENT_TYPE, content=card)


def controls_card(actions: tuple[Action, ...], request_id: str | None) -> dict[str, Any] | None:
    """The reply's buttons, then the feedback controls; None when it has neither."""
    if not (actions or request_id):
        return None
    buttons = [submit(a) for a in actions]
    body = []
    if request_id:
        body.append(_text("Did this answer help?", isSubtle=True, size="Small"))
        buttons += [submit(Action(Do.FEEDBACK, HELPFUL, f"up:{request_id}")),
                    submit(Action(Do.FEEDBACK, NOT_HELPFUL, f"down:{request_id}"))]
    return _card(body, buttons)


def reason_card(request_id: str) -> dict[str, Any]:
    """The optional reason after a thumbs-down: one button per reason."""
    return _card([_text(feedback.ASK_REASON)], [submit(Action(Do.REASON, label, f"{value}:{request_id}"))
                                                for value, label in feedback.REASONS.items()])


def case_card(case: Case) -> dict[str, Any]:
    facts = [{"title": "Question", "value": escape(case.question)}]
    if case.intent:
        facts.append({"title": "Intent", "value": case.intent})
    body = [_text(escape(case.title), weight="Bolder", size="Medium"), {"type": "FactSet", "facts": facts}]
    if case.link:
        body.append(_text(f"[Open the conversation]({case.link})"))
    body.append(_text(escape(case.state), isSubtle=True))
    return _card(body, [submit(a) for a in case.actions()])


def case_activity(case: Case) -> Activity:
    return Activity(type="message", text=f"{case.title}: {escape(case.question)}", text_format="markdown",
                    attachments=[attachment(case_card(case))])


def event_of(value: Any, user: str, conversation: str, link: str | None) -> ActionEvent | None:
    """The click an Action.Submit of ours sent, or None (another card's data, or none)."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        return None
    try:
        do = Do(value.get(KEY))
    except ValueError:
        return None
    return ActionEvent(source="teams", user=user, do=do, value=value["value"], conversation=conversation, link=link)


def conversation_key(conversation_id: str) -> str:
    """A 1:1 or group chat, or a channel's reply chain (its id ends in ;messageid=<root>)."""
    return f"teams:{conversation_id}"


def conversation_link(conversation_id: str, activity_id: str | None, tenant: str | None) -> str:
    """A Teams deep link to the message in its chat or channel thread."""
    root = conversation_id.partition(";messageid=")
    target, message = (root[0], root[2]) if root[2] else (conversation_id, activity_id or "")
    link = f"https://teams.microsoft.com/l/message/{quote(target, safe='')}/{quote(message, safe='')}"
    return link + (f"?tenantId={quote(tenant, safe='')}" if tenant else "")
