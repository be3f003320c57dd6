"""The Prometheus alerts: promtool checks them and runs their unit tests (tests/prometheus_alerts_test.yaml).

promtool comes with Debian's `prometheus` package; .ci/run installs it. Without it these tests skip, saying
why, unless REQUIRE_PROMTOOL=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "manifests" / "prometheus-alerts.yaml"
RULE_TESTS = REPO / "tests" / "prometheus_alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        reason = "promtool is not installed (apt-get install prometheus, or run .ci/run)"
        if os.environ.get("REQUIRE_PROMTOOL") == "1":
            pytest.fail(reason + " and REQUIRE_PROMTOOL=1")
        pytest.skip(reason)
    return path


def _alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_unit_test_where_it_fires_and_the_tests_load_these_rules():
    spec = yaml.safe_load(RULE_TESTS.read_text())
    assert [(RULE_TESTS.parent / f).resolve() for f in spec["rule_files"]] == [RULES]
    cases = [case for test in spec["tests"] for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    names = _alert_names()
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) - firing == set(), "alerts without a test case where they fire"
    assert set(names) - quiet == set(), "alerts without a test case where they stay quiet"
    assert (firing | quiet) <= set(names), "test cases for alerts that do not exist"


def test_the_design_alerts_are_there():
    assert {"BankbotAnswerCacheLow", "BankbotModelErrorRate", "BankbotModelUnhealthy",
            "BankbotHighLatency", "BankbotHighErrorRate"} <= set(_alert_names())


def test_promtool_checks_the_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool):
    result = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
