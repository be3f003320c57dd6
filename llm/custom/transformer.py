"""A small decoder-only GPT in the spirit of nanoGPT, with a preallocated KV cache for generation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 3000  # BPE pieces + specials + one token per intent label
    block_size: int = 208  # position ids: question (to 66), then label + answer or up to 141 generated tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.1
    bias: bool = True  # biases in Linears and LayerNorms
    ngram_buckets: int = 0  # hashed word/char n-gram buckets whose mean is added at <sep>; 0 = none
    token_ngrams: bool = False  # also add each question token's word char-n-gram mean to its input
    n_intents: int = 0  # intents whose embedding is added to the label and every answer token; 0 = none
    answer_sees_question: bool = True  # False: the label and answer tokens attend only to each other, so the
    # answer is a function of the decoded intent alone, the same for every question of that intent

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of every layer for up to `max_len` positions, written in place as decoding advances."""

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int | None = None, dtype=torch.float32):
        max_len = max_len or config.block_size
        head_dim = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.length = 0  # positions filled so far
        self.start = 0  # keys before this position are hidden from the tokens that come next

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) at the next positions; return the keys and values from `start` on."""
        end = self.length + k.size(2)
        if end > self.k.size(3):
            raise ValueError(f"KV cache holds {self.k.size(3)} positions, {end} requested")
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, self.start : end], self.v[layer, :, :, self.start : end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x, layer: int, cache: KVCache | None, mask: torch.Tensor | None, last_only: bool = False):
        """last_only: keys and values of every position (into the cache), the output of the last one alone."""
        B, T, C = x.size()  # batch, sequence length, n_embd
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        past = cache.length if cache is not None else 0
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, nh, past + T, hs)
        dropout = self.dropout if self.training else 0.0
        if last_only:  # one query, the last position, which may see every key
            q, T, past = q[:, :, -1:], 1, past + T - 1
            mask = mask[:, :, -1:] if mask is not None else None
        if mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        else:  # causal over the new positions; a single new token sees every cached one
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=T > 1 and past == 0)
            if T > 1 and past > 0:
                raise ValueError("several new tokens after a filled cache need an explicit mask")
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, index: int):
        super().__init__()
        self.index = index
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache: KVCache | None, mask: torch.Tensor | None, last_only: bool = False):
        y = self.attn(self.ln_1(x), self.index, cache, mask, last_only)
        x = (x[:, -1:] if last_only else x) + y
        return x + self.mlp(self.ln_2(x))

    def step(self, x: torch.Tensor, cache: KVCache, key_mask: torch.Tensor | None) -> torch.Tensor:
        """forward() of one new token per row, x (B, C), in inference: the same arithmetic in half the ops.

        Decoding at batch 1 costs what its ops cost to dispatch, not their arithmetic; key_mask (B, 1, 1, S).
        """
        B, C = x.size()
        attn, mlp = self.attn, self.mlp
        h = F.layer_norm(x, (C,), self.ln_1.weight, self.ln_1.bias)
        q, k, v = F.linear(h, attn.c_attn.weight, attn.c_attn.bias).view(B, 3, attn.n_head, 1, -1).unbind(1)
        k, v = cache.append(self.index, k, v)  # (B, nh, S, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)  # (B, nh, 1, hs)
        x = x + F.linear(y.reshape(B, C), attn.c_proj.weight, attn.c_proj.bias)
        h = F.layer_norm(x, (C,), self.ln_2.weight, self.ln_2.bias)
        h = F.gelu(F.linear(h, mlp.c_fc.weight, mlp.c_fc.bias), approximate="tanh")
        return x + F.linear(h, mlp.c_proj.weight, mlp.c_proj.bias)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        if config.ngram_buckets:
            self.wng = nn.EmbeddingBag(config.ngram_buckets, config.n_embd, mode="mean")
        if config.n_intents:  # the answer knows its intent at every token, not only through attention
            self.wie = nn.Embedding(config.n_intents, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

    def hidden(
        self, idx, positions=None, cache: KVCache | None = None, mask=None, bag=None, intent=None, last_only=False
    ):
        """Final-layer states (B, T, n_embd) of tokens idx (B, T).

        positions (B, T) default to cache.length + arange(T). mask (B, 1, T, S) is True where a query may
        attend to a key (S = cached + new positions); None means plain causal attention.
        bag = (indices, offsets, rows, cols): n-gram bags (EmbeddingBag layout) whose mean embeddings are
        added to the inputs at (rows[k], cols[k]): a question's bag at its <sep>, a word's at its tokens.
        intent = (labels (B,), where (B, T) bool): each row's intent embedding is added where `where` is True.
        last_only: only the last position's state (B, 1, n_embd); the cache still gets every position.
        """
        B, T = idx.size()
        past = cache.length if cache is not None else 0
        if positions is None:
            positions = torch.arange(past, past + T, dtype=torch.long).unsqueeze(0)
        x = self.wte(idx) + self.wpe(positions)
        if bag is not None:
            indices, offsets, rows, cols = bag
            x = x.index_put((rows, cols), self.wng(indices, offsets).to(x.dtype), accumulate=True)
        if intent is not None:
            labels, where = intent
            x = x + self.wie(labels.clamp(min=0)).unsqueeze(1) * where.unsqueeze(-1)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, mask, last_only and i == len(self.blocks) - 1)
        if cache is not None:
            cache.length += T
        return self.ln_f(x)

    @torch.inference_mode()
    def decode_step(
        self, idx: torch.Tensor, positions: torch.Tensor, cache: KVCache, key_mask=None, intent=None
    ) -> torch.Tensor:
        """Next-token logits (B, vocab_size) after one new token per row: idx and positions (B,).

        The hot loop of generation: equal to forward(idx[:, None], positions[:, None], cache, mask)[:, -1],
        with key_mask (B, 1, 1, S) True where the new token may attend (None: every cached position), and
        intent (B,) the decoded intents whose embeddings the label and answer tokens get.
        """
        x = self.wte(idx) + self.wpe(positions)  # (B, C)
        if intent is not None:
            x = x + self.wie(intent)
        for block in self.blocks:
            x = block.step(x, cache, key_mask)
        cache.length += 1
        return self.lm_head(F.layer_norm(x, x.shape[-1:], self.ln_f.weight, self.ln_f.bias))

    def forward(self, idx, positions=None, cache: KVCache | None = None, mask=None, bag=None, intent=None):
        """Logits (B, T, vocab_size) of the next token at every position."""
        return self.lm_head(self.hidden(idx, positions, cache, mask, bag, intent))
