"""GPU check of the QLoRA path: a tiny Llama and a LoRA adapter built here, served through vLLM in-process
(AsyncLLM + LoRARequest) and as an OpenAI-compatible server (`vllm serve --enable-lora`), through the bot's own
QLoRAAdapter. Prints median latency and tokens per second for each. The server is started as in production, with
an API key in VLLM_API_KEY (its --api-key); the check also confirms that it refuses requests without the key.
Needs a CUDA GPU and vllm; nothing is downloaded. Run it as scripts/gpu_check.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = [
    "I still have not received my new card, I ordered over a week ago.",
    "How do I link my new card to the app?",
    "What exchange rate will I get when I pay abroad?",
    "My top-up failed, why?",
    "Someone stole my card, what do I do?",
    "Why was I charged a fee for a card payment?",
    "Can I get a disposable virtual card?",
    "How long does a transfer from the UK take?",
]


def build(root: Path) -> tuple[Path, Path]:
    """A bfloat16 tiny Llama (head_dim 64, which vLLM's attention kernels support) and a non-trivial adapter."""
    from llm.knowledge_base import load_knowledge_base
    from llm.qlora.tiny_model import TinyLlamaConfig, build_random_adapter, build_tiny_llama

    kb = load_knowledge_base()
    texts = QUESTIONS + list(kb.intents) + [kb.answer(intent) for intent in kb.intents]
    config = TinyLlamaConfig(hidden_size=256, num_heads=4, intermediate_size=512, num_layers=2, dtype="bfloat16")
    base = build_tiny_llama(root / "tiny-llama", texts, config)
    return base, build_random_adapter(base, root / "adapter", r=16, alpha=32)


async def measure(adapter, label: str, rounds: int, concurrency: int) -> dict:
    await adapter.generate(QUESTIONS[0])  # warm-up
    latencies, tokens, seconds = [], 0, 0.0
    for i in range(rounds):
        result = await adapter.generate(QUESTIONS[i % len(QUESTIONS)])
        latencies.append(result.latency_ms)
        tokens += result.completion_tokens
        seconds += result.latency_ms / 1000
    started = time.perf_counter()
    batch = await asyncio.gather(*(adapter.generate(QUESTIONS[i % len(QUESTIONS)]) for i in range(concurrency)))
    wall = time.perf_counter() - started
    figures = {
        "backend": label,
        "sequential_requests": rounds,
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_max_ms": round(max(latencies), 2),
        "sequential_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "concurrent_requests": concurrency,
        "concurrent_tokens_per_s": round(sum(r.completion_tokens for r in batch) / wall, 1),
        "sample": {"intent": batch[0].intent, "raw_label": batch[0].extra.get("raw_label"),
                   "completion_tokens": batch[0].completion_tokens, "confidence": batch[0].confidence},
    }
    print(f"[{label}] p50 {figures['latency_p50_ms']} ms, {figures['sequential_tokens_per_s']} tok/s sequential, "
          f"{figures['concurrent_tokens_per_s']} tok/s at {concurrency} concurrent", flush=True)
    return figures


async def check_in_process(base: Path, adapter_dir: Path, args) -> dict:
    from llm.adapters.qlora import QLoRAAdapter
    from llm.config import LLMSettings
    from llm.qlora.backend_vllm import VLLMBackend

    backend = VLLMBackend(str(base), adapter_dir, engine_kwargs={
        "max_model_len": 512, "gpu_memory_utilization": args.gpu_memory_utilization, "enforce_eager": True})
    settings = LLMSettings(qlora_backend="vllm", qlora_base_model=str(base), qlora_adapter_dir=adapter_dir)
    adapter = QLoRAAdapter(settings, backend=backend)
    started = time.perf_counter()
    await adapter.load()
    print(f"[vllm in-process] engine ready in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        return await measure(adapter, "vllm", args.rounds, args.concurrency)
    finally:
        await adapter.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_healthy(url: str, server: asyncio.subprocess.Process, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.returncode is not None:
            raise RuntimeError(f"vllm serve exited with {server.returncode}")
        try:
            status = await asyncio.to_thread(_status, url)
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(2)
    raise TimeoutError(f"vllm serve was not healthy at {url} after {timeout_s:.0f} s")


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local server
        return response.status


async def check_server(base: Path, adapter_dir: Path, args) -> dict:
    from llm.adapters.qlora import QLoRAAdapter
    from llm.config import LLMSettings

    port = free_port()
    api_key = secrets.token_hex(16)  # in the environment, as manifests/vllm/deployment.yaml passes it
    command = ["vllm", "serve", str(base), "--host", "127.0.0.1", "--port", str(port), "--enable-lora",
               "--lora-modules", f"banking={adapter_dir}", "--max-lora-rank", "16", "--max-loras", "1",
               "--max-model-len", "512", "--gpu-memory-utilization", str(args.gpu_memory_utilization),
               "--enforce-eager"]
    print("[vllm server] " + " ".join(command), flush=True)
    started = time.perf_counter()
    server = await asyncio.create_subprocess_exec(*command, env={**os.environ, "VLLM_API_KEY": api_key})
    try:
        await wait_healthy(f"http://127.0.0.1:{port}/health", server, args.server_timeout_s)
        print(f"[vllm server] healthy in {time.perf_counter() - started:.1f} s", flush=True)
        url = f"http://127.0.0.1:{port}/v1"
        await check_key_required(url)
        adapter = QLoRAAdapter(LLMSettings(qlora_backend="vllm-server", vllm_server_url=url, vllm_api_key=api_key))
        await adapter.load()
        try:
            return {**await measure(adapter, "vllm-server", args.rounds, args.concurrency), "api_key_required": True}
        finally:
            await adapter.aclose()
    finally:
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), timeout=30)
            except TimeoutError:
                server.kill()
                await server.wait()


async def check_key_required(url: str) -> None:
    """The server answers 401 to a request without the key, and the adapter reports why it cannot serve."""
    from llm.adapters.qlora import QLoRAAdapter
    from llm.config import LLMSettings

    try:
        status = await asyncio.to_thread(_status, f"{url}/models")
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status != 401:
        raise RuntimeError(f"vllm serve answered {status} to a request without its API key, not 401")
    keyless = QLoRAAdapter(LLMSettings(qlora_backend="vllm-server", vllm_server_url=url))
    health = await keyless.health_check()
    if health.healthy or "VLLM_API_KEY" not in health.reason:
        raise RuntimeError(f"without VLLM_API_KEY the adapter should report the missing key: {health}")
    print(f"[vllm server] refuses requests without the key (401): {health.reason}", flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="sequential requests per backend")
    parser.add_argument("--concurrency", type=int, default=32, help="requests sent at once per backend")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    parser.add_argument("--server-timeout-s", type=float, default=300)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    try:
        import vllm
    except ImportError:
        print("vllm is not installed: pip install bankbot[vllm] on a CUDA machine", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU is visible", file=sys.stderr)
        return 2
    print(f"vllm {vllm.__version__}, torch {torch.__version__}, GPU {torch.cuda.get_device_name(0)}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bankbot-gpu-check-") as tmp:
        base, adapter_dir = build(Path(tmp))
        for check in (check_in_process, check_server):
            try:
                results.append(await check(base, adapter_dir, args))
            except Exception as exc:  # noqa: BLE001 - report each backend, keep going
                print(f"[{check.__name__}] FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                results.append({"backend": check.__name__, "error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":  # vLLM spawns worker processes: keep the entry point guarded
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(asyncio.run(main()))
