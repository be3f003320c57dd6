import asyncio

from llm.circuit_breaker import BreakerState, CircuitBreaker
from llm.config import LLMSettings
from llm.factory import ModelFactory
from llm.switching import ModelSwitcher
from tests.scripted import Scripted, ScriptedAdapter, builders


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_k_failures_then_lets_one_trial_through_after_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allows_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allows_call()
    assert breaker.retry_in_s() == 30
    clock.now = 30
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allows_call()  # the one trial
    assert not breaker.allows_call()  # a second concurrent caller waits for the trial's outcome
    breaker.record_failure()  # the trial failed: open again for a full cool-down
    assert breaker.state is BreakerState.OPEN
    clock.now = 60
    assert breaker.allows_call()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0
    assert breaker.allows_call() and breaker.allows_call()


def test_a_trial_that_never_reports_back_stops_blocking_after_another_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    breaker.record_failure()
    clock.now = 10
    assert breaker.allows_call()  # this trial is cancelled and never records anything
    clock.now = 19
    assert not breaker.allows_call()
    clock.now = 20
    assert breaker.allows_call()


async def test_a_hanging_health_check_is_reported_unhealthy(tmp_path):
    hang = ScriptedAdapter("custom", default=Scripted(gate=asyncio.Event()))
    hang.default_timeout_s = 0.05
    switcher = ModelSwitcher(ModelFactory(LLMSettings(), builders(hang)), store=None, default_model="custom")
    health = await switcher.health_of("custom")
    assert not health.healthy and "timed out" in health.reason
    assert hang.metrics.requests == 0  # probes are not user traffic
