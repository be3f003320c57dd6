"""Inference with the custom GPT: constrained intent decoding, then the answer generated with the KV cache.

Batches are left-padded so that every row's prompt ends at the same position and rows decode in lockstep;
a key-padding mask hides the pads and positions count only real tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from llm.custom.checkpoint import CheckpointMeta, load_checkpoint
from llm.custom.constrained import LabelTrie, constrained_step
from llm.custom.data import SequenceBuilder, label_position
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, KVCache


@dataclass(frozen=True)
class Intent:
    label: str  # one of the checkpoint's labels; never out_of_scope (the threshold is the caller's)
    confidence: float  # the label's probability under the constraint
    prompt_tokens: int


@dataclass(frozen=True)
class Reply:
    intent: Intent
    answer: str  # the model's own generated answer
    completion_tokens: int  # label tokens + answer tokens (+ <eos>)
    finished: bool  # the model ended its answer with <eos> within the token budget
    intent_ms: float  # time until the intent was decoded (shared by the whole batch)
    batch_size: int  # rows decoded together with this one


class _Decoder:
    """Lockstep decoding state of one batch: KV cache, key validity and each row's next position."""

    def __init__(
        self,
        model: GPT,
        prompts: list[list[int]],
        pad_id: int,
        extra_len: int,
        label_position: int,
        bags: SequenceBuilder | None = None,
    ):
        self.model = model
        B, T = len(prompts), max(len(p) for p in prompts)
        self.cache = KVCache(model.config, B, max_len=T + extra_len)
        idx = torch.full((B, T), pad_id, dtype=torch.long)
        self.valid = torch.zeros((B, T), dtype=torch.bool)
        for row, p in enumerate(prompts):
            idx[row, T - len(p) :] = torch.tensor(p)
            self.valid[row, T - len(p) :] = True
        self.next_pos = torch.full((B,), label_position, dtype=torch.long)  # label and answer: fixed positions
        self.all_valid = bool(self.valid.all())  # no pads anywhere: plain causal attention, no mask needed
        bag = None  # the questions' n-gram bags: every <sep> is last, question j starts after its pads and <bos>
        if bags is not None:
            starts = [T - len(p) + 1 for p in prompts]
            bag = bags.question_bag([p[1:-1] for p in prompts], torch.full((B,), T - 1), starts)
        if self.all_valid:
            self.logits = self._last_logits(model.hidden(idx, cache=self.cache, bag=bag))
        else:
            positions = (self.valid.cumsum(dim=1) - 1).clamp(min=0)
            causal = torch.ones((T, T), dtype=torch.bool).tril()
            mask = causal & (self.valid[:, None, :] | torch.eye(T, dtype=torch.bool))  # pads see themselves
            self.logits = self._last_logits(model.hidden(idx, positions, self.cache, mask.unsqueeze(1), bag))

    def _last_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(h[:, -1])  # (B, vocab)

    def step(self, tokens: list[int], fed: torch.Tensor) -> None:
        """Feed one token per row; rows where `fed` is False feed a pad that later tokens ignore."""
        idx = torch.tensor(tokens, dtype=torch.long).clamp(min=0).unsqueeze(1)
        self.all_valid = self.all_valid and bool(fed.all())
        positions = self.next_pos.unsqueeze(1)
        if self.all_valid:  # the fast path of batch-1 decoding
            h = self.model.hidden(idx, positions, self.cache)
        else:
            filled = self.cache.length - self.valid.size(1)  # positions fed on the fast path: all valid
            if filled > 0:
                self.valid = torch.cat([self.valid, torch.ones((len(tokens), filled), dtype=torch.bool)], dim=1)
            self.valid = torch.cat([self.valid, fed.unsqueeze(1)], dim=1)
            h = self.model.hidden(idx, positions, self.cache, self.valid[:, None, None, :])
        self.next_pos = self.next_pos + fed.long()
        self.logits = self._last_logits(h)


class Predictor:
    def __init__(self, model: GPT, tokenizer: BankTokenizer, meta: CheckpointMeta):
        self.model = model.eval()
        self.tok = tokenizer
        self.meta = meta
        self.labels = tuple(meta.labels)
        self.trie = LabelTrie([[i] for i in tokenizer.label_ids])
        self.label_of_token = {tid: i for i, tid in enumerate(tokenizer.label_ids)}
        self.max_label_tokens = 1
        self.label_position = label_position(meta.max_question_tokens)
        config = model.config
        self.bags = (  # hashed n-grams of each question, when the model was trained with them
            SequenceBuilder(tokenizer, [], meta.max_question_tokens, config.ngram_buckets, config.token_ngrams)
            if config.ngram_buckets
            else None
        )

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        return cls(*load_checkpoint(path))

    def prompt_ids(self, text: str) -> list[int]:
        q = self.tok.encode(normalize_question(text))[: self.meta.max_question_tokens]
        return [self.tok.bos_id, *q, self.tok.sep_id]

    def _decode_intents(self, dec: _Decoder, prompts: list[list[int]]) -> tuple[list[Intent], list[int]]:
        """The constrained intents, and each row's last label token (not yet fed to the model)."""
        B = len(prompts)
        prefixes: list[list[int]] = [[] for _ in range(B)]
        confidence = torch.ones(B)
        while True:
            chosen, probs = constrained_step(dec.logits, self.trie, prefixes)
            confidence *= probs
            if all(self.trie.is_complete(p) for p in prefixes):
                break
            dec.step(chosen, torch.tensor([c >= 0 for c in chosen]))
        intents = [
            Intent(self.labels[self.trie.label_at[tuple(p)]], float(c), len(q))
            for p, c, q in zip(prefixes, confidence, prompts, strict=True)
        ]
        return intents, [p[-1] for p in prefixes]

    @torch.inference_mode()
    def classify(self, texts: list[str]) -> list[Intent]:
        prompts = [self.prompt_ids(t) for t in texts]
        dec = _Decoder(self.model, prompts, self.tok.pad_id, self.max_label_tokens, self.label_position, self.bags)
        return self._decode_intents(dec, prompts)[0]

    @torch.inference_mode()
    def respond(self, texts: list[str], max_answer_tokens: int = 128, min_confidence: float = 0.0) -> list[Reply]:
        """Intent, then the answer, greedily, for every text; the batch decodes in lockstep.

        Rows whose intent confidence is below `min_confidence` get no answer (the caller says out of scope).
        """
        started = time.perf_counter()
        prompts = [self.prompt_ids(t) for t in texts]
        dec = _Decoder(
            self.model,
            prompts,
            self.tok.pad_id,
            self.max_label_tokens + max_answer_tokens,
            self.label_position,
            self.bags,
        )
        intents, tokens = self._decode_intents(dec, prompts)
        intent_ms = (time.perf_counter() - started) * 1000
        B = len(texts)
        room = self.model.config.block_size - self.label_position - self.max_label_tokens
        budget = min(max_answer_tokens, room)
        answers: list[list[int]] = [[] for _ in range(B)]
        done = [i.confidence < min_confidence for i in intents]
        fed = torch.tensor([not d for d in done])
        for _ in range(budget if not all(done) else 0):
            dec.step(tokens, fed)
            nxt = dec.logits.argmax(dim=-1).tolist()
            for row, tok in enumerate(nxt):
                if not done[row]:
                    answers[row].append(tok)
                    done[row] = tok == self.tok.eos_id
            if all(done):
                break
            fed = torch.tensor([not d for d in done])
            tokens = nxt
        return [
            Reply(
                intent,
                self.tok.decode([t for t in ans if t != self.tok.eos_id]).strip(),
                self.max_label_tokens + len(ans),
                bool(ans) and ans[-1] == self.tok.eos_id,
                intent_ms,
                B,
            )
            for intent, ans in zip(intents, answers, strict=True)
        ]

    @torch.inference_mode()
    def generate_tokens(self, prompt: list[int], n_tokens: int, use_cache: bool = True) -> list[int]:
        """Exactly `n_tokens` greedy tokens after `prompt` (batch 1, <eos> ignored): for speed measurements."""
        if use_cache:
            dec = _Decoder(self.model, [prompt], self.tok.pad_id, n_tokens, self.label_position, self.bags)
            out = []
            for _ in range(n_tokens):
                out.append(int(dec.logits[0].argmax()))
                if len(out) < n_tokens:
                    dec.step(out[-1:], torch.ones(1, dtype=torch.bool))
            return out
        seq = list(prompt)
        for _ in range(n_tokens):
            generated = len(seq) - len(prompt)
            positions = [*range(len(prompt)), *range(self.label_position, self.label_position + generated)]
            h = self.model.hidden(torch.tensor([seq]), torch.tensor([positions]))
            seq.append(int(self.model.lm_head(h[:, -1])[0].argmax()))
        return seq[len(prompt) :]
