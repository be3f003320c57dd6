"""Generation speed of the custom model: ms per generated token at batch 1, with and without the KV cache.

Each figure is the median of several runs of greedy decoding of exactly N tokens after a real question's
prompt (prefill included, <eos> ignored). The runs of every length alternate, so that a noisy neighbour on a
shared machine slows all of them alike. With the cache the cost per token should stay flat in N.
Serving generates each intent's answer once, when the checkpoint loads (llm/custom/answer_cache.py): these figures
are the cost of that generation, and of every request only for a checkpoint whose answers see the question.

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


def ms_per_token(predictor, prompt: list[int], runs: int) -> dict[tuple[int, bool], float]:
    """(tokens, with cache) -> median ms per token over `runs` alternating rounds."""
    times: dict[tuple[int, bool], list[float]] = {(n, c): [] for n in LENGTHS for c in (True, False)}
    for _ in range(runs):
        for n, use_cache in times:
            started = time.perf_counter()
            predictor.generate_tokens(prompt, n, use_cache=use_cache)
            times[n, use_cache].append((time.perf_counter() - started) * 1000 / n)
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> None:
    import torch

    from llm.config import LLMSettings
    from llm.custom.predictor import Predictor

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: $MODEL_DIR/custom")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the adapter uses 1)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.checkpoint or LLMSettings().custom_checkpoint_dir)
    prompt = predictor.prompt_ids(QUESTION)
    longest = predictor.label_position + max(LENGTHS)  # generated tokens take fixed positions
    if longest > predictor.model.config.block_size:
        sys.exit(f"block_size {predictor.model.config.block_size} < prompt + {max(LENGTHS)} tokens")
    ms_per_token(predictor, prompt, 1)  # warm-up
    print(
        f"custom model, batch 1, prompt {len(prompt)} tokens, torch threads {torch.get_num_threads()}, "
        f"median of {args.runs} runs"
    )
    print(f"{'tokens':>8} {'cache ms/token':>16} {'no cache ms/token':>18} {'speed-up':>9}")
    figures = ms_per_token(predictor, prompt, args.runs)
    cached = {n: figures[n, True] for n in LENGTHS}
    for n in LENGTHS:
        print(f"{n:>8} {cached[n]:>16.3f} {figures[n, False]:>18.3f} {figures[n, False] / cached[n]:>8.1f}x")
    ratio = cached[LENGTHS[-1]] / cached[LENGTHS[0]]
    print(
        f"flatness: {LENGTHS[-1]} tokens cost {ratio:.2f}x per token of {LENGTHS[0]} with the cache "
        f"(target <= 1.2); target <= 1.5 ms/token with the cache"
    )


if __name__ == "__main__":
    main()
