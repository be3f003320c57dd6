"""A checkpoint appears whole or not at all: written beside its place and renamed in."""

from __future__ import annotations

import pytest
import torch

from llm.custom import checkpoint
from llm.custom.checkpoint import CheckpointMeta, checkpoint_exists, load_checkpoint, save_checkpoint
from llm.custom.tokenizer import BankTokenizer
from llm.custom.transformer import GPT, GPTConfig

LABELS = ("card_arrival", "exchange_rate")


def tiny(seed: int):
    tok = BankTokenizer.train(["where is my card", "exchange rate please"] * 3, LABELS, vocab_size=300)
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    meta = CheckpointMeta(gpt=config, labels=list(LABELS), kb_version="t", max_question_tokens=8, oos_threshold=0.5)
    return GPT(config).eval(), tok, meta


def crash_after_weights(monkeypatch):
    """The tokenizer's save raises: the weights are already on disk, the config is not."""

    def boom(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(BankTokenizer, "save", boom)


def same_weights(a: GPT, b: GPT) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_save_that_fails_half_way_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "models" / "custom"
    model, tok, meta = tiny(0)
    with monkeypatch.context() as patched:
        crash_after_weights(patched)
        with pytest.raises(OSError, match="disk full"):
            save_checkpoint(target, model, tok, meta)
    assert not checkpoint_exists(target) and not target.exists()
    assert list(target.parent.iterdir()) == []  # no partial directory left
    save_checkpoint(target, model, tok, meta)  # a later save is not blocked
    assert checkpoint_exists(target) and same_weights(load_checkpoint(target).model, model)
    assert [p.name for p in target.parent.iterdir()] == ["custom"]


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "custom"
    old, tok, meta = tiny(0)
    save_checkpoint(target, old, tok, meta)
    new, _, _ = tiny(1)
    with monkeypatch.context() as patched:
        crash_after_weights(patched)
        with pytest.raises(OSError):
            save_checkpoint(target, new, tok, meta)
    assert same_weights(load_checkpoint(target).model, old)
    save_checkpoint(target, new, tok, meta)  # replaced whole
    assert same_weights(load_checkpoint(target).model, new) and not same_weights(new, old)
    assert [p.name for p in tmp_path.iterdir()] == ["custom"]


def test_the_files_are_written_outside_the_target_until_complete(tmp_path, monkeypatch):
    """While the files are written, the target directory does not exist yet: nothing can load half of it."""
    target = tmp_path / "custom"
    seen = []
    write = checkpoint._write

    def watching(path, *args):
        write(path, *args)
        seen.append((path.parent == tmp_path, path != target, target.exists(), checkpoint_exists(path)))

    monkeypatch.setattr(checkpoint, "_write", watching)
    save_checkpoint(target, *tiny(0))
    assert seen == [(True, True, False, True)]  # a complete sibling, written before the target appeared
    assert checkpoint_exists(target)
