"""Two cases measured in the same worker processes (``harness ab`` on the model and variant axes,
or two targets that share a runtime): each process opens both sessions and alternates short
blocks of each, so the process's speed mode, which differs between processes by up to 40% on
these VMs, cancels in the ratio of the two sides' medians.

A pair falls back to a process per side (the design for two onnxruntime builds) when its sides
cannot share a process, and for the rest of the run when a paired process fails: then the side
at fault fails alone, with its own reason, in its own process.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..worker.protocol import LOADGEN_SCENARIOS
from .case import CaseRun, worker_failure
from .local import run_worker


def unpairable(a: CaseRun, b: CaseRun) -> str | None:
    """Why two prepared cases cannot share a worker process, or None."""
    if a.ended is not None or b.ended is not None:
        return "one side could not be prepared"
    assert a.runtime is not None and b.runtime is not None
    if a.runtime.python != b.runtime.python:
        return f"different runtimes ({a.runtime.package} and {b.runtime.package}) cannot share a process"
    for run in (a, b):
        if run.job.get("scenario", "single-stream") in LOADGEN_SCENARIOS:
            return "LoadGen scenarios run one case per process"
        if int(run.job.get("streams", 1)) != 1:
            return "concurrent streams run one case per process"
        if run.job.get("plugin"):
            return "a plugin EP is registered once per process"
    return None


@dataclass
class PairedRun:
    """Baseline and candidate of one A/B case, round by round in one process each round."""

    sides: tuple[CaseRun, CaseRun]
    seed: int
    apart: str | None = None  # why the sides are measured in separate processes, if they are
    rounds: int = 0

    def __post_init__(self) -> None:
        self.apart = unpairable(*self.sides)

    @property
    def pending(self) -> bool:
        return any(side.pending for side in self.sides)

    def measure_one(self) -> None:
        """One round: one shared process, or (apart) one process per side still measuring."""
        self.rounds += 1
        a, b = self.sides
        if self.apart is not None or not (a.pending and b.pending):
            for side in self.sides:
                if side.pending:
                    side.measure_one()
            return
        assert a.runtime is not None
        job = {"mode": "paired", "measure": a.job["measure"], "order_seed": self.seed + self.rounds,
               "process": len(a.outcomes),
               "sides": [{**side.job, "reference": None, "process": len(side.outcomes)} for side in self.sides]}
        m = a.plan.loaded.suite.measure
        outcome = run_worker(a.runtime.python, job, a.workdir, a.timeout_s + b.timeout_s, m.memory_limit_mb)
        result = outcome.result
        if result is not None and result.get("status") == "ok":
            for side, got in zip(self.sides, result["sides"]):
                side.outcomes.append(replace(outcome, result=got, peak_rss_mb=None))
            return
        if result is not None and isinstance(result.get("side"), int):  # that side cannot run: it ends, alone
            side = self.sides[result["side"]]
            side.ended = worker_failure(side.record, result)
            return
        # The shared process crashed, hung or ran out of memory: which side did it is unknown, so
        # every round from here runs each side in its own process; the paired rounds so far are
        # dropped, so both sides' rounds stay alike.
        why = result.get("reason") if result else outcome.failure_reason(a.timeout_s + b.timeout_s)
        self.apart = f"the shared process failed ({why}); each side measured in its own processes"
        for side in self.sides:
            side.outcomes.clear()
        self.rounds -= 1
        self.measure_one()
