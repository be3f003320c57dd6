"""QLoRA on CPU: a tiny Llama built here, a LoRA adapter trained through `bankbot train qlora`'s code path, the
transformers backend, the vllm-server backend against a vLLM-like server, and the unavailable cases."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")

from conftest import BANKING77_DIR  # noqa: E402 - read before the per-test environment is cleared

from llm.adapters.base import OUT_OF_SCOPE  # noqa: E402
from llm.adapters.qlora import QLoRAAdapter  # noqa: E402
from llm.config import LLMSettings  # noqa: E402
from llm.errors import ModelUnavailableError  # noqa: E402
from llm.knowledge_base import load_knowledge_base  # noqa: E402
from llm.qlora.parsing import label_confidence, parse_intent  # noqa: E402

LIMIT = 16  # training examples: the tiny model memorises them
STEPS = 60
SEED = 1337


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(base dir, adapter dir, training report, the training examples), built once for the module."""
    if not BANKING77_DIR:
        pytest.skip("Banking77 is not available: set BANKING77_DIR")
    from llm.banking77 import load_split
    from llm.qlora.tiny_model import build_tiny_llama
    from llm.qlora.train import train_qlora

    root = tmp_path_factory.mktemp("qlora")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BANKING77_DIR", BANKING77_DIR)
        train = load_split("train")
        kb = load_knowledge_base()
        texts = [ex.text for ex in train[:400]] + list(kb.intents) + [kb.answer(i) for i in kb.intents]
        base = build_tiny_llama(root / "tiny-llama", texts)
        report = train_qlora(str(base), root / "adapter", max_steps=STEPS, limit=LIMIT, r=16, alpha=32,
                             dropout=0.0, lr=2e-2, seed=SEED, progress=False)
    examples = list(train)
    random.Random(SEED).shuffle(examples)  # train_qlora's own selection of `limit` examples
    return base, root / "adapter", report, examples[:LIMIT]


def settings(**values) -> LLMSettings:
    """The label path (the entry shown); grounded answers and streaming: tests/test_streaming_qlora.py."""
    return LLMSettings(**({"answer_style": "knowledge_base"} | values))


def test_training_lowers_the_loss_and_saves_adapter_and_tokenizer(trained):
    _, adapter, report, _ = trained
    assert report.steps == STEPS and report.examples == LIMIT and not report.quantized
    assert report.last_loss < 0.5 * report.first_loss, report.losses
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_report.json"):
        assert (adapter / name).is_file(), name
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"}


async def test_transformers_backend_answers_with_the_learnt_labels(trained):
    base, adapter_dir, _, examples = trained
    adapter = QLoRAAdapter(settings(qlora_backend="transformers", qlora_base_model=str(base),
                                    qlora_adapter_dir=adapter_dir))
    await adapter.load()
    kb = load_knowledge_base()
    results = [await adapter.generate(ex.text) for ex in examples]
    correct = sum(r.intent == ex.intent for r, ex in zip(results, examples, strict=True))
    print(f"tiny model: {correct}/{LIMIT} training questions labelled right")
    assert correct >= LIMIT // 2, [(r.extra["raw_label"], ex.intent) for r, ex in zip(results, examples, strict=True)]
    for result in results:
        assert result.intent in kb.intents or result.intent == OUT_OF_SCOPE
        assert result.text == kb.answer(result.intent)
        assert result.prompt_tokens > 0 and result.completion_tokens > 0
        assert 0.0 <= result.confidence <= 1.0 and result.latency_ms > 0
        assert result.model == "qlora" and result.device == "cpu"
        assert result.model_version == "qlora_vllm_finetuned_model_v1.0.0"
    assert any(r.confidence > 0 for r in results)
    assert adapter.get_metrics()["requests"] == LIMIT
    assert (await adapter.health_check()).healthy
    await adapter.aclose()


@pytest.fixture
async def fake_server(trained):
    import peft
    import transformers
    from fake_openai import FakeVLLMServer

    base, adapter_dir, _, _ = trained
    tokenizer = transformers.AutoTokenizer.from_pretrained(adapter_dir)
    model = peft.PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(base), adapter_dir)
    server = FakeVLLMServer(model.eval(), tokenizer, base_name=str(base))
    await server.start()
    yield server
    await server.stop()


async def test_vllm_server_backend_over_chat_completions(trained, fake_server):
    base, adapter_dir, _, examples = trained
    local = QLoRAAdapter(settings(qlora_backend="transformers", qlora_base_model=str(base),
                                  qlora_adapter_dir=adapter_dir))
    remote = QLoRAAdapter(settings(qlora_backend="vllm-server", vllm_server_url=fake_server.url))
    await local.load()
    await remote.load()
    for example in examples[:6]:
        served = await remote.generate(example.text)
        in_process = await local.generate(example.text)
        path, body = fake_server.requests[-1]
        completion = fake_server.completions[-1]
        assert path == "/v1/chat/completions" and body["model"] == "banking" and body["logprobs"] is True
        assert served.intent == in_process.intent  # same weights, same prompt, greedy
        assert served.completion_tokens == len(completion.token_ids)
        assert served.prompt_tokens == in_process.prompt_tokens
        expected = label_confidence(completion.logprobs, parse_intent(completion.text, load_knowledge_base().intents))
        assert served.confidence == pytest.approx(expected)
        assert served.extra["api"] == "chat" and served.device == "gpu"
    await remote.aclose()
    await local.aclose()


async def test_vllm_server_backend_falls_back_to_completions_without_a_chat_template(trained, fake_server):
    _, _, _, examples = trained
    fake_server.tokenizer.chat_template = None  # the served model has no template: chat answers 400
    remote = QLoRAAdapter(settings(qlora_backend="vllm-server", vllm_server_url=fake_server.url))
    await remote.load()
    result = await remote.generate(examples[0].text)
    paths = [path for path, _ in fake_server.requests]
    assert paths == ["/v1/chat/completions", "/v1/completions"]
    body = fake_server.requests[-1][1]
    assert body["model"] == "banking" and body["logprobs"] == 1 and body["prompt"].endswith("\nIntent:")
    completion = fake_server.completions[-1]
    parsed = parse_intent(completion.text, load_knowledge_base().intents)
    assert result.intent == parsed.intent
    assert result.confidence == pytest.approx(label_confidence(completion.logprobs, parsed))
    assert result.completion_tokens == len(completion.token_ids) and result.extra["api"] == "completions"
    await remote.generate(examples[1].text)
    assert fake_server.requests[-1][0] == "/v1/completions"  # remembered: no second chat attempt
    await remote.aclose()


async def test_vllm_server_without_the_banking_adapter_is_unavailable(trained, fake_server):
    fake_server.lora_name = "other"
    remote = QLoRAAdapter(settings(qlora_backend="vllm-server", vllm_server_url=fake_server.url))
    with pytest.raises(ModelUnavailableError, match="--lora-modules banking="):
        await remote.load()


async def test_unreachable_vllm_server_is_reported_unhealthy():
    remote = QLoRAAdapter(settings(qlora_backend="vllm-server", vllm_server_url="http://127.0.0.1:9/v1"))
    status = await remote.health_check()
    assert not status.healthy and "unreachable" in status.reason


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
async def test_without_vllm_the_model_is_unavailable(trained):
    base, adapter_dir, _, _ = trained
    adapter = QLoRAAdapter(settings(qlora_backend="vllm", qlora_base_model=str(base), qlora_adapter_dir=adapter_dir))
    with pytest.raises(ModelUnavailableError, match=r"vllm is not installed: pip install bankbot\[vllm\] on a CUDA"):
        await adapter.load()
    status = await adapter.health_check()
    assert not status.healthy and "vllm is not installed" in status.reason


async def test_a_bad_adapter_path_gives_a_clear_error(trained, tmp_path):
    base, _, _, _ = trained
    missing = tmp_path / "no-adapter-here"
    adapter = QLoRAAdapter(settings(qlora_backend="transformers", qlora_base_model=str(base),
                                    qlora_adapter_dir=missing))
    with pytest.raises(ModelUnavailableError, match=f"{missing} does not exist"):
        await adapter.load()
    status = await adapter.health_check()
    assert not status.healthy and "bankbot train qlora" in status.reason
    with pytest.raises(ModelUnavailableError, match="not loaded"):
        await adapter.generate("Where is my card?")


async def test_a_bad_base_model_path_gives_a_clear_error(trained, tmp_path):
    _, adapter_dir, _, _ = trained
    adapter = QLoRAAdapter(settings(qlora_backend="transformers", qlora_base_model=str(tmp_path / "no-base"),
                                    qlora_adapter_dir=adapter_dir))
    with pytest.raises(ModelUnavailableError, match="cannot load QLoRA base model"):
        await adapter.load()


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed here")
def test_qlora_quantisation_without_bitsandbytes_is_explained(trained, tmp_path):
    from llm.qlora.train import train_qlora

    base, _, _, _ = trained
    with pytest.raises(ModelUnavailableError, match="bitsandbytes is not installed"):
        train_qlora(str(base), tmp_path / "out", max_steps=1, limit=2, quantize=True, progress=False)


def test_default_adapter_dir_is_under_model_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "m"))
    assert LLMSettings().qlora_adapter_path == tmp_path / "m" / "qlora"
