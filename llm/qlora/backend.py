"""What every QLoRA backend (in-process vLLM, vLLM server, transformers) returns, and lazy imports of heavy packages."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from llm.errors import ModelUnavailableError

SERVED_LORA_NAME = "banking"  # the adapter's name on the vLLM server: --lora-modules banking=DIR


@dataclass(frozen=True)
class RawGeneration:
    text: str  # the generated label line (the stop string excluded)
    token_logprobs: list[float]  # log-probability of each generated token
    prompt_tokens: int
    completion_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)
    label_tokens: int | None = None  # a label-and-answer generation: how many of the tokens are the label's


class QLoRABackend(Protocol):
    name: str  # "vllm", "vllm-server" or "transformers"

    async def load(self) -> None: ...

    async def generate(self, question: str) -> RawGeneration: ...

    # A backend that streams also has `stream(question) -> AsyncIterator[str | RawGeneration]`: the label, a
    # newline and the answer as they are generated, then the whole RawGeneration (label_tokens set).

    async def aclose(self) -> None: ...


INSTALL_HINTS = {
    "vllm": "vllm is not installed: pip install bankbot[vllm] on a CUDA machine",
    "bitsandbytes": "bitsandbytes is not installed: pip install bankbot[qlora] on a CUDA machine",
    "transformers": "transformers is not installed: pip install bankbot[cpu-qlora]",
    "peft": "peft is not installed: pip install bankbot[cpu-qlora]",
    "openai": "openai is not installed: pip install openai",
}


def label_token_count(texts: list[str]) -> int:
    """How many of the generated tokens (their texts, in order) come before the one holding the first newline."""
    seen = ""
    for n, text in enumerate(texts):
        if "\n" in text:
            return n
        seen += text
    return len(texts)


def require(module: str) -> ModuleType:
    """Import a heavy optional package, or raise ModelUnavailableError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        hint = INSTALL_HINTS.get(top, f"{top} is not installed")
        raise ModelUnavailableError(f"{hint} ({exc})") from exc


def check_adapter_dir(path: Path) -> Path:
    """A directory holding a saved peft adapter, or a ModelUnavailableError that says what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise ModelUnavailableError(
            f"QLoRA adapter directory {path} does not exist: train one with "
            f"`bankbot train qlora --out {path}` or set QLORA_ADAPTER_DIR"
        )
    if not (path / "adapter_config.json").is_file():
        raise ModelUnavailableError(
            f"{path} is not a LoRA adapter: adapter_config.json is missing (set QLORA_ADAPTER_DIR to the "
            "directory `bankbot train qlora --out` wrote)"
        )
    if not any((path / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise ModelUnavailableError(f"{path} holds adapter_config.json but no adapter_model.safetensors")
    return path
