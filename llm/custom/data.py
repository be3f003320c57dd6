"""Training sequences: <bos> question <sep> <label> answer <eos>, with text augmentation and length-bucketed batches."""

from __future__ import annotations

import random
import string
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llm.banking77 import Example
from llm.custom.ngrams import bag_tensors, question_ngrams, token_word_ngrams
from llm.custom.tokenizer import BankTokenizer, normalize_question

OUT_OF_SCOPE_TARGET = -1  # label index of a synthetic non-banking prompt: uniform target over the intents


def select(examples: Sequence[Example], intents: Sequence[str] | None, per_intent: int | None) -> list[Example]:
    """The examples of `intents` only (None: all), at most the first `per_intent` of each (None: all), in order."""
    if intents is not None:
        wanted = set(intents)
        examples = [e for e in examples if e.intent in wanted]
    if per_intent is None:
        return list(examples)
    seen: dict[str, int] = {}
    kept = []
    for e in examples:
        seen[e.intent] = seen.get(e.intent, 0) + 1
        if seen[e.intent] <= per_intent:
            kept.append(e)
    return kept


def stratified_split(examples: Sequence[Example], fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): `fraction` of each intent's examples held out, deterministic under `seed`."""
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_intent[ex.intent].append(ex)
    rng = random.Random(seed)
    train, val = [], []
    for intent in sorted(by_intent):
        group = list(by_intent[intent])
        rng.shuffle(group)
        n_val = round(len(group) * fraction)
        val += group[:n_val]
        train += group[n_val:]
    return train, val


def augment(text: str, rng: random.Random, p_drop: float = 0.1, p_swap: float = 0.05, p_typo: float = 0.03) -> str:
    """Random word dropout, adjacent-word swaps and character typos (delete, insert, replace, transpose)."""
    words = text.split()
    if len(words) > 2:
        kept = [w for w in words if rng.random() >= p_drop]
        words = kept or words
    for i in range(len(words) - 1):
        if rng.random() < p_swap:
            words[i], words[i + 1] = words[i + 1], words[i]
    for i, word in enumerate(words):
        if len(word) > 3 and rng.random() < p_typo:
            j = rng.randrange(len(word))
            kind = rng.randrange(4)
            if kind == 0:
                word = word[:j] + word[j + 1 :]
            elif kind == 1:
                word = word[:j] + rng.choice(string.ascii_lowercase) + word[j:]
            elif kind == 2:
                word = word[:j] + rng.choice(string.ascii_lowercase) + word[j + 1 :]
            elif j < len(word) - 1:
                word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
            words[i] = word
    return " ".join(words)


@dataclass
class Batch:
    idx: torch.Tensor  # (B, T) input tokens, right-padded
    targets: torch.Tensor  # (B, T) next tokens; pad where no language-model loss applies
    answer_mask: torch.Tensor  # (B, T) True where the target is an answer token (or its <eos>)
    sep_pos: torch.Tensor  # (B,) position of <sep>, whose output predicts the intent
    label: torch.Tensor  # (B,) intent index, or OUT_OF_SCOPE_TARGET
    positions: torch.Tensor  # (B, T) position ids: the label and answer start at a fixed position
    bag: tuple | None = None  # (indices, offsets, rows, cols): hashed n-gram bags, see GPT.hidden
    intent: tuple | None = None  # (label (B,), where (B, T)): the label and answer tokens, see GPT.hidden
    attention: torch.Tensor | None = None  # (B, 1, T, T) where answers may not see questions; None: causal


class SequenceBuilder:
    """Turns (question, label index) pairs into padded tensors for one training step."""

    def __init__(
        self,
        tokenizer: BankTokenizer,
        answers: Sequence[str],
        max_question_tokens: int,
        ngram_buckets: int = 0,
        token_ngrams: bool = False,
        isolate_answers: bool = False,
    ):
        self.tok = tokenizer
        self.isolate_answers = isolate_answers  # the label and answer tokens attend to each other only
        self.max_q = max_question_tokens
        self.ngram_buckets = ngram_buckets
        self.token_ngrams = token_ngrams
        self._ngrams: dict[tuple[int, ...], tuple[list[int], list[list[int]]]] = {}  # question ids -> buckets
        self.answer_ids = [tokenizer.encode(a) + [tokenizer.eos_id] for a in answers]  # by label index
        self.label_position = label_position(max_question_tokens)

    def positions(self, prompt_len: int, total_len: int) -> list[int]:
        """0..prompt_len-1 for <bos> question <sep>; the label and answer from `label_position` on."""
        return list(range(prompt_len)) + list(range(self.label_position, self.label_position + total_len - prompt_len))

    def prompt_ids(self, question_ids: list[int]) -> list[int]:
        return [self.tok.bos_id, *question_ids[: self.max_q], self.tok.sep_id]

    def question_bag(self, questions: Sequence[list[int]], sep_pos: torch.Tensor, start: int | Sequence[int] = 1):
        """The n-gram bag argument of GPT.hidden for these questions (as the model sees them), or None.

        Each question's first token sits at `start` (per row, or the same for all), its <sep> at sep_pos.
        """
        if not self.ngram_buckets:
            return None
        starts = [start] * len(questions) if isinstance(start, int) else list(start)
        bags, rows, cols = [], [], []
        for row, q in enumerate(questions):
            whole, per_token = self.ngrams(q[: self.max_q])
            bags.append(whole)
            rows.append(row)
            cols.append(int(sep_pos[row]))
            bags += per_token
            rows += [row] * len(per_token)
            cols += range(starts[row], starts[row] + len(per_token))
        return (*bag_tensors(bags), torch.tensor(rows), torch.tensor(cols))

    def ngrams(self, question: Sequence[int]) -> tuple[list[int], list[list[int]]]:
        """(the whole question's buckets, each token's word buckets or nothing), cached by token ids."""
        key = tuple(question)
        if key not in self._ngrams:
            if len(self._ngrams) >= 100_000:  # bounded when a long-lived predictor uses it
                self._ngrams.clear()
            text = self.tok.decode(key)
            per_token = token_word_ngrams(self.pieces(key), self.ngram_buckets) if self.token_ngrams else []
            self._ngrams[key] = (question_ngrams(text, self.ngram_buckets), per_token)
        return self._ngrams[key]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.tok.decode([i]) for i in ids]

    def batch(self, items: Sequence[tuple[list[int], int, bool]]) -> Batch:
        """items: (question token ids, label index, whether to append the answer)."""
        seqs, seps = [], []
        for q_ids, label, with_answer in items:
            seq = self.prompt_ids(q_ids)
            seps.append(len(seq) - 1)
            if label != OUT_OF_SCOPE_TARGET:
                seq.append(self.tok.label_ids[label])
                if with_answer:
                    seq += self.answer_ids[label]
            seqs.append(seq)
        T = max(len(s) for s in seqs)
        pad = self.tok.pad_id
        idx = torch.full((len(seqs), T), pad, dtype=torch.long)
        targets = torch.full((len(seqs), T), pad, dtype=torch.long)
        answer_mask = torch.zeros((len(seqs), T), dtype=torch.bool)
        positions = torch.zeros((len(seqs), T), dtype=torch.long)
        after_sep = torch.zeros((len(seqs), T), dtype=torch.bool)
        for i, seq in enumerate(seqs):
            n = len(seq)
            after_sep[i, seps[i] + 1 : n] = True
            idx[i, :n] = torch.tensor(seq)
            positions[i, :n] = torch.tensor(self.positions(seps[i] + 1, n))
            targets[i, : n - 1] = torch.tensor(seq[1:])
            targets[i, seps[i]] = pad  # the intent is learned by its own (constrained) loss
            answer_mask[i, seps[i] + 1 : n - 1] = True  # from <label>, whose target is the answer's first token
        labels = torch.tensor([it[1] for it in items])
        sep_pos = torch.tensor(seps)
        bag = self.question_bag([it[0] for it in items], sep_pos)
        attention = isolating_mask(after_sep) if self.isolate_answers else None
        return Batch(idx, targets, answer_mask, sep_pos, labels, positions, bag, (labels, after_sep), attention)


def isolating_mask(after_sep: torch.Tensor) -> torch.Tensor:
    """(B, 1, T, T) causal attention in which a token after <sep> (label, answer, or the pads after them) sees
    no token up to <sep>: the answer depends on the question only through the label. after_sep (B, T)."""
    T = after_sep.size(1)
    causal = torch.ones((T, T), dtype=torch.bool).tril()
    return (causal & ~(after_sep[:, :, None] & ~after_sep[:, None, :])).unsqueeze(1)


def label_position(max_question_tokens: int) -> int:
    """Where the label token sits, whatever the question's length: after <bos>, the longest question and <sep>.

    The answer follows at fixed positions too, so its n-th token always has the same position embedding and
    the model can learn each answer as a function of (label, offset) alone.
    """
    return max_question_tokens + 2


def epoch_batches(
    questions: Sequence[list[int]], labels: Sequence[int], batch_size: int, rng: random.Random, p_answer: float
) -> list[list[tuple[list[int], int, bool]]]:
    """Shuffled batches of similar length (sorted within pools of 32 batches) to waste little on padding."""
    items = [
        (q, lab, lab != OUT_OF_SCOPE_TARGET and rng.random() < p_answer)
        for q, lab in zip(questions, labels, strict=True)
    ]
    rng.shuffle(items)
    pool = batch_size * 32
    batches = []
    for start in range(0, len(items), pool):
        chunk = sorted(items[start : start + pool], key=lambda it: (it[2], len(it[0])))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def encode_questions(tokenizer: BankTokenizer, texts: Sequence[str]) -> list[list[int]]:
    return tokenizer.encode_batch([normalize_question(t) for t in texts])
