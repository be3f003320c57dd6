"""The training progress: one fraction over every phase, weighted, never backwards, ending at 1."""

from __future__ import annotations

import pytest

from llm.custom.progress import TrainingProgress


def test_fraction_covers_every_phase_by_weight():
    calls: list[tuple[float, str]] = []
    progress = TrainingProgress({"fit": 1.0, "loop": 3.0, "save": 0.0}, show=False,
                                on_progress=lambda f, p: calls.append((f, p)))
    with progress.phase("fit", total=2) as tick:
        tick()
        assert progress.fraction == pytest.approx(0.125)  # half of a quarter
    assert progress.fraction == pytest.approx(0.25)
    with progress.phase("loop", total=10) as tick:
        for _ in range(5):
            tick(loss="0.1")
        assert progress.fraction == pytest.approx(0.25 + 0.75 / 2)
        tick(50)  # more units than announced: capped at the phase's end
        assert progress.fraction == pytest.approx(1.0)
    with progress.phase("save"):
        pass
    progress.close()
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert [p for _, p in calls][0] == "fit" and {p for _, p in calls} == {"fit", "loop", "save"}
    assert set(progress.seconds) == {"fit", "loop", "save"}
    assert "fit" in progress.summary() and "loop" in progress.summary()


def test_callback_calls_are_bounded():
    calls = []
    progress = TrainingProgress({"loop": 1.0}, show=False, on_progress=lambda f, p: calls.append(f))
    with progress.phase("loop", total=100_000) as tick:
        for _ in range(100_000):
            tick()
    assert 900 <= len(calls) <= 1100 and calls[-1] == 1.0


def test_weights_must_say_something():
    with pytest.raises(ValueError):
        TrainingProgress({"a": 0.0}, show=False)
    with pytest.raises(ValueError):
        TrainingProgress({"a": -1.0, "b": 2.0}, show=False)
