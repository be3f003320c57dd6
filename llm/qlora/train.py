"""Supervised fine-tuning of a causal LM on Banking77's train split with a LoRA adapter (QLoRA on a CUDA GPU).

The prompt is the question; the target is the intent label plus the knowledge base's answer (llm/qlora/prompting.py).
On a CUDA GPU the base is loaded in 4-bit NF4 through bitsandbytes (QLoRA); elsewhere plain LoRA in float32.

Trap (bitsandbytes 0.50 on CPU): running inference on a 4-bit model before training repacks its weights for
inference and LoRA then silently stops learning. So this function always trains a freshly loaded model and
never generates with it before the last optimiser step.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm.banking77 import load_split
from llm.knowledge_base import load_knowledge_base
from llm.qlora.backend import require
from llm.qlora.prompting import encode_example

DEFAULT_BASE = "meta-llama/Llama-3.1-8B-Instruct"
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
REPORT_FILE = "training_report.json"


@dataclass
class TrainReport:
    base: str
    out: str
    device: str  # "cuda" or "cpu"
    quantized: bool  # True when the base was loaded in 4-bit NF4 (QLoRA)
    examples: int  # training examples used
    steps: int
    seconds: float
    first_loss: float  # mean loss of the first few steps
    last_loss: float  # mean loss of the last few steps
    trainable_params: int
    knowledge_base_version: str
    config: dict[str, Any] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)  # one per step


def train_qlora(
    base: str = DEFAULT_BASE,
    out: str | Path = Path("models/qlora"),
    *,
    max_steps: int | None = None,  # None: one pass over the (limited) data
    limit: int | None = None,  # use only this many training examples
    r: int = 16,  # LoRA rank
    alpha: int = 32,  # LoRA scaling numerator (scale = alpha / r)
    dropout: float = 0.05,  # dropout on the LoRA branch
    target_modules: tuple[str, ...] | list[str] = DEFAULT_TARGET_MODULES,
    lr: float = 2e-4,
    seed: int = 1337,
    batch_size: int = 8,
    max_length: int = 256,  # longer examples are truncated (the label comes first, so it survives)
    quantize: bool | None = None,  # None: 4-bit NF4 exactly when CUDA is available
    progress: bool = True,
) -> TrainReport:
    torch = require("torch")
    transformers = require("transformers")
    peft = require("peft")
    out = Path(out)
    random.seed(seed)
    torch.manual_seed(seed)
    started = time.perf_counter()

    cuda = torch.cuda.is_available()
    quantize = cuda if quantize is None else quantize
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = _load_fresh_model(transformers, torch, base, cuda=cuda, quantize=quantize)
    if quantize:
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    lora = peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
        bias="none", task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    kb = load_knowledge_base()
    examples = load_split("train")
    random.Random(seed).shuffle(examples)
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise ValueError("no training examples (limit=0?)")
    encoded = [encode_example(tokenizer, ex.text, ex.intent, kb.answer(ex.intent)) for ex in examples]
    encoded = [(ids[:max_length], labels[:max_length]) for ids, labels in encoded]
    steps = max_steps if max_steps is not None else math.ceil(len(encoded) / batch_size)

    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    losses = _train_loop(torch, model, optimizer, encoded, steps, batch_size, tokenizer.pad_token_id, device,
                         seed, progress)

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    head = losses[: min(5, len(losses))]
    tail = losses[-min(5, len(losses)):]
    report = TrainReport(
        base=base, out=str(out), device="cuda" if cuda else "cpu", quantized=bool(quantize),
        examples=len(encoded), steps=steps, seconds=round(time.perf_counter() - started, 2),
        first_loss=sum(head) / len(head), last_loss=sum(tail) / len(tail), trainable_params=trainable,
        knowledge_base_version=kb.version, losses=losses,
        config={"r": r, "alpha": alpha, "dropout": dropout, "target_modules": list(target_modules), "lr": lr,
                "seed": seed, "batch_size": batch_size, "max_length": max_length, "limit": limit,
                "max_steps": max_steps},
    )
    (out / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2))
    return report


def _load_fresh_model(transformers: Any, torch: Any, base: str, *, cuda: bool, quantize: bool) -> Any:
    """A newly loaded base model: never one that has already generated (see the module docstring)."""
    if quantize:
        require("bitsandbytes")
        config = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if cuda else torch.float32,
        )
        return transformers.AutoModelForCausalLM.from_pretrained(
            base, quantization_config=config, dtype=torch.bfloat16 if cuda else torch.float32,
            device_map={"": 0} if cuda else {"": "cpu"},
        )
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if cuda else torch.float32)
    return model.to("cuda" if cuda else "cpu")


def _train_loop(torch, model, optimizer, encoded, steps, batch_size, pad_id, device, seed, progress) -> list[float]:
    order = list(range(len(encoded)))
    rng = random.Random(seed + 1)
    rng.shuffle(order)
    losses: list[float] = []
    model.train()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="qlora", unit="step")
    cursor = 0
    for _ in range(steps):
        if cursor + batch_size > len(order):  # next epoch: reshuffle
            rng.shuffle(order)
            cursor = 0
        batch = [encoded[i] for i in order[cursor:cursor + batch_size]]
        cursor += batch_size
        input_ids, labels, mask = _pad(torch, batch, pad_id)
        loss = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    return losses


def _pad(torch, batch, pad_id):
    """Right-pads a batch: (input_ids B×T, labels B×T with -100 on padding, attention_mask B×T)."""
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        mask[row, : len(ids)] = 1
    return input_ids, labels, mask
