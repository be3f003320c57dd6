"""Confidence that means what it says: temperature scaling (Guo et al., 2017) fitted on the validation slice.

confidence = max softmax(logits / T). One scalar T > 0 changes no prediction, only how sure they sound; it is the
T that minimises the negative log-likelihood of held-out targets: the validation slice's labels, and a uniform
distribution for held-out non-banking prompts. Without the latter, a validation slice that the model gets entirely
right drives T towards 0 and every prompt, a greeting included, towards a confidence of 1. The out-of-scope
threshold is then tuned on these calibrated confidences (llm.custom.intent_scoring.tune_threshold, shared with
the custom model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, steps: int = 200) -> float:
    """The temperature minimising NLL of `targets` (N class indices, or N distributions) under softmax(logits / T);
    1.0 without data."""
    if len(targets) == 0:
        return 1.0
    logits = logits.detach().float().clone()  # may come from inference mode
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def calibrated(logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, label index) per row: the top class's probability under softmax(logits / T)."""
    return torch.softmax(logits.float() / temperature, dim=-1).max(dim=-1)
