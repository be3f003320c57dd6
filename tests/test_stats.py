import numpy as np
import pytest

from llm.metrics import ModelMetrics
from llm.stats import percentile


@pytest.mark.parametrize("q", [0, 1, 25, 50, 75, 90, 99, 99.9, 100])
@pytest.mark.parametrize("values", [
    [5.0],
    [1.0, 2.0],
    [3.0, 1.0, 2.0, 10.0, 7.5],
    list(np.random.default_rng(7).lognormal(3, 1, 1001)),
    list(range(100)),
])
def test_percentile_matches_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_percentile_of_nothing_is_none_and_bad_q_is_refused():
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_model_metrics_snapshot_counts_errors_apart_from_latencies():
    from llm.adapters.base import GenerationResult

    metrics = ModelMetrics()
    for latency in (10.0, 20.0, 30.0, 40.0):
        metrics.record(GenerationResult("a", "card_arrival", latency, 3, 5, 0.5, "v", "cpu", cost_usd=0.001))
    metrics.record_error(500.0, "TimeoutError")
    snap = metrics.snapshot()
    assert snap["requests"] == 5 and snap["errors"] == 1 and snap["error_rate"] == pytest.approx(0.2)
    assert snap["latency_p50_ms"] == pytest.approx(np.percentile([10, 20, 30, 40], 50))
    assert snap["latency_p99_ms"] == pytest.approx(np.percentile([10, 20, 30, 40], 99))
    assert (snap["prompt_tokens"], snap["completion_tokens"]) == (12, 20)
    assert snap["avg_confidence"] == pytest.approx(0.5)
    assert snap["cost_usd"] == pytest.approx(0.004)
    assert snap["error_kinds"] == {"TimeoutError": 1}
