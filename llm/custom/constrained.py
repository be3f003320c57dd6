"""Constrained decoding of the intent: a prefix trie over the labels' token sequences.

Each label is one dedicated token here, so the trie has depth one and decoding is an argmax over the 77
label-token logits; the trie keeps the decoder correct for labels spelled with several tokens too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class LabelTrie:
    def __init__(self, label_token_ids: Sequence[Sequence[int]]):
        self.root: dict = {}
        self.label_at: dict[tuple[int, ...], int] = {}  # full token path -> label index
        for index, ids in enumerate(label_token_ids):
            if not ids:
                raise ValueError(f"label {index} has no tokens")
            node = self.root
            for tok in ids:
                node = node.setdefault(tok, {})
            if tuple(ids) in self.label_at:
                raise ValueError(f"labels {self.label_at[tuple(ids)]} and {index} share the tokens {list(ids)}")
            if node:
                raise ValueError(f"label {index}'s tokens are a prefix of another label's")
            self.label_at[tuple(ids)] = index
        self._allowed_cache: dict[tuple[int, ...], torch.Tensor] = {}

    def allowed(self, prefix: Sequence[int]) -> torch.Tensor:
        """Token ids that may follow `prefix` (empty when `prefix` spells a whole label)."""
        key = tuple(prefix)
        if key not in self._allowed_cache:
            node = self.root
            for tok in key:
                node = node[tok]
            self._allowed_cache[key] = torch.tensor(sorted(node), dtype=torch.long)
        return self._allowed_cache[key]

    def is_complete(self, prefix: Sequence[int]) -> bool:
        return tuple(prefix) in self.label_at


def constrained_step(
    logits: torch.Tensor, trie: LabelTrie, prefixes: list[list[int]]
) -> tuple[list[int], torch.Tensor]:
    """One decoding step for each unfinished row: the best allowed token and its probability among the allowed.

    logits (B, vocab) of the next token; prefixes are the label tokens chosen so far per row (extended in
    place). Finished rows get probability 1. Returns (chosen token per row, or -1 when finished; probs (B,)).
    """
    if all(not prefix for prefix in prefixes):  # the common first step: every row at the root, vectorized
        allowed = trie.allowed([])
        p = torch.softmax(logits[:, allowed].float(), dim=-1)
        best_p, best = p.max(dim=-1)
        chosen = allowed[best].tolist()
        for prefix, tok in zip(prefixes, chosen, strict=True):
            prefix.append(tok)
        return chosen, best_p
    chosen, probs = [], torch.ones(logits.size(0))
    for row, prefix in enumerate(prefixes):
        if trie.is_complete(prefix):
            chosen.append(-1)
            continue
        allowed = trie.allowed(prefix)
        p = torch.softmax(logits[row, allowed].float(), dim=-1)
        best = int(torch.argmax(p))
        prefix.append(int(allowed[best]))
        chosen.append(int(allowed[best]))
        probs[row] = p[best]
    return chosen, probs
