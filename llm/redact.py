"""Removes personal banking data from text before it leaves the host or is stored.

Each match becomes a typed placeholder, so a model still understands the question:
"my card 4111 1111 1111 1111 was declined" -> "my card [CARD] was declined".

What is removed, in this order (an earlier kind wins where two overlap):
    [EMAIL]      name@example.com
    [IBAN]       two letters, two check digits, 11-30 letters/digits (spaces allowed); mod-97 checked
    [SECRET]     3-8 digits after "pin", "cvv", "cvc", "security code", "passcode", "otp"...
    [CARD]       13-19 digits after "card" (number), even when a typo breaks Luhn; elsewhere Luhn checked
    [SORT_CODE]  12-34-56 / 12 34 56, or 6 digits after "sort code"
    [ACCOUNT]    6-18 digits after "account"/"acct"/"a/c" (number), or a bare run of exactly 8 digits
    [PHONE]      10-15 digits, optionally starting with + or 00, spaces/dots/hyphens/brackets allowed

Amounts ("£20", "$1,250.00"), durations ("3 days") and ISO dates ("2024-01-05") are left alone.
"""

from __future__ import annotations

import re
from collections import Counter

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Country code and check digits are written together ("GB82"); groups after them may be spaced.
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
CARD_AFTER_WORDS = re.compile(r"\b(card(?:\s+(?:number|num|no\.?))?\s*(?:is|:|#)?\s*)(\d(?:[ -]?\d){12,18})(?![\d-])",
                              re.I)
SECRET_AFTER_WORDS = re.compile(
    r"\b((?:pin|cvv2?|cvc2?|security\s+code|passcode|password|otp|one[- ]time\s+(?:code|password))"
    r"(?:\s+(?:number|code))?\s*(?:is|:|=|-)?\s*)(\d{3,8})(?!\d)", re.I)
# Keyword forms keep the words and replace only the digits: "sort code: [SORT_CODE]".
SORT_CODE_AFTER_WORDS = re.compile(r"\b(sort[ -]?code\s*(?:is|:|-)?\s*)(\d{2}([- ]?)\d{2}\3\d{2})(?!\d)", re.I)
SORT_CODE = re.compile(r"(?<![\w-])\d{2}([- ])\d{2}\1\d{2}(?![\w-])")  # 12-34-56, 12 34 56
ACCOUNT_AFTER_WORDS = re.compile(
    r"\b((?:account|acct|a/c)(?:\s+(?:number|num|no\.?))?\s*(?:is|:|#)?\s*)(\d(?:[ -]?\d){5,17})(?!\d)", re.I
)
ACCOUNT = re.compile(r"(?<![\d£$€.,:/-])\d{8}(?![\d.,:/-])")  # a bare 8-digit UK account number
PHONE = re.compile(r"(?<![\w£$€.,/+])(?<!\d[ .-])(?:\+|00)?\(?\d(?:[ .()-]{0,2}\d){9,14}(?![\w.,/-]?\d|[ .-]\d)")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN written without spaces."""
    iban = candidate.upper()
    if not (15 <= len(iban) <= 34 and iban[:2].isalpha() and iban[2:4].isdigit() and iban.isalnum()):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _redact_ibans(text: str, counts: Counter[str]) -> str:
    """The regex may swallow a following word ("... 32 please"); try shorter ends at word boundaries."""
    out, pos = [], 0
    for m in IBAN.finditer(text):
        if m.start() < pos:
            continue
        span = m.group()
        for end in range(len(span), 0, -1):
            if end < len(span) and span[end] != " ":
                continue  # only cut between groups
            if iban_valid(span[:end].replace(" ", "")):
                out.append(text[pos : m.start()] + "[IBAN]")
                pos = m.start() + end
                counts["IBAN"] += 1
                break
    out.append(text[pos:])
    return "".join(out)


def _replace(pattern: re.Pattern[str], label: str, text: str, counts: Counter[str], check=None) -> str:
    """Replace each match (that passes `check`) by [LABEL]; the *_AFTER_WORDS patterns keep their words."""

    def sub(m: re.Match[str]) -> str:
        if check is not None and not check(m):
            return m.group()
        counts[label] += 1
        keep = m.group(1) if pattern in _KEEP_WORDS else ""
        return f"{keep}[{label}]"

    return pattern.sub(sub, text)


_KEEP_WORDS = (SORT_CODE_AFTER_WORDS, ACCOUNT_AFTER_WORDS, CARD_AFTER_WORDS, SECRET_AFTER_WORDS)


def _is_card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_phone(m: re.Match[str]) -> bool:
    return 10 <= len(re.sub(r"\D", "", m.group())) <= 15


def redact_with_counts(text: str) -> tuple[str, dict[str, int]]:
    """The redacted text and how many items of each kind were removed, e.g. {"CARD": 1}."""
    counts: Counter[str] = Counter()
    text = _replace(EMAIL, "EMAIL", text, counts)
    text = _redact_ibans(text, counts)
    text = _replace(SECRET_AFTER_WORDS, "SECRET", text, counts)
    text = _replace(CARD_AFTER_WORDS, "CARD", text, counts)
    text = _replace(CARD, "CARD", text, counts, _is_card)
    text = _replace(SORT_CODE_AFTER_WORDS, "SORT_CODE", text, counts)
    text = _replace(SORT_CODE, "SORT_CODE", text, counts)
    text = _replace(ACCOUNT_AFTER_WORDS, "ACCOUNT", text, counts)
    text = _replace(ACCOUNT, "ACCOUNT", text, counts)
    text = _replace(PHONE, "PHONE", text, counts, _is_phone)
    return text, dict(counts)


PLACEHOLDER = re.compile(r"\[(?:EMAIL|IBAN|SECRET|CARD|SORT_CODE|ACCOUNT|PHONE)\]")  # every label used above


def strip_personal_data(text: str) -> str:
    """`text` with the personal data removed outright rather than replaced by placeholders."""
    return re.sub(r"\s*" + PLACEHOLDER.pattern, "", redact(text)).strip()


def redact(text: str) -> str:
    """`text` with card numbers, IBANs, account numbers, sort codes, PINs/CVVs, e-mails and phones replaced."""
    return redact_with_counts(text)[0]
