"""`python -m tests.tiny_training`: bot/training.py's child process on a tiny configuration (a few seconds
instead of minutes), for the tests of training while serving. Writes MODEL_DIR/custom like the real one.

Set TINY_TRAINING_GATE to a file path to hold the child, after its first progress report, until that file
exists (a test then sees the training in progress for as long as it needs)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bot.settings import load_settings
from bot.training import report, run_child
from llm.custom.train import TrainParams, train_custom
from llm.custom.transformer import GPTConfig

INTENTS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed")


def tiny_params(out_dir: Path) -> TrainParams:
    return TrainParams(out_dir=out_dir, seed=7, vocab_size=400, epochs=1, batch_size=32, warmup_steps=2,
                       max_question_tokens=32,
                       gpt=GPTConfig(block_size=320, n_layer=1, n_head=2, n_embd=32, dropout=0.0),
                       intents=INTENTS, per_intent=12, val_fraction=0.25, n_out_of_scope=16,
                       max_threshold_cost=0.5, ema_decay=0.5, polish_steps=2, polish_questions=2,
                       intent_ngram_buckets=1024, ngram_steps=5, threads=1)


def hold_at_gate() -> None:
    gate = os.environ.get("TINY_TRAINING_GATE")
    if gate:
        report(0.42, "main loop")
        while not Path(gate).exists():  # the test's signal to go on; a child process, not the test, waits
            time.sleep(0.02)


def main() -> None:
    settings = load_settings()

    def train() -> None:
        hold_at_gate()
        train_custom(tiny_params(settings.custom_checkpoint_dir), progress=False, on_progress=report)

    run_child(train)


if __name__ == "__main__":
    main()
