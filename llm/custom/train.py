"""Train the custom GPT on Banking77's train split (never test.csv): `bankbot train custom`.

A stratified validation slice of train.csv is held out for model selection and for tuning the
out-of-scope threshold. Deterministic under a seed; the default configuration fits in 10 minutes on 2 cores.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from llm.banking77 import Example, labels, load_split
from llm.config import LLMSettings
from llm.custom import data
from llm.custom.checkpoint import CheckpointMeta, checkpoint_exists, save_checkpoint
from llm.custom.out_of_scope import synthetic_out_of_scope
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, GPTConfig
from llm.knowledge_base import load_knowledge_base

__all__ = ["TrainParams", "TrainReport", "checkpoint_exists", "train_custom"]


@dataclass
class TrainParams:
    out_dir: Path = Path("models/custom")  # where the checkpoint is written
    seed: int = 1337
    val_fraction: float = 0.1  # of each intent's train examples, held out for model selection
    vocab_size: int = 3000  # BPE vocabulary, specials and label tokens included
    max_question_tokens: int = 64
    gpt: GPTConfig = field(  # vocab_size is set from the tokenizer; hashed question n-grams on
        default_factory=lambda: GPTConfig(ngram_buckets=32768, token_ngrams=True)
    )
    epochs: int = 9
    batch_size: int = 64
    lr: float = 2e-3  # peak learning rate; linear warmup, then cosine decay to lr * min_lr_ratio
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.1
    label_smoothing: float = 0.1
    question_lm_weight: float = 0.1  # next-token loss on the question's own tokens (an auxiliary task)
    answer_weight: float = 2.0  # next-token loss on the knowledge-base answer
    p_answer: float = 0.3  # share of sequences per epoch that carry the answer after the label
    p_augment: float = 0.5  # share of questions per epoch that get word dropout / swaps / typos
    n_out_of_scope: int = 400  # synthetic non-banking prompts trained towards a uniform intent distribution
    max_threshold_cost: float = 0.002  # the OOS threshold may cost at most this much validation accuracy
    intents: tuple[str, ...] | None = None  # train on these intents only (tests); None = all 77
    per_intent: int | None = None  # at most this many train examples per intent (tests)
    threads: int = 2
    polish_steps: int = 80  # then steps on answer-carrying sequences only, dropout off: exact answers
    polish_lr: float = 1e-3  # peak of the polish phase's cosine schedule
    ema_decay: float = 0.998  # validation and the checkpoint use an exponential moving average of the weights
    bf16: bool = True  # bfloat16 autocast for training steps (about 4x faster on CPUs with bf16 units)


@dataclass
class TrainReport:
    out_dir: str
    train_seconds: float
    val_accuracy: float  # the saved model (best epoch + polish), before the out-of-scope threshold
    best_epoch: int
    epochs: int
    steps: int
    final_loss: float
    epoch_losses: list[float]  # mean training loss of each epoch
    oos_threshold: float
    oos_recall: float  # share of held-out synthetic non-banking prompts below the threshold
    n_params: int
    params: dict[str, Any]


def train_custom(config: LLMSettings | TrainParams, progress: bool = True) -> TrainReport:
    """Train and save to `settings.custom_checkpoint_dir` (defaults) or to `params.out_dir`."""
    params = config if isinstance(config, TrainParams) else TrainParams(out_dir=config.custom_checkpoint_dir)
    started = time.perf_counter()
    torch.set_num_threads(params.threads)
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    all_labels = list(labels())
    kb = load_knowledge_base()
    answers = [kb.answer(label) for label in all_labels]

    train_ex, val_ex = data.stratified_split(_select(load_split("train"), params), params.val_fraction, params.seed)
    tok = BankTokenizer.train(
        [normalize_question(e.text) for e in train_ex] + answers * 3, all_labels, params.vocab_size
    )
    gpt = replace(params.gpt, vocab_size=tok.vocab_size)
    model = GPT(gpt)
    builder = data.SequenceBuilder(tok, answers, params.max_question_tokens, gpt.ngram_buckets, gpt.token_ngrams)
    longest = builder.label_position + 1 + max(len(a) for a in builder.answer_ids)
    if longest > gpt.block_size:
        raise ValueError(
            f"block_size {gpt.block_size} is shorter than the longest training sequence ({longest} "
            "tokens): raise it, or lower max_question_tokens"
        )
    label_index = {label: i for i, label in enumerate(all_labels)}
    train_texts = [e.text for e in train_ex]
    train_labels = [label_index[e.intent] for e in train_ex]
    oos_train = synthetic_out_of_scope(params.n_out_of_scope, seed=params.seed)
    val_q = data.encode_questions(tok, [e.text for e in val_ex])
    val_y = torch.tensor([label_index[e.intent] for e in val_ex])

    steps_per_epoch = math.ceil((len(train_texts) + len(oos_train)) / params.batch_size)
    total = steps_per_epoch * params.epochs
    optimizer = _optimizer(model, params)
    label_ids = torch.tensor(tok.label_ids)
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(params.ema_decay)
    )
    best = (-1.0, 0, None)  # (val accuracy, epoch, state)
    step, loss_avg, epoch_losses = 0, float("nan"), []
    bar = tqdm(total=total, disable=not progress, desc="train custom", unit="step", dynamic_ncols=True)
    for epoch in range(1, params.epochs + 1):
        model.train()
        loss_sum, n_steps = 0.0, 0
        texts = [data.augment(t.lower(), rng) if rng.random() < params.p_augment else t for t in train_texts]
        questions = data.encode_questions(tok, texts + oos_train)
        targets = train_labels + [data.OUT_OF_SCOPE_TARGET] * len(oos_train)
        for items in data.epoch_batches(questions, targets, params.batch_size, rng, params.p_answer):
            for group in optimizer.param_groups:
                group["lr"] = _lr(step, total, params)
            loss = _train_step(model, optimizer, builder.batch(items), label_ids, tok.pad_id, params)
            ema.update_parameters(model)
            step += 1
            loss_sum, n_steps = loss_sum + loss.item(), n_steps + 1
            loss_avg = loss.item() if math.isnan(loss_avg) else 0.98 * loss_avg + 0.02 * loss.item()
            bar.update(1)
            bar.set_postfix(epoch=f"{epoch}/{params.epochs}", loss=f"{loss_avg:.3f}", val_acc=f"{best[0]:.4f}")
        epoch_losses.append(loss_sum / max(1, n_steps))
        conf, pred = intent_probs(ema.module, builder, val_q, label_ids).max(dim=-1)
        acc = float((pred == val_y).float().mean()) if len(val_y) else 0.0
        if acc >= best[0]:
            best = (acc, epoch, {k: v.clone() for k, v in ema.module.state_dict().items()})
        bar.set_postfix(epoch=f"{epoch}/{params.epochs}", loss=f"{loss_avg:.3f}", val_acc=f"{acc:.4f}")
    bar.close()

    model.load_state_dict(best[2])
    _polish(model, builder, tok, data.encode_questions(tok, train_texts), train_labels, label_ids, params, rng)
    model.eval()
    conf, pred = intent_probs(model, builder, val_q, label_ids).max(dim=-1)
    val_accuracy = float((pred == val_y).float().mean()) if len(val_y) else 0.0
    oos_val = data.encode_questions(tok, synthetic_out_of_scope(200, seed=params.seed + 1))
    oos_conf = intent_probs(model, builder, oos_val, label_ids).max(dim=-1).values
    threshold = tune_threshold(conf, pred == val_y, params.max_threshold_cost)
    seconds = time.perf_counter() - started
    report = TrainReport(
        out_dir=str(params.out_dir),
        train_seconds=round(seconds, 1),
        val_accuracy=val_accuracy,
        best_epoch=best[1],
        epochs=params.epochs,
        steps=step,
        final_loss=loss_avg,
        epoch_losses=epoch_losses,
        oos_threshold=threshold,
        oos_recall=float((oos_conf < threshold).float().mean()),
        n_params=model.num_params(),
        params={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(params).items()},
    )
    meta = CheckpointMeta(
        gpt=gpt,
        labels=all_labels,
        kb_version=kb.version,
        max_question_tokens=params.max_question_tokens,
        oos_threshold=threshold,
        train=asdict(report),
    )
    save_checkpoint(params.out_dir, model, tok, meta)
    if progress:
        print(
            f"custom model trained in {seconds / 60:.1f} min ({seconds:.0f} s): validation accuracy "
            f"{val_accuracy:.4f} (epoch {best[1]} + answer polish), out-of-scope threshold {threshold:.3f}, "
            f"saved to {params.out_dir}"
        )
    return report


def _polish(
    model: GPT,
    builder: data.SequenceBuilder,
    tok: BankTokenizer,
    questions: list[list[int]],
    labels_: list[int],
    label_ids: torch.Tensor,
    params: TrainParams,
    rng: random.Random,
) -> None:
    """Memorise the answers exactly: every step shows each intent's answer after one of its questions.

    Dropout is off (eval mode, gradients on) so that the model learns the deterministic continuation
    it will be asked for at inference; the intent loss stays in, at a small learning rate.
    """
    if params.polish_steps <= 0:
        return
    by_label: dict[int, list[list[int]]] = {}
    for q, label in zip(questions, labels_, strict=True):
        by_label.setdefault(label, []).append(q)
    optimizer = _optimizer(model, replace(params, lr=params.polish_lr))
    model.eval()
    for step in range(params.polish_steps):
        for group in optimizer.param_groups:
            group["lr"] = params.polish_lr * 0.5 * (1 + math.cos(math.pi * step / params.polish_steps))
        items = [(rng.choice(qs), label, True) for label, qs in sorted(by_label.items())]
        _train_step(model, optimizer, builder.batch(items), label_ids, tok.pad_id, params)


def _select(examples: list[Example], params: TrainParams) -> list[Example]:
    if params.intents is not None:
        wanted = set(params.intents)
        examples = [e for e in examples if e.intent in wanted]
    if params.per_intent is not None:
        seen: dict[str, int] = {}
        kept = []
        for e in examples:
            seen[e.intent] = seen.get(e.intent, 0) + 1
            if seen[e.intent] <= params.per_intent:
                kept.append(e)
        examples = kept
    return examples


def _optimizer(model: GPT, params: TrainParams) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": params.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=params.lr, betas=(0.9, 0.98))


def _lr(step: int, total: int, params: TrainParams) -> float:
    if step < params.warmup_steps:
        return params.lr * (step + 1) / params.warmup_steps
    progress = (step - params.warmup_steps) / max(1, total - params.warmup_steps)
    floor = params.lr * params.min_lr_ratio
    return floor + 0.5 * (params.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def _train_step(model: GPT, optimizer: torch.optim.Optimizer, batch: data.Batch, label_ids: torch.Tensor,
                pad_id: int, params: TrainParams) -> torch.Tensor:
    """One optimizer step on `batch` (bf16 autocast, gradients clipped at 1.0); returns the loss."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=params.bf16):
        loss = _loss(model, batch, label_ids, pad_id, params)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return loss


def _loss(model: GPT, batch: data.Batch, label_ids: torch.Tensor, pad_id: int, params: TrainParams) -> torch.Tensor:
    h = model.hidden(batch.idx, batch.positions, bag=batch.bag)  # (B, T, C)
    rows = torch.arange(h.size(0))
    intent_logits = h[rows, batch.sep_pos] @ model.wte.weight[label_ids].T  # (B, n_labels)
    in_scope = batch.label >= 0
    loss = torch.zeros(())
    if in_scope.any():
        loss = (
            loss
            + F.cross_entropy(intent_logits[in_scope], batch.label[in_scope], label_smoothing=params.label_smoothing)
            * in_scope.float().mean()
        )
    if (~in_scope).any():  # towards the uniform distribution over intents
        uniform = -F.log_softmax(intent_logits[~in_scope], dim=-1).mean(dim=-1)
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


@torch.no_grad()
def intent_probs(
    model: GPT,
    builder: data.SequenceBuilder,
    questions: list[list[int]],
    label_ids: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """(N, n_labels) probabilities over the intents at each question's <sep> (right-padded, causal)."""
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
        last = h[torch.arange(len(prompts)), sep_pos]
        out.append(torch.softmax(last @ model.wte.weight[label_ids].T, dim=-1))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, len(label_ids)))


def tune_threshold(confidence: torch.Tensor, correct: torch.Tensor, max_cost: float) -> float:
    """The highest confidence threshold that costs at most `max_cost` of validation accuracy."""
    if len(confidence) == 0:
        return 0.0
    order = torch.argsort(confidence)
    lost = torch.cumsum(correct[order].float(), dim=0) / len(confidence)  # accuracy lost below each value
    ok = (lost <= max_cost).nonzero()
    if len(ok) == 0:
        return 0.0
    return float(confidence[order][int(ok.max())])
