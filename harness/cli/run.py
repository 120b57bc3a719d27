"""`harness run`: every case of a suite, each finished case appended to the results file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EXIT_ACCURACY, EXIT_FAILED, EXIT_INVALID, EXIT_OK
from .common import SuiteArg


def run(
    suite: SuiteArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results file.")] = Path("results"),
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Only this target (repeatable).")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="Only this model (repeatable).")] = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Only this variant (repeatable).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write an HTML report to this file.")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="What this run measured (a commit, a build); "
                                                 "labels the run in history reports. CI commit and branch "
                                                 "variables are recorded anyway.")] = None,
    cluster: Annotated[Optional[str], typer.Option("--cluster", help="Run on a Ray cluster (HOST:PORT, or auto): "
                                                   "each case on a node that offers its target. Needs "
                                                   "onnx-harness[fleet].")] = None,
) -> None:
    """Run every case of a suite; append each finished case to results/<suite>-<time>.jsonl."""
    from ..console import make_console
    from ..plan import build_plan
    from ..run.progress import make_reporter
    from ..run.session import run_plan
    from ..suite import load_suite

    console = make_console()
    plan = build_plan(load_suite(suite), targets=target, models=model, variants=variant)
    for warning in plan.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    if cluster is not None:
        from ..fleet.driver import run_fleet

        outcome = run_fleet(plan, output, cluster, make_reporter(console), label=label)
    else:
        outcome = run_plan(plan, output, make_reporter(console), label=label)
    console.print(f"results: {outcome.path}", markup=False, highlight=False)
    if outcome.interrupted_by is not None:
        console.print(f"interrupted: {len(outcome.run.cases)} finished cases kept in {outcome.path}", markup=False)
        raise typer.Exit(128 + outcome.interrupted_by)
    if report is not None and outcome.path is not None:
        from ..report.html import write_report

        written = write_report([outcome.path], report)
        console.print(f"report: {written}", markup=False, highlight=False)
    if outcome.any_failed:
        raise typer.Exit(EXIT_FAILED)
    if outcome.any_accuracy_failed:
        raise typer.Exit(EXIT_ACCURACY)
    raise typer.Exit(EXIT_INVALID if outcome.any_invalid else EXIT_OK)
