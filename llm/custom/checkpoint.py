"""The custom model's checkpoint directory: safetensors weights, config, tokenizer, labels, KB version.

A checkpoint is written whole into a temporary directory beside its place, flushed to disk, and renamed into
place, so a crash never leaves a half-written model where a loader (or checkpoint_exists) looks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from llm.custom.ngram_intents import NgramIntentModel
from llm.custom.tokenizer import BankTokenizer
from llm.custom.transformer import GPT, GPTConfig

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
NGRAMS = "intent_ngrams.safetensors"  # the n-gram half of the intent head, when the model has one
TRAIN_HINT = "run `bankbot train custom` to train it"


@dataclass
class CheckpointMeta:
    gpt: GPTConfig
    labels: list[str]  # label index -> Banking77 intent
    kb_version: str  # the knowledge base whose answers the model learned
    max_question_tokens: int  # longer questions are cut to this many tokens
    oos_threshold: float  # below this intent confidence the reply is out_of_scope
    intent_ngram_buckets: int = 0  # hashed features of the n-gram intent model; 0 = the transformer alone
    train: dict[str, Any] = field(default_factory=dict)  # parameters and figures of the training run


def checkpoint_exists(path: str | Path) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in (WEIGHTS, CONFIG, TOKENIZER))


@dataclass
class Checkpoint:
    model: GPT  # in eval mode
    tokenizer: BankTokenizer
    meta: CheckpointMeta
    ngrams: NgramIntentModel | None  # None when meta.intent_ngram_buckets is 0


def save_checkpoint(
    path: str | Path,
    model: GPT,
    tokenizer: BankTokenizer,
    meta: CheckpointMeta,
    ngrams: NgramIntentModel | None = None,
) -> None:
    """Write the checkpoint to `path` atomically: into a temporary sibling directory, then renamed into place.

    A checkpoint already at `path` is replaced whole (for an instant between two renames there is none).
    On any error the temporary directory is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared volume
        _write(staging, model, tokenizer, meta, ngrams)
        _sync(staging)
        _move_into_place(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write(
    path: Path, model: GPT, tokenizer: BankTokenizer, meta: CheckpointMeta, ngrams: NgramIntentModel | None
) -> None:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(path / WEIGHTS))
    if ngrams is not None:
        save_file({k: v.detach().contiguous() for k, v in ngrams.state_dict().items()}, str(path / NGRAMS))
    tokenizer.save(path / TOKENIZER)
    config = {**meta.__dict__, "gpt": meta.gpt.to_dict()}
    (path / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def _sync(directory: Path) -> None:
    """fsync every file of `directory` and the directory itself: the rename must not outrun the data."""
    for file in directory.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    _sync_dir(directory)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_into_place(staging: Path, path: Path) -> None:
    """Rename `staging` to `path`; an existing checkpoint there is first renamed aside, and removed after."""
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.replace(path, old)  # onto the empty directory just made: a fresh name nobody else uses
    try:
        os.rename(staging, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)  # put the previous checkpoint back
        raise
    _sync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """The model (in eval mode), its tokenizer, metadata and n-gram intent model. FileNotFoundError when incomplete."""
    path = Path(path)
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"no custom model checkpoint in {path}: {TRAIN_HINT}")
    raw = json.loads((path / CONFIG).read_text())
    meta = CheckpointMeta(**{**raw, "gpt": GPTConfig(**raw["gpt"])})
    model = GPT(meta.gpt)
    state = load_file(str(path / WEIGHTS))
    state["lm_head.weight"] = state["wte.weight"]
    model.load_state_dict(state)
    model.eval()
    tokenizer = BankTokenizer.load(path / TOKENIZER, meta.labels)
    ngrams = None
    if meta.intent_ngram_buckets:
        if not (path / NGRAMS).is_file():
            raise FileNotFoundError(f"{path / NGRAMS} is missing: {TRAIN_HINT}")
        ngrams = NgramIntentModel(meta.intent_ngram_buckets, len(meta.labels))
        ngrams.load_state_dict(load_file(str(path / NGRAMS)))
        ngrams.eval()
    return Checkpoint(model, tokenizer, meta, ngrams)
