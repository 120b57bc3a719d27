"""A run: the state its cases share, the results file they go to, and the loop over a plan.

``RunSession`` is used by ``harness run`` and by the pytest plugin alike, so both measure
and record a case the same way. Each finished case is appended to the results file at once
(one line, one fsync): a crash, Ctrl-C, SIGTERM or a full disk loses at most the case in
flight. Scratch space (worker folders, reference outputs) lives in one temporary folder that
is removed however the run ends.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Protocol

from ..environment import fingerprint
from ..plan import Case, Plan
from ..results import CaseRecord, Environment, ResultsWriteError, ResultsWriter, Run, SuiteInfo, utc_now
from ..variants import VariantStore
from .case import RuntimeCache, run_case


class Reporter(Protocol):
    def message(self, text: str) -> None: ...
    def start(self, plan: Plan, results_path: Path | None) -> None: ...
    def case_start(self, index: int, case: Case) -> None: ...
    def case_end(self, index: int, case: Case, record: CaseRecord) -> None: ...
    def finish(self, run: Run) -> None: ...


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C: the worker dies, finished cases stay."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def interrupt_signals() -> Iterator[None]:
    """CI cancellation sends SIGTERM, a closed terminal SIGHUP: both end the run like SIGINT."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, previous in saved.items():
            signal.signal(s, previous)


def new_run(plan: Plan, runner: str, started: datetime) -> Run:
    loaded, suite = plan.loaded, plan.loaded.suite
    return Run(
        run_id=f"{suite.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}",
        started_at=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        suite=SuiteInfo(name=suite.name, path=str(loaded.path), sha256=loaded.sha256, description=suite.description),
        environment=Environment.from_json(fingerprint(), "environment"),
        settings={"measure": suite.measure.model_dump(), "session": suite.session.model_dump(exclude_none=True),
                  "accuracy": suite.accuracy.model_dump(exclude_none=True), "runner": runner},
    )


class RunSession:
    """Runtimes, variant builds, scratch space and the results file of one run."""

    def __init__(self, plan: Plan, out_dir: Path | None, runner: str, say: Callable[[str], None]) -> None:
        started = datetime.now(UTC)
        self.plan = plan
        self.run = new_run(plan, runner, started)
        self.writer = (ResultsWriter.create(out_dir, f"{plan.loaded.suite.name}-{started.strftime('%Y%m%dT%H%M%SZ')}",
                                            self.run) if out_dir is not None else None)
        self.scratch = Path(tempfile.mkdtemp(prefix="harness-run-"))
        self.runtimes = RuntimeCache(say)
        self.variants = VariantStore(plan.loaded, plan.model_files, say, scratch=self.scratch / "references")
        self.count = 0

    @property
    def path(self) -> Path | None:
        return self.writer.path if self.writer is not None else None

    def measure(self, case: Case) -> CaseRecord:
        workdir = self.scratch / f"case{self.count:04d}"
        self.count += 1
        workdir.mkdir()
        try:
            record = run_case(case, self.runtimes, self.variants, workdir, self.plan)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.run.cases.append(record)
        if self.writer is not None:
            self.writer.append(record)
        return record

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
    def any_accuracy_failed(self) -> bool:
        return any(c.accuracy is not None and c.accuracy.verdict == "fail" for c in self.run.cases)


def run_plan(plan: Plan, out_dir: Path, reporter: Reporter) -> RunOutcome:
    session = RunSession(plan, out_dir, "harness run", reporter.message)
    reporter.start(plan, session.path)
    status, signum = "aborted", None  # aborted: a harness error ended the run; it is raised on
    try:
        with interrupt_signals():
            for index, case in enumerate(plan.cases):
                reporter.case_start(index, case)
                record = session.measure(case)
                reporter.case_end(index, case, record)
        status = "complete"
    except KeyboardInterrupt as exc:
        status, signum = "interrupted", exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    finally:
        session.close(status)
    reporter.finish(session.run)
    return RunOutcome(session.run, session.path, signum)
