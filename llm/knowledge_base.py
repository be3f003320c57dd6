"""The bot's knowledge base: one vetted answer per Banking77 intent, plus the out-of-scope reply, a short
customer-facing title per intent (the buttons of "Do you mean ...?") and the support contact text.

Models only classify the question; the text the user sees comes from here, so no model can invent a fee
or policy. The data lives in knowledge_base.json; its version (JSON version + a hash of the answers and the
out-of-scope reply: what models learn, so retitling a button calls for no retraining) is recorded with every answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from llm.adapters.base import OUT_OF_SCOPE

DEFAULT_PATH = Path(__file__).with_name("knowledge_base.json")


@dataclass(frozen=True)
class KnowledgeBase:
    answers: dict[str, str]  # intent -> answer, in the file's order
    out_of_scope_answer: str  # for greetings and non-banking questions
    version: str  # e.g. "1.0.0+ab12cd34": the file's version + sha256 prefix of what models learn
    titles: dict[str, str] = field(default_factory=dict)  # intent -> short customer-facing title
    support_contact: str = ""  # how to reach a person when no hand-off destination is configured

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(self.answers)

    def title(self, intent: str) -> str:
        """The intent's customer-facing title; the label made readable when the file has none."""
        return self.titles.get(intent) or intent.replace("_", " ").strip(" ?").capitalize()

    def answer(self, intent: str) -> str:
        if intent == OUT_OF_SCOPE:
            return self.out_of_scope_answer
        try:
            return self.answers[intent]
        except KeyError:
            raise KeyError(
                f"unknown intent {intent!r}: the knowledge base {self.version} has no answer for it "
                f"(expected one of its {len(self.answers)} intents or {OUT_OF_SCOPE!r})"
            ) from None


def load_knowledge_base(path: str | Path | None = None) -> KnowledgeBase:
    """The default knowledge base is read once per process; an explicit path is read on every call."""
    if path is None:
        return _load_default()
    return _load(Path(path))


@cache
def _load_default() -> KnowledgeBase:
    return _load(DEFAULT_PATH)


def _load(path: Path) -> KnowledgeBase:
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    version = _require_text(data, "version", path)
    out_of_scope = _require_text(data, "out_of_scope", path)
    answers = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(answers, dict) or not answers:
        raise ValueError(f"{path}: 'answers' must be a non-empty object of intent -> answer")
    if OUT_OF_SCOPE in answers:
        raise ValueError(f"{path}: put the {OUT_OF_SCOPE!r} reply in the top-level 'out_of_scope' field")
    for intent, text in answers.items():
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}: the answer for intent {intent!r} is empty")
    titles = data.get("titles", {})
    if not isinstance(titles, dict) or set(titles) - set(answers):
        raise ValueError(f"{path}: 'titles' must map intents of 'answers' to short titles")
    learnt = json.dumps({"version": version, "answers": answers, "out_of_scope": out_of_scope}, sort_keys=True)
    digest = hashlib.sha256(learnt.encode()).hexdigest()[:8]
    return KnowledgeBase(
        answers={intent: text.strip() for intent, text in answers.items()},
        out_of_scope_answer=out_of_scope,
        version=f"{version}+{digest}",
        titles={intent: str(title).strip() for intent, title in titles.items()},
        support_contact=str(data.get("support_contact") or "").strip(),
    )


def _require_text(data: Any, key: str, path: Path) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: {key!r} must be a non-empty string")
    return value.strip()
