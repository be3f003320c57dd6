"""The hashed question n-grams and the model's use of them at <sep>."""

from __future__ import annotations

import pytest
import torch

from llm.custom.checkpoint import CheckpointMeta
from llm.custom.data import SequenceBuilder
from llm.custom.intent_scoring import intent_logits
from llm.custom.ngrams import bag_tensors, question_ngrams, token_word_ngrams
from llm.custom.predictor import Predictor, _Decoder
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, GPTConfig

LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card")
TEXTS = ["I am still waiting on my card?", "What is the exchange rate for euros?", "Someone stole my card!"] * 4


def test_ngrams_are_stable_word_and_char_grams():
    ids = question_ngrams("my card", 1 << 20)
    # words (2) + bigram (1) + char 2-5-grams of " my " (3+2+1) and " card " (5+4+3+2)
    assert len(ids) == 3 + 6 + 14
    assert ids == question_ngrams("my card", 1 << 20)  # crc32: the same in every process
    assert all(0 <= i < 97 for i in question_ngrams("my card is lost", 97))
    assert question_ngrams("", 97) and question_ngrams("", 97) == question_ngrams("   ", 97)
    assert set(question_ngrams("lost card", 1 << 20)) != set(question_ngrams("card arrival", 1 << 20))


def test_bag_tensors_layout():
    indices, offsets = bag_tensors([[1, 2, 3], [4], [5, 6]])
    assert indices.tolist() == [1, 2, 3, 4, 5, 6] and offsets.tolist() == [0, 3, 4]


def test_token_word_ngrams_group_tokens_by_word():
    per_token = token_word_ngrams(["my", " ca", "rd", " "], 1 << 20)
    assert per_token[1] == per_token[2] != per_token[0]  # " ca" + "rd" are one word, "card"
    assert per_token[1][0] == question_ngrams("card", 1 << 20)[0]  # the word's own bucket comes first
    assert len(per_token[3]) == 1  # a lone space: the marker only


@pytest.fixture(scope="module", params=[False, True], ids=["sep-bag", "sep-and-token-bags"])
def predictor(request):
    tok = BankTokenizer.train([normalize_question(t) for t in TEXTS] + TEXTS, LABELS, vocab_size=400)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tok.vocab_size,
        block_size=64,
        n_layer=2,
        n_head=2,
        n_embd=32,
        dropout=0.0,
        ngram_buckets=512,
        token_ngrams=request.param,
        n_intents=len(LABELS) if request.param else 0,
        answer_sees_question=not request.param,
    )
    model = GPT(config).eval()
    torch.nn.init.normal_(model.wng.weight, std=1.0)  # make the bag matter
    if config.n_intents:
        torch.nn.init.normal_(model.wie.weight, std=1.0)  # and the intent embeddings
    meta = CheckpointMeta(gpt=config, labels=list(LABELS), kb_version="t", max_question_tokens=16, oos_threshold=0)
    return Predictor(model, tok, meta)


def test_bag_changes_the_intent_distribution_only_at_sep(predictor):
    model = predictor.model
    prompt = predictor.prompt_ids("where is my card")
    idx = torch.tensor([prompt])
    bag = predictor.bags.question_bag([prompt[1:-1]], torch.tensor([len(prompt) - 1]))
    with torch.no_grad():
        plain, with_bag = model(idx), model(idx, bag=bag)
    changed = ~torch.isclose(plain, with_bag).all(dim=-1)[0]  # (T,) positions whose logits moved
    assert bool(changed[-1])
    assert bool(changed[1:-1].all()) == model.config.token_ngrams  # question tokens: only with token bags
    assert not bool(changed[0])  # <bos> never gets a bag


def test_predictor_and_validation_agree_with_ngrams(predictor):
    texts = ["card", "what is the exchange rate for my money today", "lost", ""]
    config = predictor.model.config
    builder = SequenceBuilder(predictor.tok, ["a", "b", "c"], 16, config.ngram_buckets, config.token_ngrams)
    questions = [predictor.tok.encode(normalize_question(t)) for t in texts]
    probs = intent_logits(predictor.model, builder, questions, torch.tensor(predictor.tok.label_ids)).softmax(-1)
    batch = predictor.classify(texts)
    for row, text in enumerate(texts):
        alone = predictor.classify([text])[0]
        assert batch[row].label == alone.label == LABELS[int(probs[row].argmax())]
        assert batch[row].confidence == pytest.approx(float(probs[row].max()), abs=1e-5)


def test_generation_with_and_without_cache_agrees(predictor):
    """With n-gram bags (and intent embeddings) the cached hot path generates what full recomputation does."""
    prompt = predictor.prompt_ids("what is the exchange rate for my money today")
    assert predictor.generate_tokens(prompt, 12, use_cache=True) == predictor.generate_tokens(prompt, 12, False)


def test_intent_embeddings_change_only_the_answer(predictor):
    model = predictor.model
    if not model.config.n_intents:
        pytest.skip("this model has no intent embeddings")
    idx = torch.tensor([predictor.prompt_ids("where is my card") + [5, 6]])
    where = torch.tensor([[False] * (idx.size(1) - 2) + [True, True]])
    with torch.no_grad():
        one, other = (model(idx, intent=(torch.tensor([k]), where)) for k in (0, 1))
    moved = ~torch.isclose(one, other).all(dim=-1)[0]
    assert not bool(moved[:-2].any()) and bool(moved[-2:].all())


def test_isolated_answers_do_not_depend_on_the_question(predictor):
    """With answer_sees_question off, the label and answer attend to each other only: same intent, same answer."""
    if predictor.model.config.answer_sees_question:
        pytest.skip("this model's answers see the question")
    dec_a = _Decoder(predictor.model, [predictor.prompt_ids("where is my card")], 0, 8, predictor.label_position)
    dec_b = _Decoder(predictor.model, [predictor.prompt_ids("lost")], 0, 8, predictor.label_position)
    label, intent = torch.tensor([predictor.tok.label_ids[1]]), torch.tensor([1])
    with torch.no_grad():
        for dec in (dec_a, dec_b):
            dec.step(label, intent=intent)
    torch.testing.assert_close(dec_a.logits, dec_b.logits, atol=1e-5, rtol=0)
