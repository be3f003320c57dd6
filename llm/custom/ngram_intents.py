"""The wide half of the intent head: a linear model over TF-IDF weighted, hashed word and character n-grams.

The transformer reads a question token by token; this model sees it as a bag of surface n-grams (word 1-3-grams,
character 1-5-grams inside words), which is what carries most of Banking77's signal at 10k training sentences.
At <sep> the intent logits are a weighted geometric mean of the transformer's label logits and this model's
(intent_scoring.mixed_logits), so the constrained decoder picks among the same 77 labels, and the confidence is
the combined label probability.
It is fitted first, in seconds (a convex problem); `mix` is then chosen on the validation slice.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from torch.nn import functional as F

from llm.custom.ngrams import bucket, word_grams, word_ngrams


def ngram_counts(text: str, buckets: int) -> Counter[int]:
    """Bucket id -> count of a normalized question's word 1-3-grams and in-word character 1-5-grams."""
    words = text.split()
    counts = Counter(bucket(g, buckets) for g in word_ngrams(words, 3) or ["<empty>"])
    for word in words:
        counts.update(word_grams(word, buckets, 1, 5))
    return counts


class NgramIntentModel(nn.Module):
    def __init__(self, buckets: int, n_labels: int):
        super().__init__()
        self.buckets = buckets
        self.weight = nn.EmbeddingBag(buckets, n_labels, mode="sum")  # (buckets, n_labels): a sparse linear layer
        self.bias = nn.Parameter(torch.zeros(n_labels))
        self.register_buffer("idf", torch.ones(buckets))  # inverse document frequency of each bucket in train
        self.register_buffer("mix", torch.zeros(()))  # weight of these logits next to the transformer's
        nn.init.zeros_(self.weight.weight)

    def features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(indices, offsets, weights) of normalized questions: sublinear tf * idf, L2-normalized per question."""
        return self._weighted([ngram_counts(t, self.buckets) for t in texts])

    def _weighted(self, counts: Sequence[Counter[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        indices = torch.tensor([k for c in counts for k in c], dtype=torch.long)
        tf = torch.tensor([1.0 + math.log(n) for c in counts for n in c.values()])
        lengths = torch.tensor([len(c) for c in counts], dtype=torch.long)
        offsets = torch.zeros(len(counts), dtype=torch.long)
        offsets[1:] = lengths.cumsum(0)[:-1]
        weights = tf * self.idf[indices]
        rows = torch.repeat_interleave(torch.arange(len(counts)), lengths)
        norms = torch.zeros(len(counts)).index_add_(0, rows, weights.square()).sqrt()
        return indices, offsets, weights / norms[rows]

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Intent logits (B, n_labels)."""
        return self.weight(indices, offsets, per_sample_weights=weights) + self.bias

    @torch.no_grad()
    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        return self(*self.features(texts))

    def fit(self, texts: Sequence[str], labels: torch.Tensor, steps: int = 150, lr: float = 0.05,
            l2: float = 1e-6, on_step: Callable[[], None] | None = None) -> float:
        """Set idf from `texts`, then minimise cross-entropy + l2 * |W|^2 by full-batch Adam; returns the final loss.

        A label of -1 marks a non-banking text: its target is the uniform distribution over the intents, so
        n-grams that only such texts have pull the confidence down instead of towards some intent.

        Only the buckets that occur in `texts` can move, so the fit runs on those rows alone, with the
        features as one sparse matrix (questions x used buckets) and the gradients written out by hand.
        """
        counts = [ngram_counts(t, self.buckets) for t in texts]
        df = torch.zeros(self.buckets)
        for c in counts:
            df[list(c)] += 1
        self.idf.copy_(torch.log((1 + len(texts)) / (1 + df)) + 1)
        indices, offsets, weights = self._weighted(counts)
        used = (df > 0).nonzero().squeeze(1)  # (U,) bucket ids
        column = torch.full((self.buckets,), -1, dtype=torch.long)
        column[used] = torch.arange(len(used))
        lengths = torch.diff(offsets, append=torch.tensor([len(indices)]))
        rows = torch.repeat_interleave(torch.arange(len(texts)), lengths)
        x = torch.sparse_coo_tensor(
            torch.stack([rows, column[indices]]), weights, (len(texts), len(used)), check_invariants=True
        ).coalesce()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": matmul by a dense matrix is all we use
            warnings.simplefilter("ignore", UserWarning)
            x_t = x.t().coalesce().to_sparse_csr()  # (U, N)
            x = x.to_sparse_csr()  # (N, U)
        w = torch.zeros(len(used), self.bias.numel())
        b = torch.zeros(self.bias.numel())
        optimizer = torch.optim.Adam([w, b], lr=lr)
        n_labels = self.bias.numel()
        target = torch.where(
            (labels >= 0).unsqueeze(1), F.one_hot(labels.clamp(min=0), n_labels).float(), 1.0 / n_labels
        )
        for _ in range(steps):
            g = (torch.softmax(x @ w + b, dim=-1) - target) / len(texts)  # d(cross-entropy)/d(logits)
            w.grad, b.grad = x_t @ g + 2 * l2 * w, g.sum(dim=0)
            optimizer.step()
            if on_step is not None:
                on_step()
        loss = float(F.cross_entropy(x @ w + b, target)) + l2 * float(w.square().sum())
        with torch.no_grad():
            self.weight.weight.zero_()
            self.weight.weight[used] = w
            self.bias.copy_(b)
        return loss
