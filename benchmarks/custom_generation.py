"""Generation speed of the custom model: ms per generated token at batch 1, with and without the KV cache.

Each figure is the median of several runs of greedy decoding of exactly N tokens after a real question's
prompt (prefill included, <eos> ignored). With the cache the cost per token should stay flat in N.

    python benchmarks/custom_generation.py                      # checkpoint in $MODEL_DIR/custom
    python benchmarks/custom_generation.py --checkpoint models/custom --runs 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LENGTHS = (8, 32, 128)
QUESTION = "I made a transfer yesterday and it still hasn't arrived, what should I do?"


def ms_per_token(predictor, prompt: list[int], n: int, use_cache: bool, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        predictor.generate_tokens(prompt, n, use_cache=use_cache)
        times.append((time.perf_counter() - started) * 1000 / n)
    return statistics.median(times)


def main() -> None:
    import torch

    from llm.config import LLMSettings
    from llm.custom.predictor import Predictor

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: $MODEL_DIR/custom")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the adapter uses 1)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.checkpoint or LLMSettings().custom_checkpoint_dir)
    prompt = predictor.prompt_ids(QUESTION)
    longest = predictor.label_position + max(LENGTHS)  # generated tokens take fixed positions
    if longest > predictor.model.config.block_size:
        sys.exit(f"block_size {predictor.model.config.block_size} < prompt + {max(LENGTHS)} tokens")
    ms_per_token(predictor, prompt, 8, True, 3)  # warm-up
    print(
        f"custom model, batch 1, prompt {len(prompt)} tokens, torch threads {torch.get_num_threads()}, "
        f"median of {args.runs} runs"
    )
    print(f"{'tokens':>8} {'cache ms/token':>16} {'no cache ms/token':>18} {'speed-up':>9}")
    cached = {}
    for n in LENGTHS:
        cached[n] = ms_per_token(predictor, prompt, n, True, args.runs)
        uncached = ms_per_token(predictor, prompt, n, False, args.runs)
        print(f"{n:>8} {cached[n]:>16.3f} {uncached:>18.3f} {uncached / cached[n]:>8.1f}x")
    ratio = cached[LENGTHS[-1]] / cached[LENGTHS[0]]
    print(
        f"flatness: {LENGTHS[-1]} tokens cost {ratio:.2f}x per token of {LENGTHS[0]} with the cache "
        f"(target <= 1.2); target <= 1.5 ms/token with the cache"
    )


if __name__ == "__main__":
    main()
