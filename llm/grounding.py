"""The faithfulness guard: an LLM's own answer is shown only when every fact in it comes from the knowledge-base
entry of the intent it chose, or from the (redacted) question.

Facts are numbers (digits or words: "five days" and "5 days" are the same fact), amounts, currencies,
percentages, time spans, dates (months, weekdays), URLs, e-mail addresses, phone numbers and named products or
features (capitalised words inside a sentence: "Apple Pay", "Premium"). An answer must not claim an action the
bot did not take ("I have frozen your card", "your card has been cancelled") and must stay under a length limit.

`check` judges a whole answer; `SentenceGuard` judges a streamed answer one completed sentence at a time, so a
customer never sees a sentence that failed. Where the guard fails, the entry is shown instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_ANSWER_CHARS = 1200  # an answer longer than this is not shown (entries are 150-450 characters)

GROUNDED, KNOWLEDGE_BASE = "grounded", "knowledge_base"  # ANSWER_STYLE values

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "once": 1, "twice": 2, "single": 1, "double": 2, "half": 0.5,
}
MONTHS_AND_DAYS = ("january february march april may june july august september october november december "
                   "monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday "
                   "weekend weekday").split()
CURRENCIES = {"£": "gbp", "$": "usd", "€": "eur", "¥": "jpy", "pound": "gbp", "pounds": "gbp", "quid": "gbp",
              "euro": "eur", "euros": "eur", "dollar": "usd", "dollars": "usd", "pence": "gbp", "cents": "usd"}
CURRENCY_CODES = re.compile(r"\b(?:GBP|EUR|USD|CHF|JPY|AUD|CAD|PLN|SEK|NOK|DKK|CZK|HUF|RON|BGN)\b")
URL = re.compile(r"\b(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|co\.uk|org|net|io|bank|app)\b", re.I)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
PHONE = re.compile(r"(?<!\w)\+?\d[\d ()-]{5,}\d(?!\w)")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
PERCENT = re.compile(r"\bper ?cent\b|%", re.I)
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
# A capitalised word that opens a sentence says nothing; these say nothing anywhere.
COMMON_CAPITALS = {"i", "i'm", "i've", "i'll", "i'd", "we", "you", "ok", "okay"}

# Claims that the bot did something. The bot only answers: it freezes, cancels or sends nothing itself.
ACTION_VERBS = (r"froze|frozen|blocked|cancell?ed|locked|unlocked|refunded|reversed|sent|ordered|issued|"
                r"transferred|credited|debited|closed|opened|changed|updated|reset|activated|deactivated|"
                r"disputed|raised|submitted|reported|replaced|increased|decreased|raised|waived|removed|added|"
                r"verified|approved|processed|escalated|flagged|fixed|resolved|arranged|booked|paid|returned")
CLAIMED_ACTION = re.compile(
    rf"\b(?:i|we)(?:'ve|'ll|'m| have| has| had| just| will| am| are| already| now| went ahead and| gone ahead "
    rf"and)*\s+(?:(?:now|already|just|successfully|gone ahead and|went ahead and)\s+)*(?:{ACTION_VERBS})\b"
    rf"|\b(?:has|have|was|were|is now|are now|has now|have now)\s+(?:been\s+)?(?:successfully\s+)?"
    rf"(?:{ACTION_VERBS})\s+(?:for you|on your behalf)\b"
    rf"|\byour\s+[a-z]+(?:\s+[a-z]+)?\s+(?:has|have|is|are)\s+(?:now\s+)?(?:been\s+)?(?:successfully\s+)?"
    rf"(?:{ACTION_VERBS})\b",
    re.I,
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # why not: "invented number 15", "claims an action: 'I have frozen'"


def check(answer: str, entry: str, question: str = "", *, max_chars: int = MAX_ANSWER_CHARS) -> Verdict:
    """Is every fact of `answer` in `entry` or `question`, with no claimed action, within `max_chars`?"""
    if not answer.strip():
        return Verdict(False, "empty answer")
    if len(answer) > max_chars:
        return Verdict(False, f"{len(answer)} characters; the limit is {max_chars}")
    return Sources(entry, question).judge(answer)


class Sources:
    """The facts an answer may state: the entry's and the question's."""

    def __init__(self, entry: str, question: str = ""):
        text = f"{entry}\n{question}"
        self.lower = _normalise(text)
        self.numbers = _numbers(text)
        self.words = {w.lower() for w in WORD.findall(text)}
        self.currencies = _currencies(text)
        self.claims = {_normalise(m.group()) for m in CLAIMED_ACTION.finditer(entry)}

    def judge(self, answer: str) -> Verdict:
        for pattern, kind in ((EMAIL, "e-mail address"), (URL, "URL"), (PHONE, "phone number")):
            for match in pattern.finditer(answer):
                if _normalise(match.group()).rstrip(".,") not in self.lower:
                    return Verdict(False, f"invented {kind} {match.group()!r}")
        if invented := _numbers(answer) - self.numbers:
            return Verdict(False, f"invented number {_show(min(invented))}")
        if PERCENT.search(answer) and not PERCENT.search(self.lower):
            return Verdict(False, "invented percentage")
        if invented := _currencies(answer) - self.currencies:
            return Verdict(False, f"invented currency {sorted(invented)[0]}")
        for word in WORD.findall(answer):
            low = word.lower()
            if low in MONTHS_AND_DAYS and low not in self.words:
                return Verdict(False, f"invented date {word!r}")
        for name in _names(answer):
            if name.lower() not in self.words:
                return Verdict(False, f"invented name {name!r}")
        for match in CLAIMED_ACTION.finditer(answer):
            if _normalise(match.group()) not in self.claims:
                return Verdict(False, f"claims an action: {match.group()!r}")
        return Verdict(True)


class SentenceGuard:
    """A streamed answer, judged one completed sentence at a time.

    `feed(delta)` returns the sentences completed by this delta that passed (to be sent now); after a failure
    `failed` holds the verdict and nothing more is returned. `finish()` judges the rest once the model is done.
    """

    def __init__(self, entry: str, question: str = "", *, max_chars: int = MAX_ANSWER_CHARS):
        self.sources = Sources(entry, question)
        self.max_chars = max_chars
        self.pending = ""  # text of the sentence being written
        self.passed: list[str] = []  # sentences judged and sent
        self.failed: Verdict | None = None

    @property
    def text(self) -> str:
        return "".join(self.passed)

    def feed(self, delta: str) -> list[str]:
        if self.failed is not None:
            return []
        self.pending += delta
        done: list[str] = []
        while (match := SENTENCE_END.search(self.pending)) is not None:
            sentence, self.pending = self.pending[: match.end()], self.pending[match.end():]
            if not self._judge(sentence):
                return done
            done.append(sentence)
        return done

    def finish(self) -> list[str]:
        """The last sentence (no full stop needed), judged; an answer with nothing in it fails."""
        if self.failed is not None:
            return []
        rest, self.pending = self.pending, ""
        if rest.strip() and not self._judge(rest):
            return []
        if not self.text.strip():
            self.failed = Verdict(False, "empty answer")
        return [rest] if rest.strip() else []

    def _judge(self, sentence: str) -> bool:
        if len(self.text) + len(sentence) > self.max_chars:
            self.failed = Verdict(False, f"longer than {self.max_chars} characters")
        elif sentence.strip() and not (verdict := self.sources.judge(sentence)).ok:
            self.failed = verdict
        if self.failed is not None:
            return False
        self.passed.append(sentence)
        return True


@dataclass
class GroundingCounts:
    """Per model: LLM answers judged, and those rejected (the entry was shown instead)."""

    judged: int = 0
    rejections: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, extra: dict[str, Any]) -> None:
        if extra.get("grounding") not in ("passed", "rejected"):
            return
        self.judged += 1
        if extra["grounding"] == "rejected":
            self.rejections += 1
            kind = str(extra.get("grounding_reason", "")).split(" ")[0:2]
            key = " ".join(kind)
            self.reasons[key] = self.reasons.get(key, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        return {"grounded_answers": self.judged, "grounding_rejections": self.rejections,
                "grounding_rejection_rate": self.rejections / self.judged if self.judged else None}


def ground(model_answer: str, intent: str, entry: str, question: str, style: str = GROUNDED) -> tuple[str, dict]:
    """(the text to show, the `extra` that says why): the model's own answer when the style is grounded and the
    guard passes it, else the entry."""
    base = {"grounded_on": intent, "model_answer": model_answer}
    if style != GROUNDED:
        return entry, base | {"grounding": "off", "answer_source": KNOWLEDGE_BASE}
    verdict = check(model_answer, entry, question)
    if verdict.ok:
        return model_answer.strip(), base | {"grounding": "passed", "answer_source": "model"}
    return entry, base | {"grounding": "rejected", "grounding_reason": verdict.reason, "answer_source": KNOWLEDGE_BASE}


class StreamedAnswer:
    """A model's answer streamed to a customer: deltas in, the text the customer may see out.

    Grounded style: each completed sentence that passes the guard goes out; at the first that fails, nothing more
    of the model's goes out, and the entry follows what was sent (alone, when nothing was). Knowledge-base style:
    the entry goes out at once, as soon as the intent is known."""

    def __init__(self, intent: str, entry: str, question: str, style: str = GROUNDED):
        self.intent, self.entry, self.style = intent, entry, style
        self.guard = SentenceGuard(entry, question) if style == GROUNDED else None
        self.shown: list[str] = []
        self.model_answer = ""

    def start(self) -> list[str]:
        return self._show([self.entry]) if self.guard is None else []

    def feed(self, delta: str) -> list[str]:
        self.model_answer += delta
        if self.guard is None or self.guard.failed is not None:
            return []
        return self._show(self.guard.feed(delta)) + self._fallback()

    def finish(self) -> list[str]:
        if self.guard is None or self.guard.failed is not None:
            return []
        return self._show(self.guard.finish()) + self._fallback()

    def _fallback(self) -> list[str]:
        if self.guard is None or self.guard.failed is None:
            return []
        return self._show([f"\n\n{self.entry}" if self.text.strip() else self.entry])

    def _show(self, pieces: list[str]) -> list[str]:
        self.shown += pieces
        return pieces

    @property
    def text(self) -> str:
        return "".join(self.shown)

    def extra(self) -> dict[str, Any]:
        base = {"grounded_on": self.intent, "model_answer": self.model_answer}
        if self.guard is None:
            return base | {"grounding": "off", "answer_source": KNOWLEDGE_BASE}
        if self.guard.failed is not None:
            return base | {"grounding": "rejected", "grounding_reason": self.guard.failed.reason,
                           "answer_source": KNOWLEDGE_BASE, "sentences_shown": len(self.guard.passed)}
        return base | {"grounding": "passed", "answer_source": "model"}


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()


def _numbers(text: str) -> set[float]:
    values = {float(n.replace(",", "")) if n.count(",") and "." not in n else _float(n) for n in
              NUMBER.findall(PLACEHOLDER.sub(" ", text))}
    values |= {float(NUMBER_WORDS[w.lower()]) for w in WORD.findall(text) if w.lower() in NUMBER_WORDS}
    return values


def _float(number: str) -> float:
    try:
        return float(number.replace(",", ""))
    except ValueError:
        return -1.0


def _currencies(text: str) -> set[str]:
    found = {CURRENCIES[c] for c in ("£", "$", "€", "¥") if c in text}
    found |= {CURRENCIES[w.lower()] for w in WORD.findall(text) if w.lower() in CURRENCIES}
    found |= {m.group().lower() for m in CURRENCY_CODES.finditer(text)}
    return found


def _names(text: str) -> list[str]:
    """Capitalised words inside sentences (not the first word of one), placeholders aside."""
    names = []
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n+", PLACEHOLDER.sub(" ", text)):
        words = WORD.findall(sentence)
        names += [w for w in words[1:] if w[0].isupper() and w.lower() not in COMMON_CAPITALS]
    return names


def _show(value: float) -> str:
    return f"{value:g}"
