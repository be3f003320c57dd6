"""A byte-level BPE tokenizer trained on Banking77's train texts, with one dedicated token per intent label.

Questions are normalized (NFKC, lower case, single spaces) before encoding; answers keep their case, and
byte-level BPE decodes any token sequence back to exactly the text it came from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, BOS, SEP, EOS = "<|pad|>", "<|bos|>", "<|sep|>", "<|eos|>"
SPECIALS = (PAD, BOS, SEP, EOS)
_SPACES = re.compile(r"\s+")


def normalize_question(text: str) -> str:
    """What the model sees of a user's question: NFKC, lower case, whitespace collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def label_token(label: str) -> str:
    return f"<|{label}|>"


class BankTokenizer:
    """Wraps a `tokenizers.Tokenizer`; knows the special and label tokens by id."""

    def __init__(self, tokenizer: Tokenizer, labels: Sequence[str]):
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        ids = {tok: tokenizer.token_to_id(tok) for tok in (*SPECIALS, *map(label_token, self.labels))}
        missing = [tok for tok, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens: {missing[:5]}")
        self.pad_id, self.bos_id, self.sep_id, self.eos_id = (ids[t] for t in SPECIALS)
        self.label_ids = tuple(ids[label_token(label)] for label in self.labels)  # label index -> token id

    @classmethod
    def train(cls, texts: Iterable[str], labels: Sequence[str], vocab_size: int = 3000) -> BankTokenizer:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        specials = [*SPECIALS, *map(label_token, labels)]
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok, labels)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        self.tokenizer.save(str(path))

    @classmethod
    def load(cls, path: str | Path, labels: Sequence[str]) -> BankTokenizer:
        return cls(Tokenizer.from_file(str(path)), labels)
