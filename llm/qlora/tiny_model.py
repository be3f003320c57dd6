"""A tiny, randomly initialised Llama with a locally trained byte-level BPE tokenizer and a simple chat template.

It stands in for Llama 3.1-8B where neither the weights nor a GPU are at hand: the CPU tests train LoRA adapters
on it, and scripts/gpu_check.py serves it through vLLM with a random adapter (build_random_adapter). Nothing is
downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llm.qlora.backend import require

# A minimal chat format; the assistant turn ends with <|end|>, which is also the eos token.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


@dataclass
class TinyLlamaConfig:
    hidden_size: int = 64  # 256 for vLLM on GPU: its attention kernels want head_dim >= 32
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    vocab_size: int = 1024  # BPE merges learnt up to this size
    max_positions: int = 512
    init_std: float = 0.2  # large enough that a frozen random lm_head can still express a confident choice
    dtype: str = "float32"  # "bfloat16" for vLLM on GPU
    chat_template: bool = True  # False: a base model with no template (the plain prompt format)
    seed: int = 0


def build_tiny_llama(path: str | Path, texts: Iterable[str], config: TinyLlamaConfig | None = None) -> Path:
    """Writes a tokenizer and a random LlamaForCausalLM to `path`, loadable with from_pretrained (and vLLM)."""
    torch = require("torch")
    transformers = require("transformers")
    tokenizers = require("tokenizers")
    config = config or TinyLlamaConfig()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    bpe = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None))
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=config.vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|bos|>", eos_token="<|end|>", pad_token="<|pad|>",
    )
    if config.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    torch.manual_seed(config.seed)
    llama_config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_positions,
        initializer_range=config.init_std,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.LlamaForCausalLM(llama_config)
    model = model.to(getattr(torch, config.dtype))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path


def build_random_adapter(base: str | Path, path: str | Path, *, r: int = 16, alpha: int = 32) -> Path:
    """Writes a LoRA adapter with random A and B (so it really changes the output) and the base's tokenizer to
    `path`: an adapter that loads and serves like a trained one, without the training."""
    transformers = require("transformers")
    peft = require("peft")
    from llm.qlora.train import DEFAULT_TARGET_MODULES

    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    lora = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=list(DEFAULT_TARGET_MODULES), task_type="CAUSAL_LM",
                           init_lora_weights=False)
    path = Path(path)
    peft.get_peft_model(model, lora).save_pretrained(path)
    transformers.AutoTokenizer.from_pretrained(base).save_pretrained(path)
    return path
