"""Model version strings -> adapter names: `custom_model_built_0.0.0` -> `custom`."""

from __future__ import annotations

import re

from llm.errors import UnknownModelError

DEFAULT_VERSIONS = {
    "custom": "custom_model_built_0.0.0",
    "qlora": "qlora_vllm_finetuned_model_v1.0.0",
    "gemini": "gemini_2.0_flash_v1.0.0",
    "encoder": "encoder_minilm_v1.0.0",
}
# The version strings each built-in adapter accepts; other (test) adapters accept `<name>_<anything>`.
VERSION_PATTERNS = {
    "custom": re.compile(r"custom_model_built_\d+\.\d+\.\d+"),
    "qlora": re.compile(r"qlora(?:_[a-z0-9]+)+_v\d+\.\d+\.\d+"),
    "gemini": re.compile(r"gemini_\d+(?:\.\d+)?(?:_[a-z]+)+_v\d+\.\d+\.\d+"),
    "encoder": re.compile(r"encoder(?:_[a-z0-9]+)+_v\d+\.\d+\.\d+"),
}


def resolve_model_name(value: str, names: tuple[str, ...] | list[str] = tuple(DEFAULT_VERSIONS)) -> str:
    """A bare name (`qlora`) or a version string of that model (`qlora_vllm_finetuned_model_v1.0.0`) -> its name."""
    candidate = value.strip().lower()
    for name in names:
        pattern = VERSION_PATTERNS.get(name)
        if candidate == name or (pattern.fullmatch(candidate) if pattern else candidate.startswith(name + "_")):
            return name
    examples = ", ".join(DEFAULT_VERSIONS.get(n, n) for n in names)
    raise UnknownModelError(
        f"unknown model {value!r}: use one of {', '.join(names)} or a version string such as {examples}"
    )
