"""The peak search's logic on a scripted machine (the LoadGen runs themselves are exercised on
real LoadGen in test_serving.py; here the machine's speed is what the test controls)."""

from __future__ import annotations

from typing import Any

from harness.worker.serving import find_peak

SPEC = {"min_queries": 100, "max_duration_s": 10.0}
SEARCH = {"max_runs": 8, "tolerance": 0.05, "confirm": 1.3}


class Machine:
    """Sustains ``rate`` QPS offline and 0.9 of it as a server under the bound; from call
    ``faster_after`` on it runs at ``faster`` (a neighbour left)."""

    def __init__(self, rate: float, faster: float | None = None, faster_after: int = 1) -> None:
        self.spec, self.calls, self.rate, self.faster, self.faster_after = SPEC, [], rate, faster, faster_after

    def test(self, scenario: str, qps: float) -> dict[str, Any]:
        rate = self.faster if self.faster and len(self.calls) >= self.faster_after else self.rate
        self.calls.append((scenario, qps))
        if scenario == "offline":
            return {"validity": "VALID", "target_qps": qps, "completed_qps": rate}
        return {"validity": "VALID" if qps <= 0.9 * rate else "INVALID", "target_qps": qps, "completed_qps": qps,
                "reasons": []}


def test_a_steady_machine_measures_its_capacity_once() -> None:
    machine = Machine(300.0)
    out = find_peak(machine, SEARCH, guess=100.0)
    assert [s for s, _ in machine.calls].count("offline") == 1 and len(out["capacity"]) == 1
    assert 0.9 * 300 * 0.95 <= out["peak_qps"] <= 0.9 * 300


def test_a_peak_beyond_the_capacity_measures_the_capacity_again() -> None:
    """CI on a contended host: 312 QPS offline, then a VALID server run at 431. A server cannot
    sustain more than the offline rate: the capacity is measured again, after the search."""
    machine = Machine(300.0, faster=480.0)
    out = find_peak(machine, SEARCH, guess=100.0)
    assert out["peak_qps"] > 300 * 1.1, out["points"]
    assert [s for s, _ in machine.calls][-1] == "offline" and len(out["capacity"]) == 2
    assert out["peak_qps"] <= out["capacity"][-1]["completed_qps"] * 1.1
