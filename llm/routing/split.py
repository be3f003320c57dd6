"""Sticky shares of users: a salted hash of the user id decides, so one person's conversation stays on one arm
and every replica decides the same. Requests without a user id are sampled at random."""

from __future__ import annotations

import hashlib
import random

BUCKETS = 10_000


def bucket(salt: str, purpose: str, key: str) -> int:
    """0..BUCKETS-1, uniform over keys, the same for the same (salt, purpose, key)."""
    digest = hashlib.sha256(f"{salt}:{purpose}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_share(salt: str, purpose: str, key: str | None, percent: float) -> bool:
    """Whether `key` falls in the first `percent` of the buckets (random per call without a key)."""
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    limit = percent / 100 * BUCKETS
    if not key:
        return random.random() * BUCKETS < limit
    return bucket(salt, purpose, key) < limit
