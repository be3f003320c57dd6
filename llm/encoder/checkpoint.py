"""The encoder model's checkpoint, $MODEL_DIR/encoder: everything needed to serve, without the base model.

    model.safetensors   encoder and head weights
    config.json         the encoder's transformers config
    tokenizer.json ...  the tokenizer (save_pretrained)
    encoder.json        labels, knowledge-base version, base model id and hash, calibration, training report

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

from llm.encoder.model import EncoderClassifier

WEIGHTS, CONFIG, META = "model.safetensors", "config.json", "encoder.json"
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
    train: dict[str, Any] = field(default_factory=dict)  # parameters and figures of the training run


def checkpoint_exists(path: str | Path) -> bool:
    path = Path(path)
    return all((path / name).is_file() for name in (WEIGHTS, CONFIG, META))


def save_checkpoint(path: str | Path, model: EncoderClassifier, tokenizer, meta: EncoderMeta) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
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


def load_checkpoint(path: str | Path) -> tuple[EncoderClassifier, Any, EncoderMeta]:
    """(model in eval mode, float32; tokenizer; meta). FileNotFoundError when incomplete."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = Path(path)
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"no encoder model checkpoint in {path}: {TRAIN_HINT}")
    meta = EncoderMeta(**json.loads((path / META).read_text()))
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(str(path)))
    model = EncoderClassifier(encoder, len(meta.labels))
    model.load_state_dict(load_file(str(path / WEIGHTS)))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return model.eval(), tokenizer, meta
