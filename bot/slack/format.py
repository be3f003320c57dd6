"""How answers look in Slack: split to fit, a footer block, and the short help and error messages."""

from __future__ import annotations

import re
from typing import Any

from bot.tables import ms

SECTION_LIMIT = 3000  # characters in one section block's text; longer answers become several messages
_SEPARATORS = ("\n\n", "\n", ". ", " ")  # preferred split points, best first


def escape(text: str) -> str:
    """Slack's three control characters, so model output never turns into a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, split at paragraph, line, sentence or word boundaries.

    Nothing is dropped: only the whitespace at a split point is; a word longer than `limit` is split inside.
    """
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = next((i + len(sep.rstrip()) for sep in _SEPARATORS if (i := window.rfind(sep)) > 0), limit)
        cut = min(cut, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def footer_text(result: Any) -> str:
    """Model, what the user waited (every model tried included) next to the answering model's own time,
    confidence, and the model it fell back from."""
    waited = ms(result.latency_ms)
    model_ms = getattr(result, "model_latency_ms", None)
    if model_ms is not None:
        waited = f"{waited} total, {ms(model_ms)} model"
    parts = [result.model_version or result.model, waited, f"{result.confidence:.0%} confidence"]
    if result.fallback_from:
        parts.append(f"fell back from {result.fallback_from}")
    return " · ".join(p for p in parts if p)


def footer_block(result: Any) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(footer_text(result))}]}


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


HELP = ("Hi! Ask me a banking question, for example _\"My card hasn't arrived yet\"_ or "
        "_\"How do I top up by bank transfer?\"_. Mention me in a channel or send me a direct message.")


def too_long(length: int, limit: int) -> str:
    return (f"Your message is {length:,} characters long, and I can read at most {limit:,}. "
            "Please shorten it to the question itself and send it again.")


def apology(reference: str) -> str:
    return (f"Sorry, I can't answer right now: none of my models is available. Please try again in a few minutes. "
            f"If it keeps happening, give our team this reference: `{reference}`.")
