"""The qlora model never sends personal data to a backend, and the vLLM server's API key: over real HTTP against
the vLLM-like server of tests/fake_openai.py, and through the transformers backend on CPU. A tiny Llama with a
random LoRA adapter stands in for Llama 3.1-8B (nothing is trained or downloaded)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

from llm.adapters.qlora import QLoRAAdapter  # noqa: E402
from llm.config import LLMSettings  # noqa: E402
from llm.errors import ModelUnavailableError  # noqa: E402
from llm.factory import ModelFactory  # noqa: E402
from llm.knowledge_base import load_knowledge_base  # noqa: E402
from llm.pipeline import BankingLLMPipeline, PipelineOptions  # noqa: E402
from llm.qlora.prompting import render_prompt  # noqa: E402
from tests.fake_openai import FakeVLLMServer  # noqa: E402
from tests.scripted import ScriptedAdapter, builders  # noqa: E402

KEY = "test-vllm-key-7f3a"
CARD, IBAN, EMAIL, PHONE = "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "jane.doe@example.com", "07700 900123"
QUESTION = f"My card {CARD} was charged twice, refund to {IBAN}, email {EMAIL} or call {PHONE}"
REDACTED = "My card [CARD] was charged twice, refund to [IBAN], email [EMAIL] or call [PHONE]"
PERSONAL = [CARD, CARD.replace(" ", ""), "4111", IBAN, IBAN.replace(" ", ""), "5698", EMAIL, "jane", "example.com",
            PHONE, PHONE.replace(" ", ""), "900123"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(base dir, adapter dir): a tiny Llama and a random LoRA adapter, built once for the module."""
    from llm.qlora.tiny_model import build_random_adapter, build_tiny_llama

    root = tmp_path_factory.mktemp("qlora-privacy")
    kb = load_knowledge_base()
    base = build_tiny_llama(root / "tiny-llama", [QUESTION, REDACTED, *kb.intents, *map(kb.answer, kb.intents)])
    return base, build_random_adapter(base, root / "adapter")


@pytest.fixture
async def server(tiny):
    import peft
    import transformers

    base, adapter_dir = tiny
    tokenizer = transformers.AutoTokenizer.from_pretrained(adapter_dir)
    model = peft.PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(base), adapter_dir)
    fake = FakeVLLMServer(model.eval(), tokenizer, base_name=str(base), api_key=KEY)
    await fake.start()
    yield fake
    await fake.stop()


def remote(server: FakeVLLMServer, api_key: str | None = KEY) -> QLoRAAdapter:
    return QLoRAAdapter(LLMSettings(qlora_backend="vllm-server", vllm_server_url=server.url, vllm_api_key=api_key))


def assert_nothing_personal(raw: bytes) -> None:
    leaked = [item for item in PERSONAL if item.encode() in raw]
    assert not leaked, f"sent to the model server: {leaked}"


@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_the_vllm_server_gets_the_redacted_question_and_the_key(server, api):
    if api == "completions":
        server.tokenizer.chat_template = None  # chat answers 400; the backend moves to plain completions
    adapter = remote(server)
    await adapter.load()
    result = await adapter.generate(QUESTION)
    await adapter.aclose()

    assert server.refused == 0 and result.extra["api"] == api
    assert result.extra["redactions"] == {"CARD": 1, "IBAN": 1, "EMAIL": 1, "PHONE": 1}
    assert len(server.raw) == len(server.requests) + 1  # GET /v1/models has no JSON body to keep
    for raw in server.raw:
        assert re.search(rb"(?im)^authorization: Bearer " + KEY.encode() + rb"\r$", raw)
        assert_nothing_personal(raw)
    path, body = server.requests[-1]
    if api == "chat":
        assert path == "/v1/chat/completions" and body["messages"][-1] == {"role": "user", "content": REDACTED}
    else:
        assert path == "/v1/completions" and f"Question: {REDACTED}\n" in body["prompt"]


async def test_without_the_key_the_server_refuses_and_the_model_says_why(server):
    adapter = remote(server, api_key=None)
    with pytest.raises(ModelUnavailableError, match=r"requires an API key \(401 Unauthorized\): set VLLM_API_KEY"):
        await adapter.load()
    status = await adapter.health_check()
    assert not status.healthy and "VLLM_API_KEY" in status.reason
    assert server.refused == 2 and server.requests == []  # nothing reached the model


async def test_a_wrong_key_is_refused_and_never_repeated_in_the_error(server):
    wrong = "not-the-key-91c2"
    adapter = remote(server, api_key=wrong)
    with pytest.raises(ModelUnavailableError, match="refused VLLM_API_KEY") as info:
        await adapter.load()
    assert wrong not in str(info.value) and KEY not in str(info.value)
    assert f"Bearer {wrong}".encode() in server.raw[0] and server.requests == []


async def test_a_key_rotated_on_the_server_after_load_fails_the_call_clearly(server):
    adapter = remote(server)
    await adapter.load()
    server.api_key = "rotated-key"
    with pytest.raises(ModelUnavailableError, match="refused VLLM_API_KEY"):
        await adapter.generate(QUESTION)
    assert server.refused == 1
    assert_nothing_personal(server.raw[-1])  # the refused request carried the redacted question only
    await adapter.aclose()


async def test_the_pipeline_falls_back_when_the_server_refuses_the_key(server, db):
    backup = ScriptedAdapter("backup").enqueue("backup answers")
    settings = LLMSettings(qlora_backend="vllm-server", vllm_server_url=server.url, vllm_api_key="wrong-key")
    factory = ModelFactory(settings, {"qlora": QLoRAAdapter, **builders(backup)})
    pipeline = BankingLLMPipeline(factory, db, PipelineOptions(fallback_order=["qlora", "backup"]),
                                  default_model="qlora")
    result = await pipeline.generate(QUESTION)
    assert (result.model, result.fallback_from) == ("backup", "qlora")
    assert server.refused == 1 and server.requests == []
    await factory.aclose()


async def test_the_transformers_backend_gets_the_redacted_question(tiny, monkeypatch):
    import llm.qlora.backend_transformers as backend_transformers

    base, adapter_dir = tiny
    rendered: list[str] = []

    def recording_render_prompt(tokenizer, question):
        rendered.append(question)
        return render_prompt(tokenizer, question)

    monkeypatch.setattr(backend_transformers, "render_prompt", recording_render_prompt)
    adapter = QLoRAAdapter(LLMSettings(qlora_backend="transformers", qlora_base_model=str(base),
                                       qlora_adapter_dir=adapter_dir))
    await adapter.load()
    result = await adapter.generate(QUESTION)
    tokenizer = adapter.backend.tokenizer
    await adapter.aclose()

    assert rendered == [REDACTED]
    encoded = tokenizer(render_prompt(tokenizer, REDACTED), add_special_tokens=False)["input_ids"]
    assert result.prompt_tokens == len(encoded)  # the tokens the model read are the redacted prompt's
    assert result.extra["redactions"] == {"CARD": 1, "IBAN": 1, "EMAIL": 1, "PHONE": 1}
