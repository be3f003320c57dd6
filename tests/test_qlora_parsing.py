"""Generated text -> a valid intent, and confidence from log-probabilities (no model needed)."""

from __future__ import annotations

import math

import pytest

from llm.adapters.base import OUT_OF_SCOPE
from llm.qlora.backend import check_adapter_dir
from llm.qlora.parsing import label_confidence, parse_intent
from llm.qlora.prompting import LABEL_STOP, plain_prompt, target_text

LABELS = ("card_arrival", "card_linking", "exchange_rate", "lost_or_stolen_card", "top_up_failed")


@pytest.mark.parametrize(
    ("text", "intent", "match"),
    [
        ("card_arrival", "card_arrival", "exact"),
        ("  Intent: Exchange Rate\nThe rate is ...", "exchange_rate", "exact"),
        ("lost-or-stolen card", "lost_or_stolen_card", "exact"),
        ("top_up_faild", "top_up_failed", "closest"),
        ("card_arival", "card_arrival", "closest"),
        ("what a lovely day", OUT_OF_SCOPE, "none"),
        ("", OUT_OF_SCOPE, "none"),
        ("out_of_scope", OUT_OF_SCOPE, "exact"),
    ],
)
def test_the_label_is_constrained_to_valid_ones(text, intent, match):
    parsed = parse_intent(text, LABELS)
    assert (parsed.intent, parsed.match) == (intent, match)
    assert parsed.intent in LABELS or parsed.intent == OUT_OF_SCOPE


def test_confidence_is_the_label_probability_scaled_by_the_match():
    exact = parse_intent("card_arrival", LABELS)
    assert label_confidence([math.log(0.9), math.log(0.5)], exact) == pytest.approx(0.45)
    closest = parse_intent("card_arival", LABELS)
    assert label_confidence([math.log(0.9)], closest) == pytest.approx(0.9 * closest.similarity)
    assert label_confidence([math.log(0.9)], parse_intent("nonsense words", LABELS)) == 0.0
    assert label_confidence([], exact) == 0.0


def test_the_target_starts_with_the_label_line():
    assert target_text("card_arrival", "It is on its way.").split(LABEL_STOP)[0] == "card_arrival"
    assert plain_prompt("  Where is my card? ").endswith("Question: Where is my card?\nIntent:")


def test_a_bad_adapter_directory_is_explained(tmp_path):
    from llm.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="does not exist"):
        check_adapter_dir(tmp_path / "missing")
    with pytest.raises(ModelUnavailableError, match="adapter_config.json is missing"):
        check_adapter_dir(tmp_path)
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelUnavailableError, match="no adapter_model.safetensors"):
        check_adapter_dir(tmp_path)


def test_vllm_sampled_logprobs_pick_each_generated_token():
    from types import SimpleNamespace

    from llm.qlora.backend_vllm import sampled_logprobs

    lp = lambda value: SimpleNamespace(logprob=value)  # noqa: E731 - vLLM's Logprob(logprob, rank, decoded_token)
    positions = [{5: lp(-0.1), 9: lp(-2.0)}, {9: lp(-0.3)}, {7: lp(-1.5), 2: lp(-0.2)}]
    assert sampled_logprobs([5, 9, 2], positions) == [-0.1, -0.3, -0.2]
    assert sampled_logprobs([5], None) == []


def test_vllm_lora_rank_fits_the_adapter(tmp_path):
    from llm.qlora.backend_vllm import adapter_rank

    for r, expected in ((4, 8), (16, 16), (24, 32)):
        (tmp_path / "adapter_config.json").write_text(f'{{"r": {r}}}')
        assert adapter_rank(tmp_path) == expected
