"""Tokenised batches with dynamic padding: each batch is padded to its own longest question, not to max_length.

Training batches are shuffled but of similar length (sorted within pools of batches); inference sorts a request
batch by length and runs it in chunks, so one long question does not pad 63 short ones.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch

Ids = list[int]


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[Ids]:
    """Token ids with [CLS] and [SEP], cut to max_length (a fast tokenizer does the batch in Rust)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad(rows: Sequence[Ids], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), right-padded to the longest row."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def training_batches(lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 16) -> list[list[int]]:
    """Row indices in shuffled batches of similar length: sorted within pools of `pool` batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * pool
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def sorted_chunks(rows: Sequence[Ids], chunk: int) -> Iterator[list[int]]:
    """Row indices by increasing length, `chunk` at a time (the caller puts the outputs back in order)."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    for start in range(0, len(order), chunk):
        yield order[start : start + chunk]
