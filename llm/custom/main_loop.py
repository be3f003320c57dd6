"""The custom model's main training loop: epochs of augmented questions (some followed by their answer), an
exponential moving average of the weights, and the EMA weights of the best validation epoch kept."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import torch

from llm.custom import data
from llm.custom.intent_scoring import intent_logits
from llm.custom.train_steps import learning_rate, make_optimizer, train_step
from llm.custom.transformer import GPT

if TYPE_CHECKING:
    from llm.custom.progress import Tick
    from llm.custom.train import TrainParams

VALIDATION_STEPS = 4  # one validation pass costs about as much as this many training steps (progress weights)


class MainLoop:
    """The epochs: augmented questions, some with their answer; the EMA weights of the best validation epoch."""

    def __init__(self, model: GPT, builder: data.SequenceBuilder, params: TrainParams, rng: random.Random,
                 label_ids: torch.Tensor, val_q: list[list[int]], val_y: torch.Tensor):
        self.model, self.builder, self.params, self.rng = model, builder, params, rng
        self.label_ids, self.val_q, self.val_y = label_ids, val_q, val_y
        self.ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(params.ema_decay)
        )
        self.best_accuracy, self.best_epoch, self.best_state = -1.0, 0, model.state_dict()
        self.step, self.loss_avg, self.epoch_losses = 0, float("nan"), []

    @staticmethod
    def total_steps(n_texts: int, params: TrainParams) -> int:
        return math.ceil(n_texts / params.batch_size) * params.epochs

    def run(self, texts: list[str], labels_: list[int], oos: list[str], tick: Tick) -> None:
        """The epochs; tick(1) after each step, tick(VALIDATION_STEPS) after each epoch's validation."""
        params, tok = self.params, self.builder.tok
        total = self.total_steps(len(texts) + len(oos), params)
        optimizer = make_optimizer(self.model, params)
        for epoch in range(1, params.epochs + 1):
            self.model.train()
            loss_sum, n_steps = 0.0, 0
            augmented = [data.augment(t.lower(), self.rng) if self.rng.random() < params.p_augment else t
                         for t in texts]
            questions = data.encode_questions(tok, augmented + oos)
            targets = labels_ + [data.OUT_OF_SCOPE_TARGET] * len(oos)
            for items in data.epoch_batches(questions, targets, params.batch_size, self.rng, params.p_answer):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(self.step, total, params)
                loss = train_step(self.model, optimizer, self.builder.batch(items), self.label_ids, tok.pad_id,
                                  params).item()
                self.ema.update_parameters(self.model)
                self.step += 1
                loss_sum, n_steps = loss_sum + loss, n_steps + 1
                self.loss_avg = loss if math.isnan(self.loss_avg) else 0.98 * self.loss_avg + 0.02 * loss
                tick(1, epoch=f"{epoch}/{params.epochs}", loss=f"{self.loss_avg:.3f}",
                     val_acc=f"{max(self.best_accuracy, 0):.4f}")
            self.epoch_losses.append(loss_sum / max(1, n_steps))
            self._validate(epoch)
            tick(VALIDATION_STEPS)

    def _validate(self, epoch: int) -> None:
        if not len(self.val_y):
            self.best_epoch, self.best_state = epoch, clone_state(self.ema.module.state_dict())
            return
        logits = intent_logits(self.ema.module, self.builder, self.val_q, self.label_ids)
        accuracy = float((logits.argmax(dim=-1) == self.val_y).float().mean())
        if accuracy >= self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch
            self.best_state = clone_state(self.ema.module.state_dict())


def clone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in state.items()}
