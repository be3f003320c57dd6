"""QLoRA's grounded answers, streamed: the vLLM server backend with stream=True against the fake OpenAI-compatible
server (chunks as vLLM sends them), and transformers through TextIteratorStreamer on the tiny local model."""

from __future__ import annotations

import asyncio

import pytest

from llm.adapters.qlora import QLoRAAdapter
from llm.config import LLMSettings
from llm.knowledge_base import load_knowledge_base
from tests.stream_helpers import collect
from tests.test_qlora import fake_server, trained  # noqa: F401 - the module's fixtures: tiny model, fake server

KB = load_knowledge_base()
LOST = KB.answer("lost_or_stolen_card")
FAITHFUL = ("Open the app, tap Cards, select the card and freeze it straight away. If you're sure it's gone, "
            "report it as lost or stolen and order a replacement.")


async def remote(server, **values):
    adapter = QLoRAAdapter(LLMSettings(qlora_backend="vllm-server", vllm_server_url=server.url, **values))
    await adapter.load()
    return adapter


async def test_the_server_streams_a_faithful_answer_before_it_has_finished(fake_server):  # noqa: F811
    fake_server.scripted.append(f"lost_or_stolen_card\n{FAITHFUL}")
    fake_server.hold, fake_server.hold_after = asyncio.Event(), 16
    adapter = await remote(fake_server)
    try:
        stream = adapter.stream("I lost my card 4111 1111 1111 1111 in Lisbon")
        first = await anext(stream)
        assert first == "Open the app, tap Cards, select the card and freeze it straight away. "
        assert not fake_server.stream_done.is_set()  # the server is still generating
        fake_server.hold.set()
        rest = [item async for item in stream]
        result = rest[-1]
        assert first + "".join(rest[:-1]) == result.text == FAITHFUL
        assert result.intent == "lost_or_stolen_card" and result.extra["grounding"] == "passed"
        path, body = fake_server.requests[-1]
        assert path == "/v1/chat/completions" and body["stream"] is True and "4111" not in str(body)
        assert result.prompt_tokens > 0 and 0 < result.confidence <= 1
    finally:
        await adapter.aclose()


async def test_an_invented_fee_shows_the_entry(fake_server):  # noqa: F811
    fake_server.scripted.append("lost_or_stolen_card\nFreeze it under Cards. A new card costs £5.")
    adapter = await remote(fake_server)
    try:
        result = await adapter.generate("I lost my card")
        assert result.text == "Freeze it under Cards. \n\n" + LOST and result.extra["grounding"] == "rejected"
        assert adapter.get_metrics()["grounding_rejections"] == 1
    finally:
        await adapter.aclose()


async def test_streamed_labels_match_the_label_path_on_the_real_tiny_model(trained, fake_server):  # noqa: F811
    base, adapter_dir, _, examples = trained
    served = await remote(fake_server)
    labels = await remote(fake_server, answer_style="knowledge_base")
    local = QLoRAAdapter(LLMSettings(qlora_backend="transformers", qlora_base_model=str(base),
                                     qlora_adapter_dir=adapter_dir))
    await local.load()
    try:
        for example in examples[:3]:
            deltas, streamed = await collect(served, example.text)
            _, in_process = await collect(local, example.text)
            label = await labels.generate(example.text)
            assert streamed.intent == label.intent == in_process.intent
            assert "".join(deltas) == streamed.text and in_process.extra["backend"] == "transformers"
            assert streamed.extra["grounded_on"] == streamed.intent
    finally:
        await served.aclose()
        await labels.aclose()
        await local.aclose()


def test_in_process_vllm_streaming_needs_a_gpu():
    pytest.importorskip("vllm", reason="vllm is not installed (GPU machines only): in-process streaming untested here")
