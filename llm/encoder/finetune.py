"""The two training phases after the data is ready: a linear probe on frozen embeddings, then fine-tuning (LP-FT).

Both minimise cross-entropy against soft targets: a labelled question's one-hot target smoothed by
`label_smoothing`, a synthetic non-banking prompt's target uniform over the intents (so that such text ends up
with a flat, low-confidence distribution and the out-of-scope threshold can catch it).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from llm.encoder.batches import pad, sorted_chunks, training_batches
from llm.encoder.model import EncoderClassifier

OUT_OF_SCOPE_TARGET = -1  # label index of a synthetic non-banking prompt: uniform target


def soft_targets(labels: torch.Tensor, n_labels: int, smoothing: float) -> torch.Tensor:
    """(N, n_labels): smoothed one-hot rows, uniform rows where the label is OUT_OF_SCOPE_TARGET."""
    targets = torch.full((len(labels), n_labels), smoothing / n_labels)
    known = labels != OUT_OF_SCOPE_TARGET
    targets[known, labels[known]] += 1.0 - smoothing
    targets[~known] = 1.0 / n_labels
    return targets


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@torch.no_grad()
def embed_all(model: EncoderClassifier, rows: Sequence[list[int]], pad_id: int, bf16: bool, chunk: int = 128,
              desc: str = "embed", progress: bool = False) -> torch.Tensor:
    """(N, H) pooled embeddings of tokenised rows, in eval mode, in length-sorted chunks."""
    was_training = model.training
    model.eval()
    out = torch.empty((len(rows), model.head.in_features))
    chunks = list(sorted_chunks(rows, chunk))
    for idx in tqdm(chunks, desc=desc, unit="batch", disable=not progress, dynamic_ncols=True):
        ids, mask = pad([rows[i] for i in idx], pad_id)
        with autocast(bf16):
            out[idx] = model.embed(ids, mask)
    model.train(was_training)
    return out


def fit_probe(model: EncoderClassifier, embeddings: torch.Tensor, targets: torch.Tensor, steps: int, lr: float,
              weight_decay: float, progress: bool = False) -> tuple[float, float]:
    """Fit the head alone on frozen embeddings (full-batch AdamW); returns the loss before and after."""
    head = model.head
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.no_grad():
        first = soft_cross_entropy(model.logits(embeddings), targets).item()
    loss = torch.tensor(first)
    for _ in tqdm(range(steps), desc="linear probe", unit="step", disable=not progress, dynamic_ncols=True):
        optimizer.zero_grad(set_to_none=True)
        loss = soft_cross_entropy(model.logits(embeddings), targets)
        loss.backward()
        optimizer.step()
    return first, loss.item()


@dataclass
class FineTuneState:
    step: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    val_accuracies: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_accuracy: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None


def fine_tune(
    model: EncoderClassifier,
    epoch_rows: Callable[[int], list[list[int]]],  # epoch -> the tokenised (augmented) questions of that epoch
    targets: torch.Tensor,  # (N, n_labels) soft targets, one per row
    validate: Callable[[], float],  # validation accuracy of the model as it is
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    head_lr: float,
    weight_decay: float,
    warmup: float,
    pad_id: int,
    bf16: bool,
    rng: random.Random,
    progress: bool = False,
) -> FineTuneState:
    """AdamW, linear warmup then linear decay, gradient clipping at 1; keeps the best validation epoch's weights."""
    n_rows = len(targets)
    total = math.ceil(n_rows / batch_size) * epochs
    optimizer = make_optimizer(model, lr, head_lr, weight_decay)
    warmup_steps = max(1, int(warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup_steps, max(0.0, (total - s) / max(1, total - warmup_steps)))
    )
    state = FineTuneState()
    bar = tqdm(total=total, desc="fine-tune", unit="step", disable=not progress, dynamic_ncols=True)
    for epoch in range(1, epochs + 1):
        model.train()
        rows = epoch_rows(epoch)
        loss_sum, steps = 0.0, 0
        for batch in training_batches([len(r) for r in rows], batch_size, rng):
            ids, mask = pad([rows[i] for i in batch], pad_id)
            with autocast(bf16):
                logits = model(ids, mask)
            loss = soft_cross_entropy(logits, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            state.step += 1
            loss_sum, steps = loss_sum + loss.item(), steps + 1
            bar.update(1)
            bar.set_postfix(epoch=f"{epoch}/{epochs}", loss=f"{loss_sum / steps:.3f}",
                            val_acc=f"{max(state.best_accuracy, 0):.4f}")
        state.epoch_losses.append(loss_sum / max(1, steps))
        accuracy = validate()
        state.val_accuracies.append(accuracy)
        if accuracy > state.best_accuracy:
            state.best_accuracy, state.best_epoch = accuracy, epoch
            state.best_state = copy.deepcopy(model.state_dict())
    bar.close()
    return state


def make_optimizer(model: EncoderClassifier, lr: float, head_lr: float, weight_decay: float) -> torch.optim.AdamW:
    """Encoder matrices decay, its biases and LayerNorms do not; the head learns at its own rate. Frozen parameters
    (requires_grad off) are left out."""
    decay, no_decay = [], []
    for name, param in model.encoder.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.dim() >= 2 and "LayerNorm" not in name else no_decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "lr": lr, "weight_decay": weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
            {"params": list(model.head.parameters()), "lr": head_lr, "weight_decay": 0.0},
        ]
    )
