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
from llm.custom.data import SequenceBuilder, isolating_mask, label_position
from llm.custom.intent_scoring import mixed_logits
from llm.custom.ngram_intents import NgramIntentModel
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, KVCache


@dataclass(frozen=True)
class Intent:
    label: str  # one of the checkpoint's labels; never out_of_scope (the threshold is the caller's)
    confidence: float  # the label's probability under the constraint
    prompt_tokens: int
    runner_up: tuple[str, float] | None = None  # the second most likely label and its probability, same scale


@dataclass(frozen=True)
class Reply:
    intent: Intent
    answer: str  # the model's own generated answer
    completion_tokens: int  # label tokens + answer tokens (+ <eos>)
    finished: bool  # the model ended its answer with <eos> within the token budget
    intent_ms: float  # time until the intent was decoded (shared by the whole batch)
    batch_size: int  # rows decoded together with this one


class _Decoder:
    """Lockstep decoding state of one batch: KV cache, which cached keys each new token may see, next positions."""

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
        valid = torch.zeros((B, T), dtype=torch.bool)
        for row, p in enumerate(prompts):
            idx[row, T - len(p) :] = torch.tensor(p)
            valid[row, T - len(p) :] = True
        self.next_pos = torch.full((B,), label_position, dtype=torch.long)  # label and answer: fixed positions
        # keys visible to the label and answer tokens: the prompt's real tokens, or, where the model keeps its
        # answers to the intent alone, none of the prompt (the cache then hands out keys from T on)
        self.visible = torch.zeros((B, T + extra_len), dtype=torch.bool)
        self.visible[:, :T] = valid
        self.needs_mask = model.config.answer_sees_question and not bool(valid.all())  # else: plain attention
        bag = None  # the questions' n-gram bags: every <sep> is last, question j starts after its pads and <bos>
        if bags is not None:
            starts = [T - len(p) + 1 for p in prompts]
            bag = bags.question_bag([p[1:-1] for p in prompts], torch.full((B,), T - 1), starts)
        if bool(valid.all()):
            self.logits = self._last_logits(model.hidden(idx, cache=self.cache, bag=bag, last_only=True))
        else:
            positions = (valid.cumsum(dim=1) - 1).clamp(min=0)
            causal = torch.ones((T, T), dtype=torch.bool).tril()
            mask = causal & (valid[:, None, :] | torch.eye(T, dtype=torch.bool))  # pads see themselves
            self.logits = self._last_logits(
                model.hidden(idx, positions, self.cache, mask.unsqueeze(1), bag, last_only=True)
            )

        if not model.config.answer_sees_question:
            self.cache.start = T

    def _last_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(h[:, -1])  # (B, vocab)

    def step(self, tokens: torch.Tensor, fed: torch.Tensor | None = None, intent: torch.Tensor | None = None) -> None:
        """Feed one token per row, tokens (B,); rows where `fed` is False feed a pad that later tokens ignore.

        intent (B,): each row's decoded intent, for a model that conditions its answer tokens on it."""
        at = self.cache.length
        self.visible[:, at] = True if fed is None else fed
        if fed is not None and not bool(fed.all()):
            self.needs_mask = True
        key_mask = self.visible[:, None, None, self.cache.start : at + 1] if self.needs_mask else None
        if not self.model.config.n_intents:
            intent = None
        self.logits = self.model.decode_step(tokens.clamp(min=0), self.next_pos, self.cache, key_mask, intent)
        self.next_pos = self.next_pos + (1 if fed is None else fed.long())


def _runner_up(label_logits: torch.Tensor, labels: tuple[str, ...]) -> list[tuple[str, float] | None]:
    """Each row's second most likely label and its probability (one token per label: the softmax over the label
    tokens is the constrained distribution, temperature included)."""
    if label_logits.size(-1) < 2:
        return [None] * label_logits.size(0)
    p, i = torch.softmax(label_logits.float(), dim=-1).topk(2, dim=-1)
    return [(labels[int(j)], float(q)) for j, q in zip(i[:, 1], p[:, 1], strict=True)]


class Predictor:
    def __init__(
        self, model: GPT, tokenizer: BankTokenizer, meta: CheckpointMeta, ngrams: NgramIntentModel | None = None
    ):
        self.model = model.eval()
        self.ngrams = ngrams.eval() if ngrams is not None else None  # the n-gram half of the intent head
        self.tok = tokenizer
        self.meta = meta
        self.labels = tuple(meta.labels)
        self.trie = LabelTrie([[i] for i in tokenizer.label_ids])
        self.label_ids = torch.tensor(tokenizer.label_ids)
        self.temperature = 1.0  # of the intent softmax; llm.custom.calibration fits it on validation
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
        checkpoint = load_checkpoint(path)
        return cls(checkpoint.model, checkpoint.tokenizer, checkpoint.meta, checkpoint.ngrams)

    def prompt_ids(self, text: str) -> list[int]:
        q = self.tok.encode(normalize_question(text))[: self.meta.max_question_tokens]
        return [self.tok.bos_id, *q, self.tok.sep_id]

    def _decode_intents(
        self, dec: _Decoder, prompts: list[list[int]], texts: list[str]
    ) -> tuple[list[Intent], list[int], torch.Tensor]:
        """The constrained intents, each row's last label token (not yet fed to the model), the label indices."""
        B = len(prompts)
        if self.ngrams is not None and float(self.ngrams.mix):  # the label logits at <sep>: transformer + n-grams
            wide = self.ngrams.logits([normalize_question(t) for t in texts])
            dec.logits[:, self.label_ids] = mixed_logits(dec.logits[:, self.label_ids], wide, self.ngrams.mix)
        if self.temperature != 1.0:
            dec.logits[:, self.label_ids] /= self.temperature
        runner_up = _runner_up(dec.logits[:, self.label_ids], self.labels) if self.max_label_tokens == 1 else [None] * B
        prefixes: list[list[int]] = [[] for _ in range(B)]
        confidence = torch.ones(B)
        while True:
            chosen, probs = constrained_step(dec.logits, self.trie, prefixes)
            confidence *= probs
            if all(self.trie.is_complete(p) for p in prefixes):
                break
            dec.step(torch.tensor(chosen), torch.tensor([c >= 0 for c in chosen]))
        indices = [self.trie.label_at[tuple(p)] for p in prefixes]
        intents = [Intent(self.labels[i], float(c), len(q), r)
                   for i, c, q, r in zip(indices, confidence, prompts, runner_up, strict=True)]
        return intents, [p[-1] for p in prefixes], torch.tensor(indices)

    @torch.inference_mode()
    def classify(self, texts: list[str], chunk: int = 16) -> list[Intent]:
        """The intents of `texts`, decoded in chunks of similar prompt length, so little is spent on padding."""
        prompts = [self.prompt_ids(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(prompts[i]))
        intents: list[Intent] = [None] * len(texts)  # type: ignore[list-item]
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            batch = [prompts[i] for i in rows]
            dec = _Decoder(self.model, batch, self.tok.pad_id, self.max_label_tokens, self.label_position, self.bags)
            for i, intent in zip(rows, self._decode_intents(dec, batch, [texts[i] for i in rows])[0], strict=True):
                intents[i] = intent
        return intents

    @property
    def answers_follow_intent(self) -> bool:
        """The answer tokens attend to the label and the answer only: each intent has exactly one answer."""
        return not self.model.config.answer_sees_question

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
        intents, tokens, intent_index = self._decode_intents(dec, prompts, texts)
        intent_ms = (time.perf_counter() - started) * 1000
        skip = [i.confidence < min_confidence for i in intents]
        answers = self._answers(dec, tokens, intent_index, skip, max_answer_tokens)
        return [Reply(intent, *answer, intent_ms, len(texts)) for intent, answer in zip(intents, answers, strict=True)]

    @torch.inference_mode()
    def answers_for(self, labels: list[str], max_answer_tokens: int = 128) -> list[tuple[str, int, bool]]:
        """(answer, completion tokens, finished) of each intent, generated as respond() does after that intent.

        Only for a model whose answers follow the intent alone (answers_follow_intent): the label and answer
        tokens see no question, so an empty one stands in for all of them.
        """
        if not self.answers_follow_intent:
            raise ValueError("this model's answers depend on the question: generate them with respond()")
        index = [self.labels.index(label) for label in labels]
        prompts = [[self.tok.bos_id, self.tok.sep_id]] * len(labels)
        extra = self.max_label_tokens + max_answer_tokens
        dec = _Decoder(self.model, prompts, self.tok.pad_id, extra, self.label_position)  # no bag: nothing sees it
        label_tokens = [self.tok.label_ids[i] for i in index]
        return self._answers(dec, label_tokens, torch.tensor(index), [False] * len(labels), max_answer_tokens)

    def _answers(
        self, dec: _Decoder, label_tokens: list[int], intent_index: torch.Tensor, skip: list[bool], max_tokens: int
    ) -> list[tuple[str, int, bool]]:
        """Greedy answers after each row's label token (fed first), in lockstep; rows in `skip` get none.

        Returns (answer, completion tokens: label + answer + <eos>, finished with <eos> within the budget)."""
        B = len(label_tokens)
        room = self.model.config.block_size - self.label_position - self.max_label_tokens
        budget = min(max_tokens, room)
        answers: list[list[int]] = [[] for _ in range(B)]
        done = list(skip)
        fed = torch.tensor([not d for d in done]) if any(done) else None  # None: every row is decoding
        next_tokens = torch.tensor(label_tokens)
        for _ in range(budget if not all(done) else 0):
            dec.step(next_tokens, fed, intent_index)
            next_tokens = dec.logits.argmax(dim=-1)  # (B,)
            for row, tok in enumerate(next_tokens.tolist()):
                if not done[row]:
                    answers[row].append(tok)
                    done[row] = tok == self.tok.eos_id
            if all(done):
                break
            fed = torch.tensor([not d for d in done]) if any(done) else None
        return [
            (
                self.tok.decode([t for t in ans if t != self.tok.eos_id]).strip(),
                self.max_label_tokens + len(ans),
                bool(ans) and ans[-1] == self.tok.eos_id,
            )
            for ans in answers
        ]

    @torch.inference_mode()
    def generate_tokens(self, prompt: list[int], n_tokens: int, use_cache: bool = True) -> list[int]:
        """Exactly `n_tokens` greedy tokens after `prompt` (batch 1, <eos> ignored): for speed measurements.

        The tokens are conditioned on the prompt's most likely intent (for a model with intent embeddings).
        """
        dec = _Decoder(self.model, [prompt], self.tok.pad_id, n_tokens, self.label_position, self.bags)
        intent = dec.logits[:, self.label_ids].argmax(dim=-1)  # (1,)
        if use_cache:
            out = [dec.logits.argmax(dim=-1)]  # (1,)
            while len(out) < n_tokens:
                dec.step(out[-1], intent=intent)
                out.append(dec.logits.argmax(dim=-1))
            return torch.cat(out).tolist()
        bag = self.bags.question_bag([prompt[1:-1]], torch.tensor([len(prompt) - 1])) if self.bags else None
        seq = list(prompt)
        for _ in range(n_tokens):
            generated = len(seq) - len(prompt)
            positions = [*range(len(prompt)), *range(self.label_position, self.label_position + generated)]
            after_sep = torch.tensor([[i >= len(prompt) for i in range(len(seq))]])
            conditioned = (intent, after_sep) if self.model.config.n_intents else None
            mask = None if self.model.config.answer_sees_question else isolating_mask(after_sep)
            idx, pos = torch.tensor([seq]), torch.tensor([positions])
            h = self.model.hidden(idx, pos, mask=mask, bag=bag, intent=conditioned)
            seq.append(int(self.model.lm_head(h[:, -1])[0].argmax()))
        return seq[len(prompt) :]
