"""Inference with the encoder model: tokenise, encode in length-sorted chunks, calibrated confidence.

The head's logits are mixed with those of a linear model over TF-IDF weighted word and character n-grams (the
custom model's llm/custom/ngram_intents.py) when the checkpoint has one: surface features that the encoder's
subwords miss, worth about half a point of accuracy. Where the CPU has bf16 units (AMX, AVX512-BF16) the weights
are held in bfloat16 for serving, which is 2-4x faster there than float32; elsewhere float32. Training calibrates
with the same predictor, so the temperature and the out-of-scope threshold fit the numbers that serving computes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from llm.custom.intent_scoring import mixed_logits
from llm.custom.ngram_intents import NgramIntentModel
from llm.custom.tokenizer import normalize_question
from llm.encoder.batches import pad, sorted_chunks, tokenize
from llm.encoder.calibration import calibrated
from llm.encoder.checkpoint import EncoderMeta, load_checkpoint
from llm.encoder.model import EncoderClassifier


@dataclass(frozen=True)
class EncoderIntent:
    label: str  # one of the checkpoint's labels; never out_of_scope (the threshold is the caller's)
    confidence: float  # calibrated probability of `label`
    prompt_tokens: int  # the question's tokens, [CLS] and [SEP] included
    tokenize_ms: float  # the whole batch's tokenisation
    model_ms: float  # the whole batch's encoder, head and n-gram model
    batch_size: int
    runner_up: tuple[str, float] | None = None  # the second most likely label and its calibrated probability


def bf16_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class EncoderPredictor:
    def __init__(self, model: EncoderClassifier, tokenizer, meta: EncoderMeta, bf16: bool | None = None,
                 chunk: int = 16, ngrams: NgramIntentModel | None = None):
        self.bf16 = bf16_supported() if bf16 is None else bf16
        self.model = model.eval().to(torch.bfloat16 if self.bf16 else torch.float32)
        self.tokenizer = tokenizer
        self.meta = meta
        self.ngrams = ngrams  # mixed in with weight meta.ngram_mix
        self.chunk = chunk  # rows encoded together after sorting by length

    @classmethod
    def load(cls, path: str | Path, bf16: bool | None = None) -> EncoderPredictor:
        model, tokenizer, meta, ngrams = load_checkpoint(path)
        return cls(model, tokenizer, meta, bf16, ngrams=ngrams)

    @torch.inference_mode()
    def logits(self, texts: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
        """(N, n_labels) float32 logits as served (n-grams mixed in), uncalibrated, and each question's token count."""
        rows = tokenize(self.tokenizer, texts, self.meta.max_length)
        return self._mixed(self._head_logits(rows), texts), [len(r) for r in rows]

    def _mixed(self, head: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        if self.ngrams is None or not self.meta.ngram_mix:
            return head
        return mixed_logits(head, self.ngrams.logits([normalize_question(t) for t in texts]), self.meta.ngram_mix)

    def _head_logits(self, rows: list[list[int]]) -> torch.Tensor:
        out = torch.empty((len(rows), len(self.meta.labels)))
        for chunk in sorted_chunks(rows, self.chunk):
            ids, mask = pad([rows[i] for i in chunk], self.tokenizer.pad_token_id)
            out[chunk] = self.model(ids, mask)
        return out

    @torch.inference_mode()
    def classify(self, texts: Sequence[str]) -> list[EncoderIntent]:
        if not texts:
            return []
        started = time.perf_counter()
        rows = tokenize(self.tokenizer, texts, self.meta.max_length)
        tokenized = time.perf_counter()
        logits = self._mixed(self._head_logits(rows), texts)
        confidence, index = calibrated(logits, self.meta.temperature)
        second = self._runner_up(logits)
        done = time.perf_counter()
        tokenize_ms, model_ms = (tokenized - started) * 1000, (done - tokenized) * 1000
        return [
            EncoderIntent(self.meta.labels[int(i)], float(c), len(row), tokenize_ms, model_ms, len(texts), r)
            for c, i, row, r in zip(confidence, index, rows, second, strict=True)
        ]

    def _runner_up(self, logits: torch.Tensor) -> list[tuple[str, float] | None]:
        """Each row's second label and its probability under the same calibrated softmax."""
        if logits.size(-1) < 2:
            return [None] * logits.size(0)
        p, i = torch.softmax(logits.float() / self.meta.temperature, dim=-1).topk(2, dim=-1)
        return [(self.meta.labels[int(j)], float(q)) for j, q in zip(i[:, 1], p[:, 1], strict=True)]
