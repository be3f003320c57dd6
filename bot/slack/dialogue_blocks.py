"""The dialogue in Block Kit: buttons for a reply's actions, feedback controls beside the footer, hand-off cases
with "Take it" / "Resolved", and the thumbs-down reason modal. Every button's action_id starts with
ACTION_PREFIX; the listener (bot/slack/listeners/dialogue_actions.py) hands clicks to the core."""

from __future__ import annotations

import json
from typing import Any

from bot.conversation import feedback
from bot.conversation.actions import Action, Do
from bot.conversation.handoff import Case
from bot.slack.format import escape

ACTION_PREFIX = "bankbot_"
FEEDBACK_ACTION = f"{ACTION_PREFIX}{Do.FEEDBACK}"
REASON_VIEW = f"{ACTION_PREFIX}feedback_reason"
REASON_BLOCK, REASON_INPUT = "reason", "choice"


def action_id(do: Do, n: int) -> str:
    return f"{ACTION_PREFIX}{do}_{n}"


def do_of(action_id_: str) -> Do | None:
    """The Do of a button's action_id (bankbot_<do>_<n>, or the feedback control's)."""
    name = action_id_.removeprefix(ACTION_PREFIX).rsplit("_", 1)[0] if action_id_ != FEEDBACK_ACTION else "feedback"
    try:
        return Do(name)
    except ValueError:
        return None


def buttons(actions: tuple[Action, ...]) -> dict[str, Any]:
    return {"type": "actions", "elements": [
        {"type": "button", "action_id": action_id(a.do, n), "text": {"type": "plain_text", "text": a.label[:75]},
         "value": a.value} | ({"style": "primary"} if a.primary else {}) for n, a in enumerate(actions)]}


def feedback_block(request_id: str) -> dict[str, Any]:
    """Slack's feedback_buttons in a context_actions block, beside the footer."""
    return {"type": "context_actions", "elements": [{
        "type": "feedback_buttons", "action_id": FEEDBACK_ACTION,
        "positive_button": {"text": {"type": "plain_text", "text": "Good answer"}, "value": f"up:{request_id}",
                            "accessibility_label": "This answer helped"},
        "negative_button": {"text": {"type": "plain_text", "text": "Bad answer"}, "value": f"down:{request_id}",
                            "accessibility_label": "This answer did not help"}}]}


def with_controls(messages: list[dict[str, Any]], actions: tuple[Action, ...], request_id: str | None
                  ) -> list[dict[str, Any]]:
    """The reply's buttons and feedback controls in its last message, above the footer (which stays last)."""
    last = messages[-1]
    if not (actions or request_id):
        return messages
    body = last.setdefault("blocks", [{"type": "section", "text": {"type": "mrkdwn", "text": escape(last["text"])}}])
    footer = [body.pop()] if body and body[-1]["type"] == "context" else []
    body.extend([buttons(actions)] if actions else [])
    body.extend([feedback_block(request_id)] if request_id else [])
    body.extend(footer)
    return messages


def case_message(case: Case) -> dict[str, Any]:
    """chat.postMessage / chat.update arguments of a hand-off case."""
    lines = [f"*{escape(case.title)}*", f"*Question:* {escape(case.question)}"]
    if case.intent:
        lines.append(f"*Intent:* `{case.intent}`")
    if case.link:
        lines.append(f"*Conversation:* <{case.link}|open the thread>")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": _state(case)}]}]
    if case.actions():
        blocks.append(buttons(case.actions()))
    return {"text": f"{case.title}: {case.question}", "blocks": blocks}


def _state(case: Case) -> str:
    """The case's state, naming the agent with a mention."""
    if case.status in ("taken", "resolved"):
        who = case.taken_by if case.status == "taken" else case.resolved_by
        return f"{case.status.capitalize()} by <@{(who or '').rsplit(':', 1)[-1]}>"
    return escape(case.state)


def reason_modal(request_id: str, where: dict[str, Any]) -> dict[str, Any]:
    """The optional reason after a thumbs-down; private_metadata keeps the answer and where it was."""
    options = [{"text": {"type": "plain_text", "text": label}, "value": value}
               for value, label in feedback.REASONS.items()]
    return {"type": "modal", "callback_id": REASON_VIEW, "title": {"type": "plain_text", "text": "Feedback"},
            "submit": {"type": "plain_text", "text": "Send"}, "close": {"type": "plain_text", "text": "Skip"},
            "private_metadata": json.dumps({"request_id": request_id} | where),
            "blocks": [{"type": "input", "block_id": REASON_BLOCK, "optional": True,
                        "label": {"type": "plain_text", "text": feedback.ASK_REASON},
                        "element": {"type": "radio_buttons", "action_id": REASON_INPUT, "options": options}}]}


def conversation_key(channel: str, thread_ts: str | None, workspace: str | None = None) -> str:
    """A thread, or a whole DM when the answer is top level."""
    key = f"slack:{channel}:{thread_ts}" if thread_ts else f"slack:{channel}"
    return f"{workspace}:{key}" if workspace else key


def thread_link(channel: str, thread_ts: str | None, ts: str) -> str:
    """A link Slack resolves to the message in its workspace."""
    target = thread_ts or ts
    link = f"https://slack.com/archives/{channel}/p{target.replace('.', '')}"
    return link + (f"?thread_ts={thread_ts}&cid={channel}" if thread_ts else "")
