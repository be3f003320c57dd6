"""Whether the trained model's own answers are the knowledge base's, letter for letter."""

from __future__ import annotations

import torch

from llm.custom import data
from llm.custom.tokenizer import BankTokenizer
from llm.custom.transformer import GPT, KVCache


@torch.no_grad()
def exact_answers(model: GPT, tok: BankTokenizer, builder: data.SequenceBuilder, label_ids: torch.Tensor) -> float:
    """Share of intents whose greedy answer (cached decoding after the label, as served) is the KB entry.

    Only for a model whose answers see the label and answer alone, where that answer is the same after any
    question; NaN otherwise."""
    if model.config.answer_sees_question:
        return float("nan")
    model.eval()
    exact = 0
    for label, expected in enumerate(builder.answer_ids):
        cache = KVCache(model.config, 1, max_len=len(expected) + 1)
        intent = torch.tensor([label]) if model.config.n_intents else None
        position = builder.label_position
        logits = model.decode_step(label_ids[label : label + 1], torch.tensor([position]), cache, None, intent)
        generated: list[int] = []
        while len(generated) < len(expected) and tok.eos_id not in generated:
            generated.append(int(logits.argmax()))
            next_position = torch.tensor([position + len(generated)])
            logits = model.decode_step(torch.tensor(generated[-1:]), next_position, cache, None, intent)
        exact += generated == expected
    return exact / max(1, len(builder.answer_ids))
