"""A run: the state its cases share, the results file they go to, and the loop over a plan.

``RunSession`` is used by ``harness run`` and by the pytest plugin alike, so both measure
and record a case the same way. Each finished case is appended to the results file at once
(one line, one fsync): a crash, Ctrl-C, SIGTERM or a full disk loses at most the case in
flight. Scratch space (worker folders, reference outputs) lives in one temporary folder that
is removed however the run ends.
"""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .. import stats
from ..environment import fingerprint, provenance
from ..paths import beside_results
from ..plan import Case, Plan
from ..results import (
    CaseRecord,
    Environment,
    Provenance,
    ResultsWriteError,
    ResultsWriter,
    Run,
    SuiteInfo,
    utc_now,
)
from ..variants import VariantStore
from .case import CaseRun, RuntimeCache
from .signals import Interrupted, interrupt_signals


class Measurable(Protocol):
    @property
    def pending(self) -> bool: ...
    def measure_one(self) -> None: ...


class Reporter(Protocol):
    def message(self, text: str) -> None: ...
    def start(self, plan: Plan, results_path: Path | None) -> None: ...
    def case_start(self, index: int, case: Case) -> None: ...
    def case_end(self, index: int, case: Case, record: CaseRecord) -> None: ...
    def finish(self, run: Run) -> None: ...


def new_run(plan: Plan, runner: str, started: datetime, label: str | None = None) -> Run:
    loaded, suite = plan.loaded, plan.loaded.suite
    return Run(
        run_id=f"{suite.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}",
        started_at=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        suite=SuiteInfo(name=suite.name, path=str(loaded.path), sha256=loaded.sha256, description=suite.description),
        environment=Environment.from_json(fingerprint(), "environment"),
        provenance=Provenance.from_json(found, "provenance") if (found := provenance(label)) else None,
        settings={"measure": suite.measure.model_dump(), "session": suite.session.model_dump(exclude_none=True),
                  "accuracy": suite.accuracy.model_dump(exclude_none=True), "runner": runner},
    )


class RunSession:
    """Runtimes, variant builds, scratch space and the results file of one run."""

    def __init__(self, plan: Plan, out_dir: Path | None, runner: str, say: Callable[[str], None],
                 settings: dict | None = None, label: str | None = None) -> None:
        started = datetime.now(UTC)
        self.plan = plan
        self.run = new_run(plan, runner, started, label)
        self.run.settings.update(settings or {})  # before the header is written
        m = plan.loaded.suite.measure
        self.order_seed = m.order_seed if m.order_seed is not None else random.SystemRandom().randrange(2**32)
        self.order = random.Random(self.order_seed)  # the interleaved order, reproducible from the results
        self.run.settings["order_seed"] = self.order_seed
        self.writer = (ResultsWriter.create(out_dir, f"{plan.loaded.suite.name}-{started.strftime('%Y%m%dT%H%M%SZ')}",
                                            self.run) if out_dir is not None else None)
        self.scratch = Path(tempfile.mkdtemp(prefix="harness-run-"))
        self.runtimes = RuntimeCache(say)
        self.variants = VariantStore(plan.loaded, plan.model_files, say, scratch=self.scratch / "references")
        self.count = 0
        self.sigmas: list[float] = []  # each finished case's process spread: pooled into every interval

    @property
    def path(self) -> Path | None:
        return self.writer.path if self.writer is not None else None

    @property
    def logs_home(self) -> Path | None:
        """LoadGen's logs of this run's serving cases: a folder next to the results file."""
        return beside_results(self.path, "loadgen") if self.path is not None else None

    @property
    def profiles_home(self) -> Path | None:
        """Each case's every-node profile table: a folder next to the results file."""
        return beside_results(self.path, "profiles") if self.path is not None else None

    def _workdir(self) -> Path:
        self.count += 1
        return self.scratch / f"case{self.count - 1:04d}"

    def measure(self, case: Case) -> CaseRecord:
        """One case, its processes one after the other (the pytest plugin's order); its interval
        pools the spread of every case so far, as a window's do."""
        records: list[CaseRecord] = []
        self.measure_window([case], lambda _: None, lambda _, record: records.append(record))
        return records[0]

    def measure_window(self, cases: list[Case], started: Callable[[Case], None],
                       ended: Callable[[Case, CaseRecord], None]) -> None:
        """Several cases, their worker processes interleaved (see ``interleave``). Cases are
        recorded in plan order once every process of the window has run."""
        runs = self.prepare(cases, started)
        self.interleave(runs)
        self.finish(runs, ended)

    def prepare(self, cases: list[Case], started: Callable[[Case], None]) -> list[CaseRun]:
        runs = []
        for case in cases:
            started(case)
            run = CaseRun(case, self.plan, self._workdir(), logs_home=self.logs_home, profiles_home=self.profiles_home)
            run.prepare(self.runtimes, self.variants)
            runs.append(run)
        return runs

    def interleave(self, units: Sequence[Measurable], deadline: float | None = None, at_least: int = 1) -> None:
        """Round by round, every unit (a case, or an A/B pair) still measuring runs one more
        process, in an order shuffled by the run's recorded seed (randomised multiple interleaved
        trials: a process's speed mode, or a slow minute, lands on many cases a little instead of
        on one case entirely). After ``at_least`` rounds, none starts past ``deadline`` (time.monotonic())."""
        rounds = 0
        while rounds < at_least or deadline is None or time.monotonic() < deadline:
            rounds += 1
            due = [unit for unit in units if unit.pending]
            if not due:
                break
            self.order.shuffle(due)
            for unit in due:
                unit.measure_one()

    def finish(self, runs: list[CaseRun], ended: Callable[[Case, CaseRecord], None]) -> None:
        """Record the cases, each interval sized by the spread pooled over every case so far."""
        self.sigmas.extend(s for s in (run.process_sigma for run in runs) if s is not None)
        pooled = stats.pooled_sigma(self.sigmas)
        for run in runs:
            run.run_sigma = pooled
            record = run.finish()
            shutil.rmtree(run.workdir, ignore_errors=True)
            self.keep(record)
            ended(run.case, record)

    def keep(self, record: CaseRecord) -> None:
        self.run.cases.append(record)
        if self.writer is not None:
            self.writer.append(record)

    def close(self, status: str) -> None:
        """End the file with the run's status; a write error here only counts if nothing else went wrong."""
        self.run.status, self.run.finished_at = status, utc_now()
        try:
            if self.writer is not None:
                self.writer.finish(status, self.run.finished_at)
        except ResultsWriteError:
            if status == "complete":
                raise
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


@dataclass
class RunOutcome:
    run: Run
    path: Path | None
    interrupted_by: int | None = None  # the signal that ended the run early

    @property
    def any_failed(self) -> bool:
        return any(c.status == "failed" for c in self.run.cases)

    @property
    def any_invalid(self) -> bool:
        """A serving scenario LoadGen judged INVALID (a peak search counts when no rate was VALID)."""
        return any(c.serving is not None and c.serving.validity == "INVALID" for c in self.run.cases)

    @property
    def any_accuracy_failed(self) -> bool:
        return any(c.accuracy is not None and c.accuracy.verdict == "fail" for c in self.run.cases)


def run_plan(plan: Plan, out_dir: Path, reporter: Reporter, label: str | None = None) -> RunOutcome:
    session = RunSession(plan, out_dir, "harness run", reporter.message, label=label)
    reporter.start(plan, session.path)
    status, signum = "aborted", None  # aborted: a harness error ended the run; it is raised on
    try:
        window = plan.loaded.suite.measure.interleave or len(plan.cases)
        index = {id(case): i for i, case in enumerate(plan.cases)}
        with interrupt_signals():
            for start in range(0, len(plan.cases), window):
                session.measure_window(plan.cases[start:start + window],
                                       lambda case: reporter.case_start(index[id(case)], case),
                                       lambda case, record: reporter.case_end(index[id(case)], case, record))
        status = "complete"
    except KeyboardInterrupt as exc:
        status, signum = "interrupted", exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    finally:
        session.close(status)
    reporter.finish(session.run)
    return RunOutcome(session.run, session.path, signum)
