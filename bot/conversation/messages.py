"""What the bot says, whatever the front end: help, refusals, the apology, the footer facts, split answers."""

from __future__ import annotations

from typing import Any

from bot.tables import ms

_SEPARATORS = ("\n\n", "\n", ". ", " ")  # preferred split points, best first

HELP = ("Hi! Ask me a banking question, for example _\"My card hasn't arrived yet\"_ or "
        "_\"How do I top up by bank transfer?\"_. Mention me in a channel or send me a direct message.")
EXAMPLES = ("My card hasn't arrived yet", "How do I top up by bank transfer?")  # follow-ups offered with HELP


def too_long(length: int, limit: int) -> str:
    return (f"Your message is {length:,} characters long, and I can read at most {limit:,}. "
            "Please shorten it to the question itself and send it again.")


def apology(reference: str) -> str:
    return (f"Sorry, I can't answer right now: none of my models is available. Please try again in a few minutes. "
            f"If it keeps happening, give our team this reference: `{reference}`.")


def unreadable(reason: Any) -> str:
    return f"Sorry, I can't read that message: {reason}."


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


def split_text(text: str, limit: int) -> list[str]:
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
