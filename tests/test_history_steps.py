"""Where the history view marks a step: at the run that made it, even when that run alone was
only inconclusive (its fast end moved less than its p50) and the next run confirmed the level."""

from __future__ import annotations

import numpy as np
import pytest

from harness.report.history import find_history

from .test_compare import document, latencies, record


def night(index: int, samples: np.ndarray) -> object:
    return document([record("m/fp32/cpu/batch=1", samples)], started=f"2026-11-{index + 1:02d}T00:00:00Z",
                    run_id=f"night{index + 1}")


def uneven_step(seed: int) -> np.ndarray:
    """At the new, doubled level, but its fastest tenth still at the old one: p50 x2, p5 unmoved."""
    old, new = latencies(2000, seed), latencies(18000, seed + 50, scale=2.0)
    return np.concatenate([np.sort(old)[:2000], new])


@pytest.mark.parametrize("nights, marked", [
    (["low", "low", "low", "step", "step", "step"], [3]),  # a clean step: marked where it happened
    (["low", "low", "low", "uneven", "step", "step"], [3]),  # its first night inconclusive, the next confirms it
    (["low", "low", "low", "uneven", "low", "low"], []),  # one disturbed night, then back: no step at all
    (["low", "low", "low", "low", "uneven", "step"], [4]),
])
def test_a_step_is_marked_at_its_first_night(nights: list[str], marked: list[int]) -> None:
    made = {"low": lambda i: latencies(20000, i), "step": lambda i: latencies(20000, i, scale=2.0),
            "uneven": uneven_step}
    history = find_history([night(i, made[kind](i)) for i, kind in enumerate(nights)])
    assert history is not None
    changes = history.changes
    assert list(changes["position"]) == marked, changes
    if marked:
        assert list(changes["verdict"]) == ["regression"] and 0.9 < changes["change"].iloc[0] < 1.1, changes
