"""scripts/bench_metrics.py's timing: per-item medians, each series first as often as every other."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_metrics.py"


@pytest.fixture()
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_metrics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "MIN_SERIES_S", 0.0)
    return module


class Clock:
    """A clock that only the timed calls move: each call adds its own duration."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed(clock: Clock, log: list, name: str, durations: list[float]):
    """A call that logs ``name`` and takes the next of ``durations`` (seconds)."""

    def call():
        log.append(name)
        clock.now += durations.pop(0)

    return call


def test_item_seconds_sums_per_item_medians_and_drops_an_interrupted_call(bench):
    clock, log = Clock(), []
    # item 0 of series "a" is interrupted once (10 s); its median stays 1 s
    a = [timed(clock, log, "a0", [1.0, 10.0, 1.0, 1.0]), timed(clock, log, "a1", [2.0, 2.0, 2.0, 2.0])]
    b = [timed(clock, log, "b0", [0.5, 0.5, 0.5, 0.5]), timed(clock, log, "b1", [0.25, 0.25, 0.25, 0.25])]
    assert bench.item_seconds([a, b], repeats=3, clock=clock) == [3.0, 0.75]
    # 3 rounds asked, 4 run: a whole turn of the rotation, so each series is first on an item twice
    assert len(log) == 16
    rounds = [log[start : start + 4] for start in range(0, 16, 4)]
    assert rounds[0] == ["a0", "b0", "a1", "b1"]
    assert rounds[1] == ["b0", "a0", "b1", "a1"]
    assert [r[0][0] for r in rounds].count("a") == [r[0][0] for r in rounds].count("b") == 2


def test_item_seconds_runs_until_each_series_has_used_min_series_s(bench, monkeypatch):
    monkeypatch.setattr(bench, "MIN_SERIES_S", 5.0)
    clock, log = Clock(), []
    series = [[timed(clock, log, "x", [1.0] * 100)], [timed(clock, log, "y", [2.0] * 100)]]
    bench.item_seconds(series, repeats=1, clock=clock)
    assert log.count("x") == log.count("y") == 6  # 5 rounds for x to use 5 s, then the turn's end
