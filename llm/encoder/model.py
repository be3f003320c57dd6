"""The intent model: a pretrained transformer encoder, mean pooling, L2 normalisation and a linear head.

Normalised sentence embeddings are what all-MiniLM-L6-v2 was trained to produce; the head starts as a linear
probe fitted on them (frozen encoder), then the encoder and head are fine-tuned together (LP-FT), which keeps
the pretrained features where the probe needs them instead of scrambling them with a random head's gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EncoderClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, n_labels: int):
        super().__init__()
        self.encoder = encoder  # a transformers AutoModel (BertModel for MiniLM)
        self.head = nn.Linear(encoder.config.hidden_size, n_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, H) unit-length mean of the token states, pads excluded; float32 whatever the compute dtype."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return F.normalize(mean.float(), dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, n_labels) intent logits (uncalibrated)."""
        return self.logits(self.embed(input_ids, attention_mask))

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(embeddings, self.head.weight.float(), self.head.bias.float())

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
