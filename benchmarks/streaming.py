"""Time to first token (TTFT) and total time, streamed against not streamed, per model.

- custom: the trained checkpoint in $MODEL_DIR/custom (./models/custom), streamed token by token from its answer
  against `generate` (skipped when there is no checkpoint);
- gemini: the real google-genai SDK against the fake Gemini server, whose reply is scripted to take PIECES x GAP
  (streamGenerateContent sends a piece every GAP; generateContent answers once after the whole delay);
- vllm-server: the QLoRA adapter against the fake OpenAI-compatible server streaming a scripted grounded answer a
  token every TOKEN_GAP (not streamed: the whole answer once the last token is out).

Prints the median of each figure over the requests, in milliseconds.
Usage: python benchmarks/streaming.py [--requests 20] [--gap-ms 40] [--pieces 12] [--token-gap-ms 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm.adapters.base import GenerationResult  # noqa: E402
from llm.adapters.gemini import GeminiAdapter  # noqa: E402
from llm.config import LLMSettings  # noqa: E402
from llm.knowledge_base import load_knowledge_base  # noqa: E402
from tests.fake_gemini import FakeGemini  # noqa: E402

QUESTION = "I lost my card in Lisbon yesterday and I fly home tomorrow, what do I do?"
ANSWER = ("Sorry to hear that. Open the app, tap Cards, select the card and freeze it right away so nobody can use "
          "it. If you're sure it's gone, report it as lost or stolen there and order a replacement. Check your "
          "recent transactions and contact support about any you don't recognise.")


async def timed_stream(adapter, prompt: str) -> tuple[float, float, str]:
    started = time.perf_counter()
    first = None
    async for item in adapter.stream(prompt, record=False):
        if isinstance(item, GenerationResult):
            return first or (time.perf_counter() - started) * 1000, (time.perf_counter() - started) * 1000, item.text
        if first is None:
            first = (time.perf_counter() - started) * 1000
    raise RuntimeError("no result")


async def timed_generate(adapter, prompt: str) -> float:
    started = time.perf_counter()
    await adapter.generate(prompt, record=False)
    return (time.perf_counter() - started) * 1000


def report(name: str, streamed: list[tuple[float, float, str]], whole: list[float]) -> None:
    ttft = statistics.median(s[0] for s in streamed)
    total = statistics.median(s[1] for s in streamed)
    plain = statistics.median(whole)
    print(f"{name:<12} streamed: TTFT {ttft:8.1f} ms  total {total:8.1f} ms | not streamed: TTFT = total "
          f"{plain:8.1f} ms | first words {plain / ttft if ttft else float('inf'):5.1f}x sooner")


async def custom(requests: int) -> None:
    settings = LLMSettings()
    if not (settings.custom_checkpoint_dir / "config.json").is_file():
        print(f"custom       skipped: no checkpoint in {settings.custom_checkpoint_dir}")
        return
    from llm.adapters.custom import CustomTransformerAdapter

    adapter = CustomTransformerAdapter(settings)
    await adapter.load()
    try:
        await adapter.generate(QUESTION, record=False)  # warm
        streamed = [await timed_stream(adapter, QUESTION) for _ in range(requests)]
        whole = [await timed_generate(adapter, QUESTION) for _ in range(requests)]
        assert streamed[0][2] == (await adapter.generate(QUESTION, record=False)).text
    finally:
        await adapter.aclose()
    report("custom", streamed, whole)


async def gemini(requests: int, pieces: int, gap_s: float) -> None:
    fake = await FakeGemini().start()
    reply = {"intent": "lost_or_stolen_card", "confidence": 0.9, "answer": ANSWER}
    adapter = GeminiAdapter(LLMSettings(gemini_api_key="bench", gemini_base_url=fake.url))
    await adapter.load()
    try:
        streamed, whole = [], []
        for _ in range(requests):
            fake.script(FakeGemini.stream(reply, pieces=pieces, gap_s=gap_s))
            streamed.append(await timed_stream(adapter, QUESTION))
            fake.script(FakeGemini.delay(gap_s * (pieces - 1), FakeGemini.reply(reply)))
            whole.append(await timed_generate(adapter, QUESTION))
        assert streamed[0][2] == ANSWER, streamed[0][2]
    finally:
        await adapter.aclose()
        await fake.stop()
    report("gemini", streamed, whole)


async def vllm_server(requests: int, token_gap_s: float) -> None:
    try:
        import transformers

        from llm.adapters.qlora import QLoRAAdapter
        from llm.qlora.tiny_model import build_tiny_llama
        from tests.fake_openai import FakeVLLMServer
    except ImportError as exc:
        print(f"vllm-server  skipped: {exc}")
        return
    kb = load_knowledge_base()
    with tempfile.TemporaryDirectory() as root:
        base = build_tiny_llama(Path(root) / "tiny", [ANSWER, *kb.intents, *(kb.answer(i) for i in kb.intents)])
        tokenizer = transformers.AutoTokenizer.from_pretrained(base)
        fake = FakeVLLMServer(None, tokenizer, base_name=str(base), token_gap_s=token_gap_s)
        await fake.start()
        adapter = QLoRAAdapter(LLMSettings(qlora_backend="vllm-server", vllm_server_url=fake.url))
        await adapter.load()
        try:
            streamed, whole = [], []
            for _ in range(requests):
                fake.scripted.append(f"lost_or_stolen_card\n{ANSWER}")
                streamed.append(await timed_stream(adapter, QUESTION))
                fake.scripted.append(f"lost_or_stolen_card\n{ANSWER}")
                whole.append(await timed_generate(adapter, QUESTION))
            assert streamed[0][2] == ANSWER, streamed[0][2]
        finally:
            await adapter.aclose()
            await fake.stop()
    report("vllm-server", streamed, whole)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--pieces", type=int, default=12, help="Gemini: pieces of the streamed reply")
    parser.add_argument("--gap-ms", type=float, default=40.0, help="Gemini: between two pieces")
    parser.add_argument("--token-gap-ms", type=float, default=15.0, help="vLLM server: between two tokens")
    args = parser.parse_args()
    print(f"{args.requests} requests each; medians")
    await custom(args.requests)
    await gemini(args.requests, args.pieces, args.gap_ms / 1000)
    await vllm_server(args.requests, args.token_gap_ms / 1000)


if __name__ == "__main__":
    asyncio.run(main())
