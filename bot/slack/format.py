"""How answers look in Slack: escaped, split to fit section blocks, with the footer facts in a context block."""

from __future__ import annotations

import re
from typing import Any

from bot.conversation import messages as shared

SECTION_LIMIT = 3000  # characters in one section block's text; longer answers become several messages


def escape(text: str) -> str:
    """Slack's three control characters, so model output never turns into a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, never cutting a word unless it is longer than `limit`."""
    return shared.split_text(text, limit)


def footer_block(footer: str) -> dict[str, Any]:
    """The core's footer facts (bot/conversation/messages.py's footer_text) as a context block."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(footer)}]}


def section_block(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def answer_messages(text: str, footer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """chat.postMessage arguments (text and blocks) for each piece; the footer goes under the last one."""
    pieces = split_text(escape(text)) or ["…"]
    messages = [{"text": piece, "blocks": [section_block(piece)]} for piece in pieces]
    if footer:
        messages[-1]["blocks"].append(footer)
    return messages


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """The question without the bot's own mention(s); other users' mentions stay."""
    stripped = _MENTION.sub(lambda m: "" if m.group(1) == bot_user_id else m.group(0), text or "")
    return re.sub(r"\s+", " ", stripped).strip()


def mentions(text: str, user_id: str | None) -> bool:
    return bool(user_id) and any(m.group(1) == user_id for m in _MENTION.finditer(text or ""))
