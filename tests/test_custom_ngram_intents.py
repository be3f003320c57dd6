"""The n-gram half of the intent head: TF-IDF features, fitting, and how the predictor mixes it in."""

from __future__ import annotations

import pytest
import torch

from llm.custom.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from llm.custom.intent_scoring import choose_mix
from llm.custom.ngram_intents import NgramIntentModel, ngram_counts
from llm.custom.predictor import Predictor
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, GPTConfig

LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card")
TRAIN = [
    ("i am still waiting on my card", 0),
    ("when will my new card arrive", 0),
    ("my card has not come in the post yet", 0),
    ("what is the exchange rate for euros", 1),
    ("how much is a dollar in pounds today", 1),
    ("which rate do you use to convert currency", 1),
    ("someone stole my card", 2),
    ("i lost my card on the train", 2),
    ("my wallet with the card was stolen", 2),
]


@pytest.fixture(scope="module")
def fitted() -> NgramIntentModel:
    model = NgramIntentModel(1 << 12, len(LABELS))
    model.fit([t for t, _ in TRAIN], torch.tensor([y for _, y in TRAIN]), steps=100)
    return model


def test_counts_hold_words_bigrams_trigrams_and_char_grams():
    counts = ngram_counts("lost card", 1 << 20)
    # 2 words + 1 bigram + char 1-5-grams of " lost " (6+5+4+3+2) and " card " (same)
    assert sum(counts.values()) == 2 + 1 + 2 * 20
    assert ngram_counts("", 97) and all(0 <= k < 97 for k in ngram_counts("my card is lost", 97))


def test_features_are_unit_length_tf_idf(fitted):
    indices, offsets, weights = fitted.features(["my card", "the exchange rate for my card"])
    assert offsets.tolist()[0] == 0 and len(indices) == len(weights)
    first, second = weights[: offsets[1]], weights[offsets[1] :]
    assert float(first.norm()) == pytest.approx(1.0) and float(second.norm()) == pytest.approx(1.0)
    assert float(fitted.idf.max()) > float(fitted.idf.min())  # rare n-grams weigh more than common ones


def test_fit_learns_the_training_questions(fitted):
    predicted = fitted.logits([t for t, _ in TRAIN]).argmax(dim=-1).tolist()
    assert predicted == [y for _, y in TRAIN]
    assert fitted.logits(["has my card arrived"]).argmax().item() == 0  # unseen wording, shared n-grams


def test_choose_mix_picks_the_best_weight_on_validation():
    labels = torch.tensor([0, 1, 2])
    deep = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]])  # right once
    wide = torch.tensor([[0.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]])  # right twice more
    assert choose_mix(deep, wide, labels, grid=(0.0, 0.25, 1.0, 2.0)) == 1.0  # the smallest weight that wins all
    assert choose_mix(deep, torch.zeros_like(wide), labels) == 0.0


def test_predictor_mixes_the_ngram_logits_into_the_constrained_intent(fitted, tmp_path):
    tok = BankTokenizer.train([t for t, _ in TRAIN], LABELS, vocab_size=300)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    meta = CheckpointMeta(gpt=config, labels=list(LABELS), kb_version="t", max_question_tokens=16,
                          oos_threshold=0.0, intent_ngram_buckets=fitted.buckets)
    fitted.mix.fill_(2.0)
    save_checkpoint(tmp_path, GPT(config), tok, meta, fitted)
    predictor = Predictor.load(tmp_path)
    assert predictor.ngrams is not None and float(predictor.ngrams.mix) == 2.0
    texts = ["where is my card", "exchange rate please"]
    prompts = [predictor.prompt_ids(t) for t in texts]
    with torch.no_grad():
        deep = torch.stack([predictor.model(torch.tensor([p]))[0, -1, list(tok.label_ids)] for p in prompts])
        expected = torch.softmax((deep + 2.0 * fitted.logits([normalize_question(t) for t in texts])) / 3, dim=-1)
    for intent, row in zip(predictor.classify(texts), expected, strict=True):
        assert intent.label == LABELS[int(row.argmax())]
        assert intent.confidence == pytest.approx(float(row.max()), abs=1e-5)
    assert load_checkpoint(tmp_path).meta.intent_ngram_buckets == fitted.buckets
    (tmp_path / "intent_ngrams.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="bankbot train custom"):
        load_checkpoint(tmp_path)
