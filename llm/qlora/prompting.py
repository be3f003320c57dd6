"""One prompt format for training and for every backend, so the adapter sees at serving time what it learnt.

The model is asked for the intent label on the first line and the knowledge base's answer after it. At
serving time generation stops at the first newline: only the label is needed, since the text the user sees
comes from the knowledge base, never from the model.
"""

from __future__ import annotations

from typing import Any

SYSTEM_PROMPT = (
    "You are a bank's customer support assistant. Reply with the intent label of the customer's "
    "question on the first line, then the answer."
)
LABEL_STOP = "\n"  # generation stops here: the first line is the label
MAX_LABEL_TOKENS = 24  # Banking77's longest label is ~12 Llama 3 tokens
MAX_ANSWER_TOKENS = 200  # a grounded answer: the label, a newline and the answer (entries are ~40-100 tokens)


def build_messages(question: str) -> list[dict[str, str]]:
    """The chat messages of one question (sent as-is to an OpenAI-compatible server)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question.strip()}]


def plain_prompt(question: str) -> str:
    """The prompt for a base model with no chat template."""
    return f"{SYSTEM_PROMPT}\nQuestion: {question.strip()}\nIntent:"


def target_text(intent: str, answer: str) -> str:
    """What the model learns to write after the prompt: the label, a newline, the answer."""
    return f"{intent}{LABEL_STOP}{answer}"


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, question: str) -> str:
    """The prompt text, in the tokenizer's chat template where it has one."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(build_messages(question), tokenize=False, add_generation_prompt=True)
    return plain_prompt(question)


def encode_example(tokenizer: Any, question: str, intent: str, answer: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one training example; labels are -100 on the prompt, so only the target is learnt."""
    prompt = render_prompt(tokenizer, question)
    target = " " + target_text(intent, answer)  # the plain format: "Intent: label"
    if has_chat_template(tokenizer):
        messages = build_messages(question) + [{"role": "assistant", "content": target_text(intent, answer)}]
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        # The template closes the assistant turn itself (e.g. <|eot_id|>); fall back to eos when the
        # rendered conversation does not extend the generation prompt.
        target = full[len(prompt):] if full.startswith(prompt) else target_text(intent, answer)
    prompt_ids = tokenizer(prompt, add_special_tokens=not has_chat_template(tokenizer))["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None and (not target_ids or target_ids[-1] != eos) and not _ends_turn(tokenizer, target):
        target_ids = target_ids + [eos]
    return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids


def _ends_turn(tokenizer: Any, target: str) -> bool:
    """True when the chat template already closed the turn with a special token."""
    if not has_chat_template(tokenizer):
        return False
    tail = target.rstrip()
    return any(tail.endswith(tok) for tok in getattr(tokenizer, "all_special_tokens", []) if tok)
