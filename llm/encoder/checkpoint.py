"""The encoder model's checkpoint, $MODEL_DIR/encoder: everything needed to serve, without the base model.

    model.safetensors   encoder and head weights
    config.json         the encoder's transformers config
    tokenizer.json ...  the tokenizer (save_pretrained)
    encoder.json        labels, knowledge-base version, base model id and hash, calibration, training report
    intent_ngrams.safetensors   the n-gram intent model mixed into the head's logits, when there is one

It is written to a temporary directory beside the target and renamed into place, so a reader never sees half
a checkpoint and an interrupted training leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from llm.custom.ngram_intents import NgramIntentModel
from llm.encoder.model import EncoderClassifier

WEIGHTS, CONFIG, META = "model.safetensors", "config.json", "encoder.json"
NGRAMS = "intent_ngrams.safetensors"
TRAIN_HINT = "run `bankbot train encoder` to train it (pip install -e '.[encoder]' first)"


@dataclass
class EncoderMeta:
    labels: list[str]  # head row -> Banking77 intent
    kb_version: str  # the knowledge base current at training
    base_model: str  # ENCODER_BASE_MODEL at training: a hub id or a directory
    base_model_sha256: str  # of the base model's files (llm.encoder.base_model.hash_model_files)
    max_length: int  # questions are cut to this many tokens, [CLS] and [SEP] included
    temperature: float = 1.0  # confidence = max softmax(logits / temperature)
    oos_threshold: float = 0.0  # below this confidence the reply is out_of_scope
    ngram_buckets: int = 0  # hashed features of the n-gram intent model; 0: the encoder's head alone
    ngram_mix: float = 0.0  # logits = (head + mix * n-grams) / (1 + mix), mix chosen on the validation slice
    train: dict[str, Any] = field(default_factory=dict)  # parameters and figures of the training run


def checkpoint_exists(path: str | Path) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in (WEIGHTS, CONFIG, META))


def save_checkpoint(path: str | Path, model: EncoderClassifier, tokenizer, meta: EncoderMeta,
                    ngrams: NgramIntentModel | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        if ngrams is not None:
            save_file({k: v.detach().contiguous() for k, v in ngrams.state_dict().items()}, str(tmp / NGRAMS))
        model.encoder.config.to_json_file(str(tmp / CONFIG))
        tokenizer.save_pretrained(str(tmp))
        (tmp / META).write_text(json.dumps(asdict(meta), indent=2) + "\n")
        for file in tmp.iterdir():
            file.chmod(0o644)
        tmp.chmod(0o755)
        old = path.with_name(f".{path.name}-old-{os.getpid()}")
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(path: str | Path) -> tuple[EncoderClassifier, Any, EncoderMeta, NgramIntentModel | None]:
    """(model in eval mode, float32; tokenizer; meta; n-gram model or None). FileNotFoundError when incomplete."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = Path(path)
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"no encoder model checkpoint in {path}: {TRAIN_HINT}")
    meta = EncoderMeta(**json.loads((path / META).read_text()))
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(str(path)))
    model = EncoderClassifier(encoder, len(meta.labels))
    model.load_state_dict(load_file(str(path / WEIGHTS)))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    ngrams = None
    if meta.ngram_buckets:
        if not (path / NGRAMS).is_file():
            raise FileNotFoundError(f"{path / NGRAMS} is missing: {TRAIN_HINT}")
        ngrams = NgramIntentModel(meta.ngram_buckets, len(meta.labels))
        ngrams.load_state_dict(load_file(str(path / NGRAMS)))
        ngrams.eval()
    return model.eval(), tokenizer, meta, ngrams
