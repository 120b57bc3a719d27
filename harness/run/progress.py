"""What the user sees while a suite runs: a rich progress bar on a terminal, plain lines in CI logs."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..plan import Case, Plan, relative
from ..report.terminal import case_line, summary_table
from ..results import CaseRecord, Run


class PlainReporter:
    """One line per event: readable in CI logs and files, no control characters."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.total = 0
        self.started = 0.0

    def message(self, text: str) -> None:
        self.console.print(text, markup=False)

    def start(self, plan: Plan, results_path: Path | None) -> None:
        self.total, self.started = len(plan.cases), time.monotonic()
        self.message(f"suite {plan.loaded.suite.name}: {self.total} cases -> {relative(results_path) if results_path else '-'}")

    def case_start(self, index: int, case: Case) -> None:
        pass

    def case_end(self, index: int, case: Case, record: CaseRecord) -> None:
        elapsed = time.monotonic() - self.started
        eta = elapsed / (index + 1) * (self.total - index - 1)
        self.message(f"[{index + 1}/{self.total}] {case_line(record)}  (elapsed {elapsed:.0f}s, eta {eta:.0f}s)")

    def finish(self, run: Run) -> None:
        self.console.print(summary_table(run, self.console.width))


class RichReporter(PlainReporter):
    """A live progress bar (case i of N, elapsed, ETA) with finished cases scrolling above it."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                                 transient=True)
        self.task: TaskID | None = None

    def message(self, text: str) -> None:
        self.progress.console.print(text, markup=False)

    def start(self, plan: Plan, results_path: Path | None) -> None:
        super().start(plan, results_path)
        self.progress.start()
        self.task = self.progress.add_task("starting", total=self.total)

    def case_start(self, index: int, case: Case) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=case.case_id)

    def case_end(self, index: int, case: Case, record: CaseRecord) -> None:
        self.progress.console.print(f"[{index + 1}/{self.total}] {case_line(record)}", markup=False)
        if self.task is not None:
            self.progress.advance(self.task)

    def finish(self, run: Run) -> None:
        self.progress.stop()
        super().finish(run)


def make_reporter(console: Console) -> PlainReporter:
    return RichReporter(console) if console.is_terminal else PlainReporter(console)
