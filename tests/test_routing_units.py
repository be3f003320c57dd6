"""Routing's arithmetic on known data: calibration figures, confidence maps, thresholds, Wilson intervals, the
sticky canary split, budgets and policies, and the /llm-switch grammar."""

import math
import random

import pytest
import torch

from bot.conversation.switching import Command, parse
from llm.encoder.calibration import fit_temperature
from llm.routing.budgets import parse_budgets
from llm.routing.confidence_map import ConfidenceMap
from llm.routing.policy import RoutingPolicy
from llm.routing.reliability import aurc, ece, risk_coverage
from llm.routing.split import in_share
from llm.routing.thresholds import choose_threshold
from llm.routing.wilson import two_proportion_p, wilson


def test_ece_risk_coverage_and_aurc_on_hand_made_data():
    # bin 0.9..: four answers at 0.95, three right (0.75): |0.75 - 0.95| * 4/8; bin 0.6..: four at 0.65, two right
    confidence = [0.95] * 4 + [0.65] * 4
    correct = [True, True, True, False, True, True, False, False]
    assert ece(confidence, correct) == pytest.approx((4 * 0.2 + 4 * 0.15) / 8)
    assert ece([0.5, 0.5], [True, False]) == pytest.approx(0.0)
    points = risk_coverage([0.9, 0.8, 0.7, 0.6], [True, True, False, True], (0.5, 1.0))
    assert points == [{"coverage": 0.5, "accuracy": 1.0}, {"coverage": 1.0, "accuracy": 0.75}]
    assert aurc([0.9, 0.8, 0.7, 0.6], [True, True, False, True]) == pytest.approx((0 + 0 + 1 / 3 + 1 / 4) / 4)
    assert aurc([0.9, 0.1], [True, False]) < aurc([0.1, 0.9], [True, False])  # a better ranking, a lower area


def test_temperature_scaling_recovers_a_known_temperature_and_calibrates():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 10, generator=gen) * 3
    true_t = 2.5  # labels drawn from softmax(logits / 2.5): the raw logits are overconfident
    labels = torch.multinomial(torch.softmax(logits / true_t, dim=-1), 1, generator=gen).squeeze(1)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.1)
    conf, pred = torch.softmax(logits / t, dim=-1).max(dim=-1)
    raw = torch.softmax(logits, dim=-1).max(dim=-1).values
    right = (pred == labels).tolist()
    assert ece(conf.tolist(), right) < 0.03 < ece(raw.tolist(), right)


def test_an_isotonic_map_learns_the_accuracy_behind_a_raw_confidence():
    rng = random.Random(1)
    raw = [rng.random() for _ in range(6000)]
    right = [rng.random() < r * r for r in raw]  # the model claims r but is right r^2 of the time
    mapping = ConfidenceMap.fit(raw, right)
    for r in (0.3, 0.6, 0.9):
        assert mapping(r) == pytest.approx(r * r, abs=0.06)
    assert all(a <= b for a, b in zip(mapping.ys, mapping.ys[1:], strict=False))  # monotone
    assert ece([mapping(r) for r in raw], right) < 0.03 < ece(raw, right)


def test_map_round_trips_through_the_model_dir(tmp_path):
    mapping = ConfidenceMap([0.2, 0.8], [0.1, 0.9], n=10)
    mapping.save(tmp_path, "gemini")
    loaded = ConfidenceMap.load(tmp_path, "gemini")
    assert loaded == mapping and loaded(0.5) == pytest.approx(0.5) and loaded(0.0) == 0.1 and loaded(1.0) == 0.9
    assert ConfidenceMap.load(tmp_path, "qlora") is None


def test_threshold_for_a_target_share_and_for_a_target_accuracy():
    confidence = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    first = [False, False, True, False, True, True, True, True, True, True]  # 7 of 10
    escalation = [True] * 10
    share = choose_threshold(confidence, first, escalation, target_escalation=0.2, escalation_cost_usd=0.001)
    assert (share.threshold, share.escalation_share, share.expected_accuracy) == (0.3, 0.2, 0.9)
    assert share.cost_per_1000_usd == pytest.approx(1000 * 0.2 * 0.001)
    reach = choose_threshold(confidence, first, escalation, target_accuracy=1.0)
    assert (reach.threshold, reach.escalation_share, reach.expected_accuracy) == (0.5, 0.4, 1.0)
    assert reach.first_accuracy == 0.7 and reach.cost_per_1000_usd is None


def test_wilson_intervals_match_known_values():
    # statsmodels.stats.proportion.proportion_confint(k, n, method="wilson"), to 6 places
    assert wilson(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)  # Wikipedia's worked example
    assert wilson(0, 0) is None
    assert two_proportion_p(50, 100, 50, 100) == pytest.approx(1.0)
    assert two_proportion_p(60, 100, 40, 100) == pytest.approx(math.erfc(2.828427 / math.sqrt(2)), rel=1e-4)


def test_the_canary_split_is_sticky_and_within_three_points_of_its_share():
    users = [f"U{i:05d}" for i in range(10_000)]
    chosen = [in_share("salt", "canary", user, 10) for user in users]
    assert abs(sum(chosen) / len(users) - 0.10) <= 0.03
    assert chosen == [in_share("salt", "canary", user, 10) for user in users]  # the same users, every time
    at_20 = [in_share("salt", "canary", user, 20) for user in users]
    assert all(b for a, b in zip(chosen, at_20, strict=True) if a)  # widening keeps the users already in
    other_salt = [in_share("other", "canary", user, 10) for user in users]
    assert chosen != other_salt


def test_budgets_and_policies_parse_or_say_why_not():
    assert parse_budgets("5") == ({}, 5.0)
    assert parse_budgets('{"gemini": 2.5, "*": 1}') == ({"gemini": 2.5}, 1.0)
    assert parse_budgets("") == ({}, None)
    for bad in ("lots", '{"gemini": "x"}', "[1]"):
        with pytest.raises(ValueError):
            parse_budgets(bad)
    policy = RoutingPolicy.from_json('{"canary": {"model": "qlora", "percent": 10}, "model": "custom"}')
    assert policy.canary.percent == 10 and policy.extra == {"model": "custom"}
    assert RoutingPolicy.from_json(policy.to_json()) == policy
    for bad in ('{"canary": {"model": "qlora", "percent": 0}}', '{"canary": 5}', "[]",
                '{"shadow": {"model": 5}}', '{"escalation": {"model": "gemini", "threshold": "x"}}'):
        with pytest.raises(ValueError):
            RoutingPolicy.from_json(bad)


def test_llm_switch_grammar():
    assert parse("") == Command("show")
    assert parse("qlora") == Command("switch", "qlora")
    assert parse("qlora 10%") == Command("canary", "qlora", 10.0)
    assert parse("qlora 12.5") == Command("canary", "qlora", 12.5)
    assert parse("qlora 100%") == Command("switch", "qlora")  # promotes
    assert parse("canary off") == Command("canary_off")
    assert parse("shadow gemini") == Command("shadow", "gemini", 100.0)
    assert parse("shadow gemini 20%") == Command("shadow", "gemini", 20.0)
    assert parse("Shadow OFF") == Command("shadow_off")
    for bad in ("qlora 0%", "qlora 150%", "qlora ten%", "qlora 10% now", "shadow", "shadow gemini -5%"):
        assert isinstance(parse(bad), str), bad


def test_a_calibrated_llm_answer_has_its_runner_up_on_the_same_scale(tmp_path):
    from llm.adapters.base import GenerationResult
    from llm.routing.confidence_map import Calibrations

    ConfidenceMap([0.2, 0.8], [0.1, 0.9], n=10).save(tmp_path, "gemini")
    top = [["card_arrival", 0.8], ["card_delivery_estimate", 0.2]]
    raw = GenerationResult("answer", "card_arrival", 5.0, 10, 5, 0.8, "gemini_2.0_flash_v1.0.0", "cloud",
                           model="gemini", extra={"top_intents": top})
    calibrated = Calibrations(tmp_path).apply(raw)
    assert calibrated.confidence == pytest.approx(0.9)
    assert calibrated.extra["top_intents"] == [["card_arrival", pytest.approx(0.9)],
                                               ["card_delivery_estimate", pytest.approx(0.1)]]
    assert calibrated.extra["raw_confidence"] == 0.8 and raw.extra["top_intents"][1][1] == 0.2  # not mutated
