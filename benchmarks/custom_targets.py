"""The custom model against its targets: accuracy, intent and generate latency, throughput, memory, training time.

Figures come from the checkpoint in $MODEL_DIR/custom (or --checkpoint) and Banking77's test split:
  - accuracy on test.csv (intent only; out_of_scope counts as wrong), and the KB divergence rate of answers
  - intent latency p50 (batch 1) and whole generate() p50 through the adapter (the intent, then the answer
    generated for that intent when the checkpoint loaded); the adapter's load time (answers of all intents
    generated and checked against the knowledge base) and how many intents' answers diverged from it
  - intent classifications per second at batch 64
  - RSS added by loading the model; training wall time as recorded in the checkpoint

    python benchmarks/custom_targets.py [--checkpoint models/custom] [--sample 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.model_targets import print_figures, rss_mb, spread_sample  # noqa: E402


def main() -> None:
    import torch  # imported before the baseline RSS: only the model's own cost is measured

    from llm.adapters.custom import CustomTransformerAdapter
    from llm.banking77 import load_split, read_csv
    from llm.config import LLMSettings
    from llm.custom.predictor import Predictor
    from llm.knowledge_base import load_knowledge_base

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: $MODEL_DIR/custom")
    parser.add_argument("--data", type=Path, default=None, help="labelled CSV; default Banking77 test split")
    parser.add_argument("--sample", type=int, default=300, help="questions timed one by one")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the adapter uses 1)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or LLMSettings().custom_checkpoint_dir
    examples = read_csv(args.data) if args.data else load_split("test")
    load_knowledge_base()  # read before the RSS baseline, like the adapter does at load

    before = rss_mb()
    predictor = Predictor.load(checkpoint)
    predictor.classify([examples[0].text])
    loaded = rss_mb() - before
    threshold = predictor.meta.oos_threshold
    print(
        f"custom model: {predictor.model.num_params() / 1e6:.2f}M parameters, torch threads "
        f"{torch.get_num_threads()}, {len(examples)} test questions"
    )

    started = time.perf_counter()
    intents = []
    for i in range(0, len(examples), 64):
        intents += predictor.classify([e.text for e in examples[i : i + 64]])
    throughput = len(examples) / (time.perf_counter() - started)
    correct = sum(i.label == e.intent and i.confidence >= threshold for i, e in zip(intents, examples, strict=True))
    rejected = sum(i.confidence < threshold for i in intents)
    sample = spread_sample(examples, args.sample)

    intent_ms = []
    for e in sample:
        t = time.perf_counter()
        predictor.classify([e.text])
        intent_ms.append((time.perf_counter() - t) * 1000)

    async def generate_all():
        adapter = CustomTransformerAdapter(LLMSettings(model_dir=Path(checkpoint).parent))
        t = time.perf_counter()
        await adapter.load()
        load_s = time.perf_counter() - t
        times = []
        for e in sample:
            t = time.perf_counter()
            await adapter.generate(e.text)
            times.append((time.perf_counter() - t) * 1000)
        metrics = adapter.get_metrics()
        await adapter.aclose()
        return times, metrics, load_s

    generate_ms, metrics, load_s = asyncio.run(generate_all())
    train = predictor.meta.train
    figures = {
        "accuracy": round(correct / len(examples), 4),
        "out_of_scope_on_test": rejected,
        "kb_divergence_rate": round(metrics["kb_divergence_rate"], 4),
        "kb_divergences": metrics["kb_divergences"],
        "answers_generated": metrics["answers_generated"],
        "kb_divergent_intents": metrics["kb_divergent_intents"],
        "answer_cache_hit_rate": metrics["answer_cache_hit_rate"],
        "adapter_load_s": round(load_s, 2),
        "intent_p50_ms": round(statistics.median(intent_ms), 2),
        "generate_p50_ms": round(statistics.median(generate_ms), 2),
        "throughput_batch64_per_s": round(throughput, 1),
        "load_rss_mb": round(loaded, 1),
        "train_seconds": train.get("train_seconds"),
        "val_accuracy": train.get("val_accuracy"),
        "oos_threshold": round(threshold, 4),
    }
    targets = {
        "accuracy": ">= 0.92 (stretch 0.937)",
        "kb_divergence_rate": "~0",
        "intent_p50_ms": "<= 5",
        "kb_divergent_intents": "0",
        "generate_p50_ms": "<= 10",
        "throughput_batch64_per_s": ">= 500",
        "load_rss_mb": "<= 200",
        "train_seconds": "<= 600",
    }
    print_figures(figures, targets)


if __name__ == "__main__":
    main()
