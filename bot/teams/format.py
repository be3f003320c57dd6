"""How answers look in Teams: markdown text split under Teams' message size, the footer facts in italics, the
bot's own mention removed, and the help message's example questions as buttons."""

from __future__ import annotations

import re

from microsoft_agents.activity import Activity, ActivityTypes, CardAction, SuggestedActions

from bot.conversation.messages import split_text

# Teams refuses an activity over about 28 KB (text, entities and attachments together). 7,000 characters stay
# under it even when every character takes 3 bytes in UTF-8 and a few are escaped as entities.
TEXT_LIMIT = 7000


def escape(text: str) -> str:
    """Tags as text, so a model's output never becomes a mention (<at>) or markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def footer_line(footer: str) -> str:
    return f"— {escape(footer)}"  # plain: model versions hold underscores, which markdown would take for italics


def answer_texts(text: str, footer: str | None, limit: int = TEXT_LIMIT) -> list[str]:
    """The answer's pieces (never cut inside a word), with the footer under the last one."""
    pieces = split_text(escape(text), limit) or ["…"]
    if footer:
        line = footer_line(footer)
        if len(pieces[-1]) + 2 + len(line) <= limit:
            pieces[-1] = f"{pieces[-1]}\n\n{line}"
        else:
            pieces.append(line)
    return pieces


def message(text: str, suggestions: tuple[str, ...] = ()) -> Activity:
    activity = Activity(type=ActivityTypes.message, text=text, text_format="markdown")
    if suggestions:
        activity.suggested_actions = SuggestedActions(
            actions=[CardAction(type="imBack", title=s, value=s) for s in suggestions])
    return activity


def strip_mention(text: str) -> str:
    """Whatever <at>…</at> tags are left (another person's), and surrounding whitespace, normalised."""
    return re.sub(r"\s+", " ", (text or "").replace("\u00a0", " ")).strip()
