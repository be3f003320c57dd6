"""The optimisation of the custom GPT: AdamW, warmup + cosine schedule, the joint loss, one step, answer polish.

The loss joins the intent (cross-entropy over the 77 label tokens at <sep>, or a uniform target for synthetic
non-banking prompts) with next-token losses on the knowledge-base answer and, optionally, on the question.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from llm.custom import data
from llm.custom.intent_scoring import intent_logits
from llm.custom.transformer import GPT

if TYPE_CHECKING:
    from llm.custom.train import TrainParams


def make_optimizer(model: GPT, params: TrainParams) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=params.lr, betas=(0.9, 0.98))


def learning_rate(step: int, total: int, params: TrainParams) -> float:
    if step < params.warmup_steps:
        return params.lr * (step + 1) / params.warmup_steps
    progress = (step - params.warmup_steps) / max(1, total - params.warmup_steps)
    floor = params.lr * params.min_lr_ratio
    return floor + 0.5 * (params.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def train_step(
    model: GPT, optimizer: torch.optim.Optimizer, batch: data.Batch, label_ids: torch.Tensor, pad_id: int,
    params: TrainParams,
) -> torch.Tensor:
    """One optimizer step on `batch` (gradients clipped at 1.0; bf16 autocast where chosen); returns the loss."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(params.bf16)):
        loss = joint_loss(model, batch, label_ids, pad_id, params)
    _apply(model, optimizer, loss)
    return loss


def _apply(model: GPT, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Backward, gradients clipped at 1.0, one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def _forward(model: GPT, batch: data.Batch, label_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(final states (B, T, C), intent logits at each row's <sep> (B, n_labels)) of a training batch."""
    intent = batch.intent if model.config.n_intents else None
    h = model.hidden(batch.idx, batch.positions, mask=batch.attention, bag=batch.bag, intent=intent)
    return h, h[torch.arange(h.size(0)), batch.sep_pos] @ model.wte.weight[label_ids].T


def joint_loss(
    model: GPT, batch: data.Batch, label_ids: torch.Tensor, pad_id: int, params: TrainParams
) -> torch.Tensor:
    h, label_logits = _forward(model, batch, label_ids)
    in_scope = batch.label >= 0
    loss = torch.zeros(())
    if in_scope.any():
        loss = (
            loss
            + F.cross_entropy(label_logits[in_scope], batch.label[in_scope], label_smoothing=params.label_smoothing)
            * in_scope.float().mean()
        )
    if (~in_scope).any():  # towards the uniform distribution over intents
        uniform = -F.log_softmax(label_logits[~in_scope], dim=-1).mean(dim=-1)
        loss = loss + uniform.mean() * (~in_scope).float().mean()
    lm_mask = batch.targets != pad_id
    for mask, weight in (
        (lm_mask & batch.answer_mask, params.answer_weight),
        (lm_mask & ~batch.answer_mask, params.question_lm_weight),
    ):
        if weight > 0 and mask.any():
            logits = model.lm_head(h[mask])
            loss = loss + weight * F.cross_entropy(logits, batch.targets[mask])
    return loss


def polish_answers(
    model: GPT,
    builder: data.SequenceBuilder,
    questions: list[list[int]],
    labels_: list[int],
    label_ids: torch.Tensor,
    params: TrainParams,
    rng: random.Random,
    on_step: Callable[[], None] | None = None,
) -> None:
    """Memorise the answers exactly: every step shows each intent's answer after one of its questions.

    Dropout is off (eval mode, gradients on) so that the model learns the deterministic continuation it will
    be asked for at inference. The intents are anchored: the loss keeps each question's intent distribution
    at <sep> where it was before the polish (KL to those logits), so the answers cost no intent accuracy.
    """
    if params.polish_steps <= 0:
        return
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(labels_):
        by_label.setdefault(label, []).append(i)
    for rows in by_label.values():  # a few questions per intent carry the answers: anchors for those alone
        rng.shuffle(rows)
        del rows[params.polish_questions :]
    anchored = sorted(i for rows in by_label.values() for i in rows)
    logits = intent_logits(model, builder, [questions[i] for i in anchored], label_ids)
    anchor = dict(zip(anchored, torch.log_softmax(logits, dim=-1), strict=True))  # question -> (n_labels,)
    optimizer = make_optimizer(model, replace(params, lr=params.polish_lr))
    model.eval()
    for step in range(params.polish_steps):
        for group in optimizer.param_groups:
            group["lr"] = params.polish_lr * 0.5 * (1 + math.cos(math.pi * step / params.polish_steps))
        chosen = [rng.choice(rows) for _, rows in sorted(by_label.items())]
        batch = builder.batch([(questions[i], labels_[i], True) for i in chosen])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(params.bf16)):
            h, student = _forward(model, batch, label_ids)
            mask = batch.answer_mask & (batch.targets != builder.tok.pad_id)
            loss = F.cross_entropy(model.lm_head(h[mask]), batch.targets[mask])
            target = torch.stack([anchor[i] for i in chosen])
            drift = F.kl_div(F.log_softmax(student.float(), dim=-1), target, log_target=True, reduction="batchmean")
            loss = loss + params.polish_anchor * drift
        _apply(model, optimizer, loss)
        if on_step is not None:
            on_step()
