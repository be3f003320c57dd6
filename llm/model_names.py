"""Model version strings -> adapter names: `custom_model_built_0.0.0` -> `custom`."""

from __future__ import annotations

from llm.errors import UnknownModelError

DEFAULT_VERSIONS = {
    "custom": "custom_model_built_0.0.0",
    "qlora": "qlora_vllm_finetuned_model_v1.0.0",
    "gemini": "gemini_2.0_flash_v1.0.0",
}


def resolve_model_name(value: str, names: tuple[str, ...] | list[str] = tuple(DEFAULT_VERSIONS)) -> str:
    """A bare name (`qlora`) or a version string starting with `<name>_` -> the adapter name."""
    candidate = value.strip().lower()
    for name in names:
        if candidate == name or candidate.startswith(name + "_"):
            return name
    examples = ", ".join(DEFAULT_VERSIONS.get(n, n) for n in names)
    raise UnknownModelError(
        f"unknown model {value!r}: use one of {', '.join(names)} or a version string such as {examples}"
    )
