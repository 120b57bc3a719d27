"""`harness compare`: a candidate run against a baseline run, a named baseline, or history.

Exit codes (contract): 0 nothing regressed and every verdict was decided; 1 a regression (or a
newly failing case); 2 bad input; 3 nothing regressed but some verdict is inconclusive (too few
samples, a disturbed run, a newly unavailable or missing case); 70 a harness bug (never 0 or 1:
an error must not read as a pass or as a regression). The rule itself: harness/compare/ and
docs/nightly.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import InputError

if TYPE_CHECKING:
    from ..compare import Comparison, Settings
    from ..results import Run


def compare(
    paths: Annotated[list[Path], typer.Argument(
        help="BASELINE CANDIDATE (results files or folders), or only CANDIDATE with --baseline or --history.",
        show_default=False)],
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Named baseline (see: harness baseline "
                                                    "list).")] = None,
    history: Annotated[Optional[Path], typer.Option("--history", help="Folder of earlier results; compare "
                                                    "against the last K of the candidate's machine.")] = None,
    last: Annotated[Optional[int], typer.Option("--last", help="With --history: how many runs, K (default 5).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML/TOML: alpha, min_effect per "
                                                   "metric, per-case rules by glob.")] = None,
    alpha: Annotated[Optional[float], typer.Option("--alpha", help="False discovery rate across the grid, "
                                                   "Benjamini-Hochberg (default 0.05).")] = None,
    min_effect: Annotated[Optional[float], typer.Option("--min-effect", help="Minimum relative change for speed "
                                                        "and memory metrics (default 0.05 = 5%).")] = None,
    allow_different_machines: Annotated[bool, typer.Option(
        "--allow-different-machines", help="Compare across hardware fingerprints and onnxruntime versions.")] = False,
    allow_different_runtimes: Annotated[bool, typer.Option(
        "--allow-different-runtimes", help="Same machine, different onnxruntime version (an upgrade).")] = False,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Write a Markdown summary.")] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML: one testcase per case "
                                                  "and metric.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every verdict as JSON.")] = None,
    baselines_dir: Annotated[Optional[Path], typer.Option("--baselines-dir", help="Where named baselines "
                                                          "live (default $HARNESS_BASELINES or ./baselines).")] = None,
) -> None:
    """Compare a candidate run with a baseline: exit 0 ok, 1 regression, 2 error, 3 inconclusive."""
    check_flags(alpha, min_effect, last)
    if baseline and history:
        raise InputError("give --baseline or --history, not both")
    if len(paths) != (1 if baseline is not None or history is not None else 2):
        raise InputError("usage: harness compare BASELINE CANDIDATE, or harness compare --baseline NAME CANDIDATE, "
                         "or harness compare --history DIR CANDIDATE")
    from .. import compare as C
    from ..compare.outputs import print_comparison, write_outputs
    from ..console import make_console

    settings = C.make_settings(C.load_config(config), alpha=alpha, min_effect=min_effect, last=last)
    comparison = run_comparison(paths, baseline, history, baselines_dir, settings, allow_different_machines,
                                allow_different_runtimes)
    write_outputs(comparison, markdown, junit, json_path)
    print_comparison(make_console(), comparison)
    raise typer.Exit(comparison.exit_code)


def run_comparison(paths: list[Path], baseline: str | None, history: Path | None, baselines_dir: Path | None,
                   settings: Settings, allow_machines: bool, allow_runtimes: bool) -> Comparison:
    """Load both sides (files, a named baseline, or history) and decide."""
    from .. import compare as C
    from ..baselines import baseline_files, baselines_root
    from ..results import read_all

    candidate = note_unfinished(read_all([paths[-1]]))
    if history is not None:
        runs = C.select_history(read_all([history]), candidate, settings.history.last, allow_machines)
        return C.compare_history(runs, candidate, settings, allow_machines or allow_runtimes)
    if baseline is not None:
        files = baseline_files(baseline, baselines_root(baselines_dir), set(C.fingerprints(candidate)), allow_machines)
        base_docs = note_unfinished(read_all(files))
    else:
        base_docs = note_unfinished(read_all([paths[0]]))
    C.check_comparable(base_docs, candidate, allow_machines, allow_runtimes)
    base_ids = {c.case_id for d in base_docs for c in d.cases}
    cand_ids = {c.case_id for d in candidate for c in d.cases}
    if not base_ids & cand_ids:
        raise InputError(f"{paths[-1]}: no case in common with the baseline ({len(base_ids)} cases) among its "
                         f"{len(cand_ids)} cases; compare runs of the same suite")
    return C.compare_documents(base_docs, candidate, settings)


def note_unfinished(runs: list[Run]) -> list[Run]:
    """A run that did not complete still compares, but the user hears that it covers less."""
    for run in runs:
        if run.status != "complete":
            typer.echo(f"note: {run.source}: the run is {run.status} ({len(run.cases)} cases); verdicts cover only "
                       "those", err=True)
    return runs


def check_flags(alpha: float | None, min_effect: float | None, last: int | None) -> None:
    """Range checks here rather than in typer, so a bad value is an InputError (exit 2) in one line."""
    if alpha is not None and not 0 < alpha < 1:
        raise InputError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if min_effect is not None and min_effect < 0:
        raise InputError(f"--min-effect {min_effect}: must be >= 0 (a fraction: 0.05 is 5 %)")
    if last is not None and last < 1:
        raise InputError(f"--last {last}: must be at least 1")
