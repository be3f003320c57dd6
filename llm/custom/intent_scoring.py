"""Scoring intents on held-out questions: the transformer's label logits at <sep>, mixed with the n-gram model's,
and the out-of-scope threshold. Training uses these for model selection; the predictor computes the same logits
while it decodes, so validation and serving agree."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from llm.custom.data import SequenceBuilder
from llm.custom.transformer import GPT

MIX_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)  # weights of the n-gram logits tried on validation


@torch.no_grad()
def intent_logits(
    model: GPT,
    builder: SequenceBuilder,
    questions: list[list[int]],
    label_ids: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """(N, n_labels) logits of the intents at each question's <sep> (right-padded, causal)."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(questions), batch_size):
        chunk = questions[start : start + batch_size]
        prompts = [builder.prompt_ids(q) for q in chunk]
        T = max(len(p) for p in prompts)
        idx = torch.full((len(prompts), T), builder.tok.pad_id, dtype=torch.long)
        for i, p in enumerate(prompts):
            idx[i, : len(p)] = torch.tensor(p)
        sep_pos = torch.tensor([len(p) - 1 for p in prompts])
        h = model.hidden(idx, bag=builder.question_bag(chunk, sep_pos)).float()
        out.append(h[torch.arange(len(prompts)), sep_pos] @ model.wte.weight[label_ids].T)
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, len(label_ids)))


def mixed_logits(deep: torch.Tensor, wide: torch.Tensor, mix: float | torch.Tensor) -> torch.Tensor:
    """The intent head: a weighted geometric mean of the transformer's and the n-gram model's distributions.

    Dividing by 1 + mix keeps the result no sharper than its parts: where two unsure models happen to agree
    (a greeting, say), their sum would look confident, and the out-of-scope threshold would not catch it.
    """
    return (deep + mix * wide) / (1 + mix)


def choose_mix(deep: torch.Tensor, wide: torch.Tensor, labels: torch.Tensor, grid: Sequence[float] = MIX_GRID) -> float:
    """The weight of the n-gram logits that gives the best validation accuracy (the smallest such on ties)."""
    if len(labels) == 0:
        return 0.0
    scores = [(float((mixed_logits(deep, wide, mix).argmax(dim=-1) == labels).float().mean()), -mix) for mix in grid]
    return -max(scores)[1]


def tune_threshold(
    confidence: torch.Tensor, correct: torch.Tensor, max_cost: float, oos_confidence: torch.Tensor | None = None,
    oos_recall: float = 0.99,
) -> float:
    """The out-of-scope threshold: the lowest that rejects `oos_recall` of held-out non-banking prompts, but never
    above the highest that costs at most `max_cost` of validation accuracy (without such prompts: that one)."""
    ceiling = _cost_ceiling(confidence, correct, max_cost)
    if oos_confidence is None or len(oos_confidence) == 0:
        return ceiling
    enough = float(torch.quantile(oos_confidence.float(), oos_recall)) + 1e-6  # just above that share of them
    return min(ceiling, enough)


def _cost_ceiling(confidence: torch.Tensor, correct: torch.Tensor, max_cost: float) -> float:
    if len(confidence) == 0:
        return 0.0
    order = torch.argsort(confidence)
    lost = torch.cumsum(correct[order].float(), dim=0) / len(confidence)  # accuracy lost below each value
    ok = (lost <= max_cost).nonzero()
    if len(ok) == 0:
        return 0.0
    return float(confidence[order][int(ok.max())])
