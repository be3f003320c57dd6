import asyncio

import pytest

from llm.config import LLMSettings
from llm.errors import UnknownModelError
from llm.factory import ModelFactory
from llm.model_names import resolve_model_name
from tests.scripted import ScriptedAdapter


@pytest.mark.parametrize(("value", "name"), [
    ("custom_model_built_0.0.0", "custom"),
    ("qlora_vllm_finetuned_model_v1.0.0", "qlora"),
    ("gemini_2.0_flash_v1.0.0", "gemini"),
    ("gemini_2.5_flash_v1.1.0", "gemini"),
    ("gemini_2.5_flash_lite_v1.0.0", "gemini"),
    ("custom_model_built_1.2.3", "custom"),
    ("qlora_vllm_finetuned_model_v2.0.0", "qlora"),
    ("custom", "custom"),
    ("QLoRA", "qlora"),
    (" gemini ", "gemini"),
])
def test_version_strings_resolve_to_adapters(value, name):
    assert resolve_model_name(value) == name


@pytest.mark.parametrize("value", ["gpt4", "customer_model", "", "llama", "custom_bogus", "gemini_flash",
                                   "qlora_v1", "custom_model_built_1.0"])
def test_unknown_model_lists_valid_names(value):
    with pytest.raises(UnknownModelError) as info:
        resolve_model_name(value)
    message = str(info.value)
    for valid in ("custom", "qlora", "gemini", "custom_model_built_0.0.0"):
        assert valid in message


def test_bad_model_version_setting_names_variable_and_choices(monkeypatch):
    monkeypatch.setenv("LLM_MODEL_VERSION", "gpt-5")
    with pytest.raises(ValueError) as info:
        LLMSettings()
    assert "LLM_MODEL_VERSION" in str(info.value)
    assert "custom, qlora, gemini" in str(info.value)


def test_bad_fallback_order_names_variable(monkeypatch):
    monkeypatch.setenv("FALLBACK_ORDER", "custom,gpt")
    with pytest.raises(ValueError, match="FALLBACK_ORDER"):
        LLMSettings()


async def test_concurrent_first_calls_share_one_instance_and_one_load():
    built = []

    def build(settings, version):
        adapter = ScriptedAdapter("custom")
        adapter.version = version or "custom_model_built_0.0.0"  # a bare name builds the default version
        built.append(adapter)
        return adapter

    factory = ModelFactory(LLMSettings(), {"custom": build})
    first, second, third = await asyncio.gather(
        factory.get("custom"), factory.get("custom_model_built_0.0.0"), factory.get("custom"))
    assert first is second is third
    assert len(built) == 1
    assert first.loads == 1


async def test_failed_load_is_not_cached_and_is_retried():
    attempts = []

    def build(settings, version):
        adapter = ScriptedAdapter("custom", load_error=RuntimeError("no checkpoint") if not attempts else None)
        attempts.append(adapter)
        return adapter

    factory = ModelFactory(LLMSettings(), {"custom": build})
    with pytest.raises(RuntimeError, match="no checkpoint"):
        await factory.get("custom")
    assert factory.loaded() == {}
    adapter = await factory.get("custom")
    assert adapter is attempts[1]
    assert factory.loaded() == {"custom": adapter}


async def test_factory_rejects_unknown_names():
    factory = ModelFactory(LLMSettings())
    with pytest.raises(UnknownModelError, match="custom, qlora, gemini"):
        await factory.get("mistral")
