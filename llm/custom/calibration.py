"""Temperature scaling of the custom model's intent confidence, fitted on the validation slice of train.csv.

confidence = max softmax(intent logits / T). T changes no prediction, only how sure the model sounds; it is
fitted (negative log-likelihood) on the slice of train.csv that training held out, never on test.csv. The
out-of-scope threshold is then re-tuned on the calibrated confidences, as training tunes it (validation +
synthetic non-banking prompts), so "below the threshold" keeps its meaning.

Works on a checkpoint already trained: ``bankbot calibrate --model custom`` (or ``fit_checkpoint``) writes
``calibration.json`` beside it; the adapter applies it when present. Training calls ``fit_checkpoint`` at its end.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from llm.banking77 import load_split
from llm.custom import data
from llm.custom.intent_scoring import intent_logits, mixed_logits, tune_threshold
from llm.custom.out_of_scope import synthetic_out_of_scope
from llm.custom.predictor import Predictor
from llm.custom.tokenizer import normalize_question
from llm.encoder.calibration import fit_temperature
from llm.routing.reliability import ece

CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    temperature: float
    oos_threshold: float  # re-tuned on the calibrated confidences
    n_validation: int
    ece_before: float | None  # on the validation slice
    ece_after: float | None


def load_calibration(checkpoint_dir: str | Path) -> Calibration | None:
    path = Path(checkpoint_dir) / CALIBRATION
    if not path.is_file():
        return None
    return Calibration(**json.loads(path.read_text()))


def label_logits(predictor: Predictor, texts: list[str]) -> torch.Tensor:
    """(N, labels) intent logits as the predictor scores them: transformer at <sep>, mixed with the n-grams."""
    tok, meta = predictor.tok, predictor.meta
    builder = predictor.bags or data.SequenceBuilder(tok, [], meta.max_question_tokens)
    deep = intent_logits(predictor.model, builder, data.encode_questions(tok, texts), predictor.label_ids)
    if predictor.ngrams is None or not float(predictor.ngrams.mix):
        return deep
    with torch.no_grad():
        wide = predictor.ngrams.logits([normalize_question(t) for t in texts])
    return mixed_logits(deep, wide, predictor.ngrams.mix)


def fit_checkpoint(checkpoint_dir: str | Path, *, write: bool = True) -> Calibration:
    """Fit T (and the threshold) for the checkpoint in `checkpoint_dir` on its own validation slice."""
    predictor = Predictor.load(checkpoint_dir)
    params = predictor.meta.train.get("params", {})
    seed, fraction = params.get("seed", 1337), params.get("val_fraction", 0.1)
    wanted = set(params.get("intents") or predictor.labels)
    examples = [e for e in load_split("train") if e.intent in wanted]
    _, val = data.stratified_split(examples, fraction, seed)
    index = {label: i for i, label in enumerate(predictor.labels)}
    val = [e for e in val if e.intent in index]
    logits = label_logits(predictor, [e.text for e in val])
    targets = torch.tensor([index[e.intent] for e in val], dtype=torch.long)
    temperature = fit_temperature(logits, targets)
    raw_conf, pred = torch.softmax(logits, dim=-1).max(dim=-1)
    conf = torch.softmax(logits / temperature, dim=-1).max(dim=-1).values
    correct = pred == targets
    oos = label_logits(predictor, synthetic_out_of_scope(200, seed=seed + 1))
    oos_conf = torch.softmax(oos / temperature, dim=-1).max(dim=-1).values
    threshold = tune_threshold(conf, correct, params.get("max_threshold_cost", 0.002), oos_conf,
                               params.get("oos_recall", 0.99))
    result = Calibration(temperature, threshold, len(val), ece(raw_conf.tolist(), correct.tolist()),
                         ece(conf.tolist(), correct.tolist()))
    if write:
        (Path(checkpoint_dir) / CALIBRATION).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result
