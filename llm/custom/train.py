"""Train the custom GPT on Banking77's train split (never test.csv): `bankbot train custom`.

A stratified validation slice of train.csv is held out for model selection and for tuning the
out-of-scope threshold. Deterministic under a seed; the default configuration fits in 10 minutes on 2 cores.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from llm.banking77 import Example, labels, load_split
from llm.config import LLMSettings
from llm.custom import data
from llm.custom.answer_check import exact_answers
from llm.custom.checkpoint import CheckpointMeta, checkpoint_exists, save_checkpoint
from llm.custom.intent_scoring import choose_mix, intent_logits, mixed_logits, tune_threshold
from llm.custom.main_loop import VALIDATION_STEPS, MainLoop
from llm.custom.ngram_intents import NgramIntentModel
from llm.custom.out_of_scope import synthetic_out_of_scope
from llm.custom.predictor import Predictor
from llm.custom.progress import OnProgress, TrainingProgress
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.train_steps import polish_answers
from llm.custom.transformer import GPT, GPTConfig
from llm.knowledge_base import load_knowledge_base

__all__ = ["TrainParams", "TrainReport", "checkpoint_exists", "train_custom"]

# Typical wall time of each phase's unit on the default configuration (2 quiet cores, fp32): the progress weights.
# A run on a busy machine measured n-gram fit 46 s, main loop 622 s (1,057 units), answer polish 113 s (160
# steps), the rest about 1 s (783 s in all); the per-unit costs below keep those ratios, scaled to a quiet
# run's ~210 s.
NGRAM_STEP_S = 0.083  # one full-batch step of the n-gram fit
TOKENIZER_S = 0.3  # the BPE tokenizer
MAIN_STEP_S = 0.159  # one main-loop step (a validation pass counts as VALIDATION_STEPS steps)
POLISH_STEP_S = 0.19  # one answer-polish step (one question per intent, each with its answer)
EVALUATE_S = 1.0  # intent logits of validation and non-banking prompts, the n-gram mix, the threshold
CHECK_QUESTION_S = 0.01  # one question of the exact-answer check (intent + generated answer)
SAVE_S = 0.5


@dataclass
class TrainParams:
    out_dir: Path = Path("models/custom")  # where the checkpoint is written
    seed: int = 1337
    val_fraction: float = 0.1  # of each intent's train examples, held out for model selection
    vocab_size: int = 3000  # BPE vocabulary, specials and label tokens included
    max_question_tokens: int = 64
    gpt: GPTConfig = field(  # vocab_size and n_intents are set from the data; hashed question n-grams on.
        # Two layers of 192: on a 2-core AVX2 CPU without bf16 units this trains in the 10-minute budget
        default_factory=lambda: GPTConfig(n_layer=2, n_embd=192, ngram_buckets=32768, token_ngrams=True)
    )
    epochs: int = 7
    batch_size: int = 64
    lr: float = 2e-3  # peak learning rate; linear warmup, then cosine decay to lr * min_lr_ratio
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.1
    label_smoothing: float = 0.1
    question_lm_weight: float = 0.0  # next-token loss on the question's own tokens (an auxiliary task; costly)
    answer_weight: float = 2.0  # next-token loss on the knowledge-base answer
    p_answer: float = 0.1  # share of sequences per epoch that carry the answer after the label
    p_augment: float = 0.5  # share of questions per epoch that get word dropout / swaps / typos
    n_out_of_scope: int = 400  # synthetic non-banking prompts trained towards a uniform intent distribution
    max_threshold_cost: float = 0.002  # the OOS threshold may cost at most this much validation accuracy
    oos_recall: float = 0.99  # and is no higher than needed to reject this share of held-out non-banking prompts
    intents: tuple[str, ...] | None = None  # train on these intents only (tests); None = all 77
    per_intent: int | None = None  # at most this many train examples per intent (tests)
    threads: int = 2
    polish_steps: int = 160  # then steps on answer-carrying sequences only, dropout off: exact answers
    polish_lr: float = 2e-3  # peak of the polish phase's cosine schedule
    polish_questions: int = 24  # questions per intent that the answers follow in the polish
    polish_anchor: float = 1.0  # weight of the KL term that holds the intents where they were before the polish
    ema_decay: float = 0.998  # validation and the checkpoint use an exponential moving average of the weights
    bf16: bool | None = None  # bfloat16 autocast for training steps; None: where the CPU has bf16 units
    isolate_answers: bool = True  # the label and answer attend to each other only: one answer per intent
    intent_embeddings: bool = True  # the label and answer tokens get the intent's embedding (fast, exact answers)
    intent_ngram_buckets: int = 1 << 17  # the n-gram intent model's hashed features; 0 = the transformer alone
    ngram_steps: int = 150  # full-batch Adam steps fitting the n-gram intent model
    ngram_l2: float = 1e-6  # its L2 penalty (on the summed squared weights)


@dataclass
class TrainReport:
    out_dir: str
    train_seconds: float
    val_accuracy: float  # the saved model (best epoch + polish, n-grams mixed in), before the out-of-scope threshold
    transformer_val_accuracy: float  # the transformer's own intent logits alone
    ngram_mix: float  # weight of the n-gram model's logits next to the transformer's, chosen on validation
    best_epoch: int
    epochs: int
    steps: int
    final_loss: float
    epoch_losses: list[float]  # mean training loss of each epoch
    oos_threshold: float
    oos_recall: float  # share of held-out synthetic non-banking prompts below the threshold
    exact_answers: float  # share of validation questions (one per intent) whose served answer is the KB entry
    n_params: int
    params: dict[str, Any]


def train_custom(
    config: LLMSettings | TrainParams, progress: bool = True, on_progress: OnProgress | None = None
) -> TrainReport:
    """Train and save to `settings.custom_checkpoint_dir` (defaults) or to `params.out_dir`.

    progress: one bar over every phase, with its ETA, and a summary at the end. on_progress(fraction, phase) is
    called, from this thread, as training advances: fraction 0..1 of the whole training (phases weighted by
    their typical duration), at most about a thousand times.
    """
    params = config if isinstance(config, TrainParams) else TrainParams(out_dir=config.custom_checkpoint_dir)
    if params.bf16 is None:  # bfloat16 pays only where the CPU has bf16 units; elsewhere it is emulated, slowly
        params = replace(params, bf16=bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    started = time.perf_counter()
    torch.set_num_threads(params.threads)
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    all_labels = list(labels())
    kb = load_knowledge_base()
    answers = [kb.answer(label) for label in all_labels]

    selected = data.select(load_split("train"), params.intents, params.per_intent)
    train_ex, val_ex = data.stratified_split(selected, params.val_fraction, params.seed)
    label_index = {label: i for i, label in enumerate(all_labels)}
    train_labels = [label_index[e.intent] for e in train_ex]
    val_y = torch.tensor([label_index[e.intent] for e in val_ex], dtype=torch.long)
    oos_train = synthetic_out_of_scope(params.n_out_of_scope, seed=params.seed)
    one_per_intent = list({e.intent: e.text for e in val_ex or train_ex}.values())
    main_steps = MainLoop.total_steps(len(train_ex) + len(oos_train), params)
    bar = TrainingProgress(_phase_weights(params, main_steps, len(one_per_intent)), progress, on_progress)
    ngrams = NgramIntentModel(params.intent_ngram_buckets, len(all_labels)) if params.intent_ngram_buckets else None
    with bar.phase("n-gram fit", params.ngram_steps if ngrams is not None else 0) as tick:
        if ngrams is not None:  # the wide half of the intent head: convex, fitted in seconds
            texts = [normalize_question(t) for t in [e.text for e in train_ex] + oos_train]
            targets = torch.tensor(train_labels + [data.OUT_OF_SCOPE_TARGET] * len(oos_train))
            ngrams.fit(texts, targets, params.ngram_steps, l2=params.ngram_l2, on_step=tick)

    with bar.phase("tokenizer"):
        tok = BankTokenizer.train(
            [normalize_question(e.text) for e in train_ex] + answers * 3, all_labels, params.vocab_size
        )
    gpt = replace(params.gpt, vocab_size=tok.vocab_size, n_intents=len(all_labels) if params.intent_embeddings else 0,
                  answer_sees_question=not params.isolate_answers)
    model = GPT(gpt)
    builder = data.SequenceBuilder(tok, answers, params.max_question_tokens, gpt.ngram_buckets, gpt.token_ngrams,
                                   isolate_answers=not gpt.answer_sees_question)
    longest = builder.label_position + 1 + max(len(a) for a in builder.answer_ids)
    if longest > gpt.block_size:
        raise ValueError(
            f"block_size {gpt.block_size} is shorter than the longest training sequence ({longest} "
            "tokens): raise it, or lower max_question_tokens"
        )
    label_ids = torch.tensor(tok.label_ids)
    val_q = data.encode_questions(tok, [e.text for e in val_ex])
    loop = MainLoop(model, builder, params, rng, label_ids, val_q, val_y)
    with bar.phase("main loop", main_steps + params.epochs * VALIDATION_STEPS) as tick:
        loop.run([e.text for e in train_ex], train_labels, oos_train, tick)

    model.load_state_dict(loop.best_state)
    with bar.phase("answer polish", params.polish_steps) as tick:
        polish_answers(model, builder, data.encode_questions(tok, [e.text for e in train_ex]), train_labels,
                       label_ids, params, rng, on_step=tick)
    model.eval()
    with bar.phase("intent mix + threshold"):
        ev = _evaluate(model, builder, tok, ngrams, val_ex, val_q, val_y, label_ids, params)
    meta = CheckpointMeta(
        gpt=gpt,
        labels=all_labels,
        kb_version=kb.version,
        max_question_tokens=params.max_question_tokens,
        oos_threshold=ev.threshold,
        intent_ngram_buckets=params.intent_ngram_buckets,
    )
    with bar.phase("exact-answer check", len(one_per_intent)) as tick:
        exact = exact_answers(Predictor(model, tok, meta, ngrams), one_per_intent, kb, on_batch=tick)
    seconds = time.perf_counter() - started
    report = TrainReport(
        out_dir=str(params.out_dir),
        train_seconds=round(seconds, 1),
        val_accuracy=ev.val_accuracy,
        transformer_val_accuracy=ev.transformer_val_accuracy,
        ngram_mix=ev.mix,
        best_epoch=loop.best_epoch,
        epochs=params.epochs,
        steps=loop.step,
        final_loss=loop.loss_avg,
        epoch_losses=loop.epoch_losses,
        oos_threshold=ev.threshold,
        oos_recall=ev.oos_recall,
        exact_answers=exact,
        n_params=model.num_params() + (ngrams.weight.weight.numel() if ngrams is not None else 0),
        params={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(params).items()},
    )
    meta.train = asdict(report)
    with bar.phase("save"):
        save_checkpoint(params.out_dir, model, tok, meta, ngrams)
        from llm.custom.calibration import fit_checkpoint  # temperature + threshold on the validation slice
        fit_checkpoint(params.out_dir)
    bar.close()
    if progress:
        print(
            f"custom model trained in {seconds / 60:.1f} min ({seconds:.0f} s): validation accuracy "
            f"{ev.val_accuracy:.4f} (transformer alone {ev.transformer_val_accuracy:.4f}, epoch {loop.best_epoch} "
            f"+ answer polish; n-gram mix {ev.mix}), exact answers {exact:.1%} of intents, out-of-scope threshold "
            f"{ev.threshold:.3f}, saved to {params.out_dir}\nphases: {bar.summary()}"
        )
    return report


@dataclass
class _Evaluation:
    mix: float  # the n-gram model's weight, chosen on validation
    val_accuracy: float  # mixed intent head
    transformer_val_accuracy: float
    threshold: float  # out-of-scope confidence threshold
    oos_recall: float  # share of held-out non-banking prompts below it


def _evaluate(model: GPT, builder: data.SequenceBuilder, tok: BankTokenizer, ngrams: NgramIntentModel | None,
              val_ex: list[Example], val_q: list[list[int]], val_y: torch.Tensor, label_ids: torch.Tensor,
              params: TrainParams) -> _Evaluation:
    """Choose the n-gram mix on validation, then the out-of-scope threshold (validation + non-banking prompts)."""
    oos_texts = synthetic_out_of_scope(200, seed=params.seed + 1)
    deep, oos_deep = intent_logits(model, builder, val_q, label_ids), intent_logits(
        model, builder, data.encode_questions(tok, oos_texts), label_ids
    )
    wide, oos_wide = torch.zeros_like(deep), torch.zeros_like(oos_deep)
    if ngrams is not None:
        wide = ngrams.logits([normalize_question(e.text) for e in val_ex])
        oos_wide = ngrams.logits([normalize_question(t) for t in oos_texts])
        ngrams.mix.fill_(choose_mix(deep, wide, val_y))
    mix = float(ngrams.mix) if ngrams is not None else 0.0
    conf, pred = torch.softmax(mixed_logits(deep, wide, mix), dim=-1).max(dim=-1)
    oos_conf = torch.softmax(mixed_logits(oos_deep, oos_wide, mix), dim=-1).max(dim=-1).values
    threshold = tune_threshold(conf, pred == val_y, params.max_threshold_cost, oos_conf, params.oos_recall)
    return _Evaluation(
        mix=mix,
        val_accuracy=float((pred == val_y).float().mean()) if len(val_y) else 0.0,
        transformer_val_accuracy=float((deep.argmax(dim=-1) == val_y).float().mean()) if len(val_y) else 0.0,
        threshold=threshold,
        oos_recall=float((oos_conf < threshold).float().mean()),
    )


def _phase_weights(params: TrainParams, main_steps: int, check_questions: int) -> dict[str, float]:
    """Each phase's expected seconds on the default configuration's hardware: the progress bar's weights."""
    return {
        "n-gram fit": params.ngram_steps * NGRAM_STEP_S if params.intent_ngram_buckets else 0.0,
        "tokenizer": TOKENIZER_S,
        "main loop": (main_steps + params.epochs * VALIDATION_STEPS) * MAIN_STEP_S,
        "answer polish": max(0, params.polish_steps) * POLISH_STEP_S,
        "intent mix + threshold": EVALUATE_S,
        "exact-answer check": check_questions * CHECK_QUESTION_S,
        "save": SAVE_S,
    }
