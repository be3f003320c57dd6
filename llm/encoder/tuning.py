"""What the validation slice decides once the weights are fixed, on the logits exactly as served: the weight of the
n-gram model next to the head, the temperature, and the out-of-scope threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from llm.custom.intent_scoring import choose_mix, mixed_logits, tune_threshold
from llm.custom.tokenizer import normalize_question
from llm.encoder.calibration import calibrated, fit_temperature
from llm.encoder.predictor import EncoderPredictor

MIX_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # n-gram weights tried; the smallest of the best on ties


@dataclass(frozen=True)
class Tuning:
    ngram_mix: float
    temperature: float
    oos_threshold: float
    head_val_accuracy: float  # the encoder's head alone
    val_accuracy: float  # as served, before the threshold
    oos_recall: float  # share of the held-out non-banking prompts below the threshold


def tune(predictor: EncoderPredictor, val_texts: Sequence[str], val_y: torch.Tensor, oos_fit: Sequence[str],
         oos_texts: Sequence[str], max_threshold_cost: float, oos_recall: float) -> Tuning:
    """Sets predictor.meta's ngram_mix, temperature and oos_threshold, and says what they give on validation.

    The temperature is fitted on the validation slice and the non-banking prompts `oos_fit` (uniform targets);
    the threshold is tuned on the validation slice and other non-banking prompts, `oos_texts`.
    """
    meta = predictor.meta
    meta.ngram_mix = 0.0
    head, _ = predictor.logits(val_texts)
    head_accuracy = _accuracy(head, val_y)
    if predictor.ngrams is not None and len(val_y):
        wide = predictor.ngrams.logits([normalize_question(t) for t in val_texts])
        meta.ngram_mix = choose_mix(head, wide, val_y, MIX_GRID)
        logits = mixed_logits(head, wide, meta.ngram_mix)
    else:
        logits = head
    oos_logits, _ = predictor.logits(oos_fit)  # with the mix just chosen
    n_labels = logits.size(1)
    targets = torch.cat([F.one_hot(val_y, n_labels).float(), torch.full((len(oos_fit), n_labels), 1 / n_labels)])
    meta.temperature = fit_temperature(torch.cat([logits, oos_logits]), targets)
    confidence, predicted = calibrated(logits, meta.temperature)
    oos_confidence, _ = calibrated(predictor.logits(oos_texts)[0], meta.temperature)
    meta.oos_threshold = tune_threshold(confidence, predicted == val_y, max_threshold_cost, oos_confidence,
                                        oos_recall)
    return Tuning(meta.ngram_mix, meta.temperature, meta.oos_threshold, head_accuracy, _accuracy(logits, val_y),
                  float((oos_confidence < meta.oos_threshold).float().mean()))


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(dim=-1) == labels).float().mean()) if len(labels) else 0.0
