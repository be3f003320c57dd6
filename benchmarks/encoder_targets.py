"""The encoder model against its targets: accuracy, intent latency (tokenizer included), throughput, memory, training.

Figures come from the checkpoint in $MODEL_DIR/encoder (or --checkpoint), Banking77's test split and the chat-style
set in tests/data/chat_banking.csv:
  - accuracy on both (out_of_scope counts as wrong) and how many questions fell below the out-of-scope threshold
  - intent p50 at batch 1 through the predictor (tokenizer + encoder + head), the tokenizer's share, and the
    adapter's generate() p50 (micro-batcher, redaction, knowledge-base answer)
  - intents per second at batch 64 (questions in the test split's order)
  - RSS added by loading the model; training wall time as recorded in the checkpoint

    python benchmarks/encoder_targets.py [--checkpoint models/encoder] [--sample 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.model_targets import print_figures, rss_mb, spread_sample  # noqa: E402


def accuracy(predictor, examples) -> tuple[float, int]:
    """(accuracy with out_of_scope counted wrong, questions below the threshold)."""
    intents = []
    for i in range(0, len(examples), 64):
        intents += predictor.classify([e.text for e in examples[i : i + 64]])
    threshold = predictor.meta.oos_threshold
    correct = sum(i.label == e.intent and i.confidence >= threshold for i, e in zip(intents, examples, strict=True))
    return correct / len(examples), sum(i.confidence < threshold for i in intents)


def main() -> None:
    import torch  # imported before the RSS baseline: only the model's own cost is measured
    import transformers  # noqa: F401

    from llm.adapters.encoder import EncoderAdapter
    from llm.banking77 import load_split, read_csv
    from llm.config import LLMSettings
    from llm.encoder.predictor import EncoderPredictor
    from llm.knowledge_base import load_knowledge_base

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: $MODEL_DIR/encoder")
    parser.add_argument("--chat", type=Path, default=REPO / "tests" / "data" / "chat_banking.csv")
    parser.add_argument("--sample", type=int, default=300, help="questions timed one by one")
    parser.add_argument("--threads", type=int, default=EncoderAdapter.torch_threads, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or LLMSettings().encoder_checkpoint_dir
    test, chat = load_split("test"), read_csv(args.chat)
    load_knowledge_base()  # read before the RSS baseline, like the adapter does at load

    before = rss_mb()
    predictor = EncoderPredictor.load(checkpoint)
    predictor.classify([test[0].text])
    loaded = rss_mb() - before
    print(f"encoder model: {predictor.model.num_params() / 1e6:.1f}M parameters, "
          f"{'bfloat16' if predictor.bf16 else 'float32'} weights, torch threads {torch.get_num_threads()}")

    test_accuracy, test_rejected = accuracy(predictor, test)
    chat_accuracy, chat_rejected = accuracy(predictor, chat)
    started = time.perf_counter()
    for i in range(0, len(test), 64):
        predictor.classify([e.text for e in test[i : i + 64]])
    throughput = len(test) / (time.perf_counter() - started)

    sample = spread_sample(test, args.sample)
    intent_ms, tokenize_ms = [], []
    for e in sample:
        t = time.perf_counter()
        (intent,) = predictor.classify([e.text])
        intent_ms.append((time.perf_counter() - t) * 1000)
        tokenize_ms.append(intent.tokenize_ms)

    async def generate_all() -> list[float]:
        settings = LLMSettings(model_dir=Path(checkpoint).parent, encoder_dir=Path(checkpoint))
        adapter = EncoderAdapter(settings)
        await adapter.load()
        torch.set_num_threads(args.threads)  # the adapter sets its own at load
        times = []
        for e in sample:
            t = time.perf_counter()
            await adapter.generate(e.text)
            times.append((time.perf_counter() - t) * 1000)
        await adapter.aclose()
        return times

    generate_ms = asyncio.run(generate_all())
    train = predictor.meta.train
    figures = {
        "test_accuracy": round(test_accuracy, 4),
        "test_out_of_scope": test_rejected,
        "chat_accuracy": round(chat_accuracy, 4),
        "chat_out_of_scope": chat_rejected,
        "intent_p50_ms": round(statistics.median(intent_ms), 2),
        "tokenize_p50_ms": round(statistics.median(tokenize_ms), 3),
        "generate_p50_ms": round(statistics.median(generate_ms), 2),
        "throughput_batch64_per_s": round(throughput, 1),
        "load_rss_mb": round(loaded, 1),
        "train_seconds": train.get("train_seconds"),
        "val_accuracy": train.get("val_accuracy"),
        "temperature": round(predictor.meta.temperature, 4),
        "oos_threshold": round(predictor.meta.oos_threshold, 4),
    }
    targets = {
        "test_accuracy": ">= 0.94",
        "intent_p50_ms": "<= 15",
        "throughput_batch64_per_s": ">= 300",
        "load_rss_mb": "<= 400",
        "train_seconds": "<= 600",
    }
    print_figures(figures, targets)


if __name__ == "__main__":
    main()
