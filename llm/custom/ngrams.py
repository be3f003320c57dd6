"""Hashed surface n-grams (fastText style): word 1-2-grams and character 2-5-grams inside words.

The model adds the mean embedding of a question's buckets to its <sep> input, which has seen the whole
question, so the intent position gets a bag-of-n-grams view of the question next to the transformer's own.
Optionally each question token also gets the mean of its word's character n-grams (subword features).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache

import torch


def bucket(gram: str, buckets: int) -> int:
    return zlib.crc32(gram.encode()) % buckets  # stable across processes, unlike hash()


def char_grams(word: str, lo: int = 2, hi: int = 5) -> list[str]:
    """Character n-grams of a word padded with boundary markers, like sklearn's char_wb analyzer."""
    padded = f" {word} "
    return [padded[i : i + n] for n in range(lo, min(hi, len(padded)) + 1) for i in range(len(padded) - n + 1)]


@lru_cache(maxsize=1 << 17)
def word_grams(word: str, buckets: int, lo: int = 2, hi: int = 5) -> tuple[int, ...]:
    """Bucket ids of a word's character n-grams; cached, since the same words come back all the time."""
    return tuple(bucket(g, buckets) for g in char_grams(word, lo, hi))


def word_ngrams(words: Sequence[str], longest: int) -> list[str]:
    """The word 1-grams ("w:..."), 2-grams ("b:...") and, up to `longest`, 3-grams ("t:...") of `words`."""
    return [
        f"{prefix}:{' '.join(words[i : i + n])}"
        for n, prefix in zip(range(1, longest + 1), "wbt", strict=False)
        for i in range(len(words) - n + 1)
    ]


def question_ngrams(text: str, buckets: int) -> list[int]:
    """Bucket ids of a normalized question's words, word bigrams and character n-grams; never empty."""
    words = text.split()
    grams = word_ngrams(words, 2)
    if not grams:
        return [bucket("<empty>", buckets)]
    return [bucket(g, buckets) for g in grams] + [i for word in sorted(set(words)) for i in word_grams(word, buckets)]


def token_word_ngrams(pieces: Sequence[str], buckets: int) -> list[list[int]]:
    """For each token (its decoded text), the bucket ids of the word it belongs to: the word and its char n-grams.

    A token that starts with a space starts a new word; a token that is only spaces gets the word marker alone.
    """
    words: list[str] = []
    owner: list[int] = []
    for piece in pieces:
        if not words or piece.startswith(" "):
            words.append("")
        words[-1] += piece.strip()
        owner.append(len(words) - 1)
    grams = [[bucket(f"w:{w}", buckets), *word_grams(w, buckets)] if w else [bucket("<space>", buckets)] for w in words]
    return [grams[i] for i in owner]


def bag_tensors(bags: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, offsets) in nn.EmbeddingBag's flat layout for a batch of bucket-id lists."""
    lengths = torch.tensor([len(b) for b in bags], dtype=torch.long)
    offsets = torch.zeros(len(bags), dtype=torch.long)
    offsets[1:] = lengths.cumsum(0)[:-1]
    indices = torch.tensor([i for b in bags for i in b], dtype=torch.long)
    return indices, offsets
