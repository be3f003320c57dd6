"""A custom model saved and loaded again is the model that was saved: every weight, the tokenizer, the metadata,
the n-gram intent model, and therefore every intent and answer. Two loads of one checkpoint could agree with each
other and still differ from what was trained; this compares the model before saving with the model after loading.
"""

from __future__ import annotations

import dataclasses

import torch

from llm.custom.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from llm.custom.ngram_intents import NgramIntentModel
from llm.custom.predictor import Predictor
from llm.custom.tokenizer import BankTokenizer, normalize_question
from llm.custom.transformer import GPT, GPTConfig

LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed")
TEXTS = ["i am still waiting on my card", "what is the exchange rate for euros", "someone stole my card",
         "my top-up didn't work", "where is my new card?", "card 4111 1111 1111 1111 never came"]


def _trained_looking_model() -> tuple[GPT, BankTokenizer, CheckpointMeta, NgramIntentModel]:
    """Every parameter group the checkpoint must carry (n-gram bag, intent embeddings, tied head), with random
    values everywhere, zeros and ones included (biases, LayerNorms, the idf buffer and the mix weight)."""
    torch.manual_seed(7)
    tok = BankTokenizer.train([normalize_question(t) for t in TEXTS] * 3, LABELS, vocab_size=300)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32, dropout=0.0,
                       ngram_buckets=512, token_ngrams=True, n_intents=len(LABELS), answer_sees_question=False)
    model = GPT(config)
    ngrams = NgramIntentModel(1024, len(LABELS))
    with torch.no_grad():
        for tensor in [*model.parameters(), *ngrams.parameters(), ngrams.idf]:
            tensor.normal_()
        ngrams.mix.fill_(0.75)
    meta = CheckpointMeta(gpt=config, labels=list(LABELS), kb_version="kb-test", max_question_tokens=24,
                          oos_threshold=0.123, intent_ngram_buckets=ngrams.buckets,
                          train={"seed": 7, "epochs": 3, "val_accuracy": 0.5})
    return model.eval(), tok, meta, ngrams.eval()


def _assert_same_state(before: torch.nn.Module, after: torch.nn.Module) -> None:
    saved, loaded = before.state_dict(), after.state_dict()
    assert saved.keys() == loaded.keys()
    for name, tensor in saved.items():
        assert torch.equal(tensor, loaded[name]), name


def test_the_loaded_checkpoint_is_the_saved_model(tmp_path):
    model, tok, meta, ngrams = _trained_looking_model()
    save_checkpoint(tmp_path / "custom", model, tok, meta, ngrams)
    loaded = load_checkpoint(tmp_path / "custom")

    _assert_same_state(model, loaded.model)
    assert loaded.model.lm_head.weight.data_ptr() == loaded.model.wte.weight.data_ptr()  # still tied
    _assert_same_state(ngrams, loaded.ngrams)
    assert dataclasses.asdict(loaded.meta) == dataclasses.asdict(meta)
    assert loaded.tokenizer.label_ids == tok.label_ids and loaded.tokenizer.vocab_size == tok.vocab_size
    assert [loaded.tokenizer.encode(t) for t in TEXTS] == [tok.encode(t) for t in TEXTS]

    before, after = Predictor(model, tok, meta, ngrams), Predictor(loaded.model, loaded.tokenizer, loaded.meta,
                                                                   loaded.ngrams)
    idx = torch.tensor([before.prompt_ids(TEXTS[0])])
    with torch.no_grad():
        torch.testing.assert_close(after.model(idx), before.model(idx), atol=0, rtol=0)
    assert [(i.label, i.confidence) for i in after.classify(TEXTS)] == \
        [(i.label, i.confidence) for i in before.classify(TEXTS)]
    assert [(r.intent, r.answer) for r in after.respond(TEXTS)] == [(r.intent, r.answer) for r in before.respond(TEXTS)]
