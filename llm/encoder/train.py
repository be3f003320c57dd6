"""Train the encoder model on Banking77's train split (never test.csv): `bankbot train encoder`.

Phases, each with a progress bar: embed the train split with the frozen base encoder, fit the head on those
embeddings (linear probe), fine-tune encoder and head together for a few epochs (the best validation epoch is
kept), fit the n-gram intent model (seconds), then tune on the validation slice: the n-gram weight, the
temperature, and the out-of-scope threshold from held-out synthetic non-banking prompts. A stratified slice of
train.csv is held out for all of that. Deterministic under a seed (for a given CPU and thread count).
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from llm.banking77 import labels, load_split
from llm.config import LLMSettings
from llm.custom.data import augment, select, stratified_split
from llm.custom.ngram_intents import NgramIntentModel
from llm.custom.out_of_scope import synthetic_out_of_scope
from llm.custom.tokenizer import normalize_question
from llm.encoder.base_model import DEFAULT_BASE_MODEL, hash_model_files, resolve_base_model
from llm.encoder.batches import tokenize
from llm.encoder.checkpoint import EncoderMeta, save_checkpoint
from llm.encoder.finetune import OUT_OF_SCOPE_TARGET, embed_all, fine_tune, fit_probe, soft_targets
from llm.encoder.model import EncoderClassifier
from llm.encoder.predictor import EncoderPredictor, bf16_supported
from llm.encoder.tuning import tune
from llm.knowledge_base import load_knowledge_base


@dataclass
class EncoderTrainParams:
    out_dir: Path = Path("models/encoder")
    base_model: str = DEFAULT_BASE_MODEL  # hub id or local directory
    seed: int = 1337
    val_fraction: float = 0.1  # of each intent's train examples, held out for selection and calibration
    max_length: int = 64  # tokens per question, [CLS] and [SEP] included
    epochs: int = 5
    batch_size: int = 32
    lr: float = 5e-5  # encoder's peak learning rate
    head_lr: float = 2e-3  # the head's (it starts from the probe)
    weight_decay: float = 0.01
    freeze_word_embeddings: bool = True  # the vocabulary's embeddings stay as pretrained
    warmup: float = 0.06  # share of the steps with a linear warmup; linear decay to 0 after
    label_smoothing: float = 0.1
    p_augment: float = 0.3  # share of questions per epoch with word dropout / swaps / typos (chat-style noise)
    n_out_of_scope: int = 400  # synthetic non-banking prompts trained towards a uniform distribution
    probe_steps: int = 300  # full-batch steps of the linear probe
    probe_lr: float = 0.05
    ngram_buckets: int = 1 << 17  # the n-gram intent model's hashed features; 0: the encoder's head alone
    ngram_steps: int = 150  # its full-batch Adam steps
    ngram_l2: float = 1e-6
    max_threshold_cost: float = 0.002  # the out-of-scope threshold may cost at most this much validation accuracy
    oos_recall: float = 0.99  # and is no higher than needed to reject this share of held-out non-banking prompts
    intents: tuple[str, ...] | None = None  # train on these intents only (tests); None = all 77
    per_intent: int | None = None  # at most this many train examples per intent (tests)
    threads: int = 1  # on a shared 2-core host one thread is 1.4x slower than two when it is quiet, but two
    # collapse (10x and more) as soon as another process wants a core
    bf16: bool | None = None  # bfloat16 autocast in training and bf16 weights in serving; None: where the CPU has
    # bf16 units (elsewhere bf16 is emulated, slowly)


@dataclass
class EncoderTrainReport:
    out_dir: str
    train_seconds: float
    phase_seconds: dict[str, float]
    probe_losses: tuple[float, float]  # training loss of the head on frozen embeddings: at init, after the probe
    probe_val_accuracy: float  # the head on the frozen encoder, before fine-tuning
    head_val_accuracy: float  # the fine-tuned encoder's head alone
    val_accuracy: float  # the saved model, as served: n-grams mixed in, before the out-of-scope threshold
    ngram_mix: float  # weight of the n-gram model's logits, chosen on validation
    val_accuracies: list[float]  # after each epoch
    epoch_losses: list[float]
    best_epoch: int
    temperature: float
    oos_threshold: float
    oos_recall: float  # share of held-out synthetic non-banking prompts below the threshold
    n_params: int
    base_model_sha256: str
    bf16: bool
    params: dict[str, Any]


def train_encoder(config: LLMSettings | EncoderTrainParams, progress: bool = True) -> EncoderTrainReport:
    """Train and save to `settings.encoder_checkpoint_dir` (with ENCODER_BASE_MODEL) or to `params.out_dir`."""
    from transformers import AutoModel, AutoTokenizer

    if isinstance(config, EncoderTrainParams):
        params = config
    else:
        params = EncoderTrainParams(out_dir=config.encoder_checkpoint_dir, base_model=config.encoder_base_model)
    bf16 = bf16_supported() if params.bf16 is None else params.bf16
    started = time.perf_counter()
    phases: dict[str, float] = {}
    torch.set_num_threads(params.threads)
    torch.manual_seed(params.seed)
    rng = random.Random(params.seed)
    base_dir = resolve_base_model(params.base_model)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    all_labels = list(labels()) if params.intents is None else sorted(params.intents)
    model = EncoderClassifier(AutoModel.from_pretrained(str(base_dir)), len(all_labels))
    kb = load_knowledge_base()

    selected = select(load_split("train"), params.intents, params.per_intent)
    train_ex, val_ex = stratified_split(selected, params.val_fraction, params.seed)
    label_index = {label: i for i, label in enumerate(all_labels)}
    oos = synthetic_out_of_scope(params.n_out_of_scope, seed=params.seed)
    texts = [e.text for e in train_ex] + oos
    y = torch.tensor([label_index[e.intent] for e in train_ex] + [OUT_OF_SCOPE_TARGET] * len(oos))
    targets = soft_targets(y, len(all_labels), params.label_smoothing)
    val_y = torch.tensor([label_index[e.intent] for e in val_ex], dtype=torch.long)
    val_rows = tokenize(tokenizer, [e.text for e in val_ex], params.max_length)
    pad_id = tokenizer.pad_token_id
    phases["load"] = time.perf_counter() - started

    mark = time.perf_counter()
    rows = tokenize(tokenizer, texts, params.max_length)
    frozen = embed_all(model, rows, pad_id, bf16, desc="embed (frozen encoder)", progress=progress)
    probe_losses = fit_probe(model, frozen, targets, params.probe_steps, params.probe_lr, params.weight_decay, progress)

    @torch.no_grad()
    def validate() -> float:
        if not len(val_y):
            return 0.0
        logits = model.logits(embed_all(model, val_rows, pad_id, bf16))
        return float((logits.argmax(dim=-1) == val_y).float().mean())

    probe_accuracy = validate()
    phases["probe"] = time.perf_counter() - mark

    def epoch_rows(epoch: int) -> list[list[int]]:
        noisy = [augment(t, rng) if rng.random() < params.p_augment else t for t in texts[: len(train_ex)]]
        return tokenize(tokenizer, noisy, params.max_length) + rows[len(train_ex):]

    if params.freeze_word_embeddings:  # half the parameters: their dense gradient and AdamW update cost more per
        # step than they buy on 9,000 short questions
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    mark = time.perf_counter()
    state = fine_tune(model, epoch_rows, targets, validate, epochs=params.epochs, batch_size=params.batch_size,
                      lr=params.lr, head_lr=params.head_lr, weight_decay=params.weight_decay, warmup=params.warmup,
                      pad_id=pad_id, bf16=bf16, rng=rng, progress=progress)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    phases["fine_tune"] = time.perf_counter() - mark

    mark = time.perf_counter()
    ngrams = None
    if params.ngram_buckets:  # after fine-tuning, so that it changes nothing of the encoder's training
        ngrams = NgramIntentModel(params.ngram_buckets, len(all_labels))
        with tqdm(total=params.ngram_steps, desc="n-gram model", unit="step", disable=not progress) as bar:
            ngrams.fit([normalize_question(t) for t in texts], y, params.ngram_steps, l2=params.ngram_l2,
                       on_step=lambda: bar.update(1))
    phases["ngrams"] = time.perf_counter() - mark

    mark = time.perf_counter()
    meta = EncoderMeta(labels=all_labels, kb_version=kb.version, base_model=str(params.base_model),
                       base_model_sha256=hash_model_files(base_dir), max_length=params.max_length,
                       ngram_buckets=params.ngram_buckets)
    predictor = EncoderPredictor(copy.deepcopy(model), tokenizer, meta, bf16=bf16, ngrams=ngrams)  # as it will serve
    tuning = tune(predictor, [e.text for e in val_ex], val_y, synthetic_out_of_scope(200, seed=params.seed + 2),
                  synthetic_out_of_scope(200, seed=params.seed + 1), params.max_threshold_cost, params.oos_recall)
    phases["calibrate"] = time.perf_counter() - mark
    seconds = time.perf_counter() - started
    report = EncoderTrainReport(
        out_dir=str(params.out_dir),
        train_seconds=round(seconds, 1),
        phase_seconds={k: round(v, 1) for k, v in phases.items()},
        probe_losses=probe_losses,
        probe_val_accuracy=probe_accuracy,
        head_val_accuracy=tuning.head_val_accuracy,
        val_accuracy=tuning.val_accuracy,
        ngram_mix=tuning.ngram_mix,
        val_accuracies=state.val_accuracies,
        epoch_losses=state.epoch_losses,
        best_epoch=state.best_epoch,
        temperature=meta.temperature,
        oos_threshold=meta.oos_threshold,
        oos_recall=tuning.oos_recall,
        n_params=model.num_params(),
        base_model_sha256=meta.base_model_sha256,
        bf16=bf16,
        params={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(params).items()},
    )
    meta.train = asdict(report)
    save_checkpoint(params.out_dir, model, tokenizer, meta, ngrams)
    if progress:
        print(f"encoder model trained in {seconds / 60:.1f} min ({seconds:.0f} s): validation accuracy "
              f"{report.val_accuracy:.4f} (head alone {tuning.head_val_accuracy:.4f} at epoch {state.best_epoch}, "
              f"linear probe {probe_accuracy:.4f}; n-gram mix {tuning.ngram_mix}), "
              f"temperature {meta.temperature:.3f}, out-of-scope threshold {meta.oos_threshold:.3f}, "
              f"saved to {params.out_dir}")
    return report
