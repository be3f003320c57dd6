"""Redaction removes cards (Luhn), IBANs (mod 97), account numbers, sort codes, e-mails and phones only."""

from __future__ import annotations

import pytest

from llm.redact import iban_valid, luhn_valid, redact, redact_with_counts


@pytest.mark.parametrize("text, expected", [
    ("My card 4111 1111 1111 1111 was declined", "My card [CARD] was declined"),
    ("card 5500-0000-0000-0004 blocked", "card [CARD] blocked"),
    ("amex 378282246310005.", "amex [CARD]."),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please"),
    ("send to gb82west12345698765432.", "send to [IBAN]."),
    ("DE89370400440532013000 is mine", "[IBAN] is mine"),
    ("sort code 12-34-56 account number 12345678", "sort code [SORT_CODE] account number [ACCOUNT]"),
    ("sort code: 123456", "sort code: [SORT_CODE]"),
    ("from 20 00 00 to 40-47-84", "from [SORT_CODE] to [SORT_CODE]"),
    ("my account is 31926819 and a/c no. 123456789012", "my account is [ACCOUNT] and a/c no. [ACCOUNT]"),
    ("acct #55779911", "acct #[ACCOUNT]"),
    ("email me at john.smith+bank@example.co.uk now", "email me at [EMAIL] now"),
    ("call +44 7700 900123", "call [PHONE]"),
    ("or 07700 900123, or (020) 7946 0958", "or [PHONE], or [PHONE]"),
    ("US office +1 555-123-4567.", "US office [PHONE]."),
    ("ring 0044 20 7946 0958", "ring [PHONE]"),
])
def test_personal_data_becomes_a_typed_placeholder(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "I paid £20 3 days ago",
    "It was on 2024-01-05 at 10:30, or 05/01/2024",
    "I was charged £1,000,000 on 2024-01-05T10:30:00",
    "$1,250.00 and €99.99 and 1500 GBP",
    "Order 1234 5678 failed twice in 2 weeks",
    "My PIN has 4 digits and I am 37 years old",
    "4111 1111 1111 1112",  # 16 digits failing Luhn: not a card (and too long for a phone)
    "How do I activate my new card?",
    "Top up 100 EUR by transfer to my account",
])
def test_ordinary_text_amounts_and_dates_are_kept(text):
    assert redact(text) == text


def test_a_wrong_iban_check_is_not_an_iban():
    assert "[IBAN]" not in redact("GB82 WEST 1234 5698 7654 33")


def test_counts_say_what_was_removed():
    text = "Card 4111111111111111, IBAN DE89 3704 0044 0532 0130 00, mail a@b.io, phone +44 7700 900123"
    redacted, counts = redact_with_counts(text)
    assert redacted == "Card [CARD], IBAN [IBAN], mail [EMAIL], phone [PHONE]"
    assert counts == {"CARD": 1, "IBAN": 1, "EMAIL": 1, "PHONE": 1}


def test_redaction_is_idempotent():
    once = redact("card 4111 1111 1111 1111, sort code 12-34-56, a/c 12345678, x@y.com")
    assert redact(once) == once


def test_luhn_and_iban_checks():
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and iban_valid("NL91ABNA0417164300")
    assert not iban_valid("GB82WEST12345698765431")
    assert not iban_valid("GB82")


@pytest.mark.parametrize(("text", "expected"), [
    ("my pin is 4321 and it is blocked", "my pin is [SECRET] and it is blocked"),
    ("CVV: 123", "CVV: [SECRET]"),
    ("the security code 987 on the back", "the security code [SECRET] on the back"),
    ("card number 4111111111111112 was declined", "card number [CARD] was declined"),  # fails Luhn: a typo
    ("my PIN got blocked after 3 tries", "my PIN got blocked after 3 tries"),
])
def test_secrets_and_mistyped_card_numbers_after_their_keywords(text, expected):
    assert redact(text) == expected
