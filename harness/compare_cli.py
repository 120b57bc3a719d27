"""`harness compare`, `harness baseline save|list`, `harness export`, and compare's outputs.

Exit codes of compare (contract): 0 nothing regressed and every verdict was decided; 1 a
regression (or a newly failing case); 2 bad input or a harness error (never 0 or 1, even
for a bug: an error must not read as a pass or as a regression); 3 nothing regressed but
some verdict is inconclusive (too few samples, a disturbed run, a newly unavailable or
missing case). The decision rule itself is in harness/compare.py and docs/nightly.md.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Optional
from xml.etree import ElementTree as ET

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import compare as C
from .errors import EXIT_INPUT, InputError

baseline_app = typer.Typer(no_args_is_help=True, help="Named baselines for nightly comparisons.")

VERDICT_STYLE = {"regression": "bold red", "improvement": "green", "inconclusive": "yellow", "new": "cyan",
                 "ok": "dim", "n/a": "dim"}
VERDICT_TAG = {"regression": "REGRESSION", "improvement": "improved", "inconclusive": "inconclusive", "new": "new",
               "ok": "", "n/a": ""}
CELL_TAG = {"regression": "REG", "improvement": "imp", "inconclusive": "?", "new": "new"}
OUTCOME = {0: "OK", 1: "REGRESSION", 3: "INCONCLUSIVE"}


def harness_errors(command: Callable[..., None]) -> Callable[..., None]:
    """A bug must not exit 1 (Python's default), which would read as a regression: exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (InputError, typer.Exit, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - reported with its traceback, then exit 2
            traceback.print_exc()
            print("error: harness bug (traceback above); the comparison did not complete", file=sys.stderr)
            raise typer.Exit(EXIT_INPUT) from None

    return wrapper


# --- compare -------------------------------------------------------------------------------


@harness_errors
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
    settings = C.make_settings(C.load_config(config), alpha=alpha, min_effect=min_effect, last=last)
    comparison = run_comparison(paths, baseline, history, baselines_dir, settings, allow_different_machines,
                                allow_different_runtimes)
    write_outputs(comparison, markdown, junit, json_path)
    print_comparison(Console(width=None if sys.stdout.isatty() else 160, highlight=False), comparison)
    raise typer.Exit(comparison.exit_code)


def run_comparison(paths: list[Path], baseline: str | None, history: Path | None, baselines_dir: Path | None,
                   settings: C.Settings, allow_machines: bool, allow_runtimes: bool) -> C.Comparison:
    """Load both sides (files, a named baseline, or history) and decide."""
    from .baselines import baseline_files, baselines_root
    from .results import read_all

    candidate = read_all([paths[-1]])
    if history is not None:
        runs = C.select_history(read_all([history]), candidate, settings.history.last, allow_machines)
        return C.compare_history(runs, candidate, settings, allow_machines or allow_runtimes)
    if baseline is not None:
        files = baseline_files(baseline, baselines_root(baselines_dir), set(C.fingerprints(candidate)), allow_machines)
        base_docs = read_all(files)
    else:
        base_docs = read_all([paths[0]])
    C.check_comparable(base_docs, candidate, allow_machines, allow_runtimes)
    return C.compare_documents(base_docs, candidate, settings)


def check_flags(alpha: float | None, min_effect: float | None, last: int | None) -> None:
    """Range checks here rather than in typer, so a bad value is an InputError (exit 2) in one line."""
    if alpha is not None and not 0 < alpha < 1:
        raise InputError(f"--alpha {alpha}: must be between 0 and 1 (e.g. 0.05)")
    if min_effect is not None and min_effect < 0:
        raise InputError(f"--min-effect {min_effect}: must be >= 0 (a fraction: 0.05 is 5 %)")
    if last is not None and last < 1:
        raise InputError(f"--last {last}: must be at least 1")


def write_outputs(comparison: C.Comparison, markdown: Path | None, junit: Path | None, json_path: Path | None) -> None:
    text = to_markdown(comparison)
    if markdown is not None:
        _write(markdown, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    if junit is not None:
        _write(junit, to_junit(comparison))
    if json_path is not None:
        _write(json_path, json.dumps(to_json(comparison), indent=1, default=_json_default, allow_nan=False))


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- formatting ----------------------------------------------------------------------------


def fmt_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    spec = C.METRIC_BY_NAME.get(metric)
    if spec is None:
        return f"{value:g}"
    if spec.unit == "ms":
        return f"{value * 1e3:.1f} us" if value < 1 else f"{value:.3f} ms"
    if spec.unit == "samples/s":
        return f"{value:,.0f}/s"
    if spec.unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.6f}"


def fmt_change(finding: C.Finding) -> str:
    value = finding.change
    if value is None:
        return ""
    spec = C.METRIC_BY_NAME.get(finding.metric)
    if spec is not None and not spec.relative:
        return f"{value:+.2g}"
    return C.fmt_pct(value)


def explain(finding: C.Finding) -> str:
    """One line a reader can act on."""
    if finding.metric == "status":
        return finding.note
    parts = []
    if finding.verdict in ("regression", "improvement"):
        limit = (f"{finding.threshold:g}" if not C.METRIC_BY_NAME[finding.metric].relative
                 else f"{(finding.threshold or 0) * 100:g}%")
        parts.append(f"beyond the minimum effect {limit}")
        if finding.q_value is not None:
            parts.append(f"q={finding.q_value:.2g} (BH)")
        if finding.floor_change is not None:
            parts.append(f"fast end (p5) {C.fmt_pct(finding.floor_change)}")
    if finding.note:
        parts.append(finding.note)
    return "; ".join(parts)


def summary_line(comparison: C.Comparison) -> str:
    counts = {v: comparison.count(v) for v in ("regression", "improvement", "inconclusive", "ok", "new")}
    cases = len({f.case_id for f in comparison.findings})
    return (f"{counts['regression']} regressions, {counts['improvement']} improvements, {counts['inconclusive']} "
            f"inconclusive, {counts['ok']} ok, {counts['new']} new, over {cases} cases")


def sources_line(comparison: C.Comparison) -> str:
    def describe(runs: list[dict[str, Any]]) -> str:
        hosts = sorted({str(r.get("hostname")) for r in runs})
        ids = [str(r.get("run_id")) for r in runs]
        shown = ids[0] if len(ids) == 1 else f"{len(ids)} runs ({ids[0]} .. {ids[-1]})"
        return f"{shown} on {', '.join(hosts)}"

    s = comparison.settings
    effect = f"minimum effect {s.min_effect['latency_p50'] * 100:g}% unless configured"
    if comparison.mode == "history":
        return (f"history: {describe(comparison.baseline_runs)}; candidate: {describe(comparison.candidate_runs)}; "
                f"robust rule: beyond the history median by the {effect} and by {s.history.mad_k:g} x MAD")
    return (f"baseline: {describe(comparison.baseline_runs)}; candidate: {describe(comparison.candidate_runs)}; "
            f"alpha {s.alpha:g} (Benjamini-Hochberg), {effect}")


def print_comparison(console: Console, comparison: C.Comparison) -> None:
    code = comparison.exit_code
    table = Table(title=f"harness compare: {OUTCOME[code]} (exit {code})", title_justify="left")
    metrics = [m for m in C.METRICS if any(f.metric == m.name for f in comparison.findings)]
    table.add_column("case", overflow="fold")
    table.add_column("status", overflow="fold")
    for metric in metrics:
        table.add_column(metric.label, justify="right")
    by_case: dict[str, dict[str, C.Finding]] = {}
    for finding in comparison.findings:
        by_case.setdefault(finding.case_id, {})[finding.metric] = finding
    for case_id, row in by_case.items():
        status = row.get("status")
        cells = [escape(case_id), _status_cell(status)]
        for metric in metrics:
            f = row.get(metric.name)
            cells.append("" if f is None else _cell(f))
        table.add_row(*cells)
    console.print(table)
    for finding in comparison.findings:
        if finding.verdict in ("regression", "inconclusive", "improvement") or finding.metric == "status":
            tag = VERDICT_TAG.get(finding.verdict) or finding.verdict
            values = "" if finding.metric == "status" else (
                f": {fmt_value(finding.metric, finding.baseline)} -> {fmt_value(finding.metric, finding.candidate)} "
                f"({fmt_change(finding)})")
            console.print(f"[{VERDICT_STYLE.get(finding.verdict, '')}]{escape(tag)}[/] {escape(finding.case_id)} "
                          f"{escape(finding.label)}{escape(values)} - {escape(explain(finding))}")
    console.print(summary_line(comparison), markup=False)
    console.print(sources_line(comparison), markup=False)


def _status_cell(finding: C.Finding | None) -> str:
    if finding is None:
        return "ok"
    word = finding.note.split(":")[0].split(";")[0]
    return f"[{VERDICT_STYLE.get(finding.verdict, '')}]{escape(word)}[/]"


def _cell(finding: C.Finding) -> str:
    text = fmt_change(finding)
    tag = CELL_TAG.get(finding.verdict, "")
    style = VERDICT_STYLE.get(finding.verdict, "")
    return f"[{style}]{escape(text)}{' ' + tag if tag else ''}[/]" if style else escape(text)


def to_markdown(comparison: C.Comparison) -> str:
    code = comparison.exit_code
    icon = {0: ":white_check_mark:", 1: ":x:", 3: ":warning:"}[code]
    lines = [f"## {icon} Performance comparison: {OUTCOME[code]} (exit {code})", "",
             summary_line(comparison) + ".", "", sources_line(comparison) + ".", ""]
    notable = [f for f in comparison.findings if f.verdict in ("regression", "inconclusive", "improvement", "new")
               or (f.metric == "status" and f.verdict != "ok")]
    if notable:
        lines += ["| verdict | case | metric | baseline | candidate | change | why |", "|---|---|---|---|---|---|---|"]
        order = {"regression": 0, "inconclusive": 1, "improvement": 2, "new": 3}
        for f in sorted(notable, key=lambda f: order.get(f.verdict, 9)):
            lines.append("| " + " | ".join(_md(x) for x in (
                f"**{f.verdict}**" if f.verdict == "regression" else f.verdict, f"`{f.case_id}`", f.label,
                fmt_value(f.metric, f.baseline) if f.metric != "status" else "",
                fmt_value(f.metric, f.candidate) if f.metric != "status" else "",
                fmt_change(f), explain(f))) + " |")
        lines.append("")
    lines += ["<details><summary>Every case and metric</summary>", "", _md_grid(comparison), "", "</details>", ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_grid(comparison: C.Comparison) -> str:
    metrics = [m for m in C.METRICS if any(f.metric == m.name for f in comparison.findings)]
    rows = ["| case | " + " | ".join(m.label for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    by_case: dict[str, dict[str, C.Finding]] = {}
    for f in comparison.findings:
        by_case.setdefault(f.case_id, {})[f.metric] = f
    for case_id, row in by_case.items():
        if "status" in row:
            rows.append(f"| `{_md(case_id)}` | " + _md(row["status"].note) + " |" * len(metrics))
            continue
        cells = []
        for m in metrics:
            f = row.get(m.name)
            cells.append("" if f is None else f"{fmt_change(f)} {VERDICT_TAG.get(f.verdict, '')}".strip())
        rows.append(f"| `{_md(case_id)}` | " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(rows)


def to_junit(comparison: C.Comparison) -> str:
    """One testcase per case and metric: failure = regression, skipped = inconclusive / no baseline."""
    suite = ET.Element("testsuite", name="harness compare")
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for f in comparison.findings:
        if f.verdict == "n/a" and f.metric != "status":
            continue
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=f.case_id, name=f.metric, time="0")
        values = "" if f.metric == "status" else (
            f"{f.label} {fmt_value(f.metric, f.baseline)} -> {fmt_value(f.metric, f.candidate)} ({fmt_change(f)})")
        message = " - ".join(x for x in (values, explain(f)) if x)
        if f.verdict == "regression":
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=message, type="regression").text = message
        elif f.verdict in ("inconclusive", "new", "n/a"):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=f"{f.verdict}: {message}")
        elif message:
            ET.SubElement(case, "system-out").text = message
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("errors", "0")
    root = ET.Element("testsuites", name="harness compare", tests=str(counts["tests"]),
                      failures=str(counts["failures"]), skipped=str(counts["skipped"]), errors="0")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_json(comparison: C.Comparison) -> dict[str, Any]:
    s = comparison.settings
    return {
        "schema": "harness-compare/1",
        "exit_code": comparison.exit_code,
        "outcome": OUTCOME[comparison.exit_code].lower(),
        "mode": comparison.mode,
        "summary": {v: comparison.count(v) for v in ("regression", "improvement", "inconclusive", "ok", "new", "n/a")},
        "settings": {"alpha": s.alpha, "min_effect": s.min_effect, "rules": [r.model_dump() for r in s.rules],
                     "history": s.history.model_dump(), "block_target": C.TARGET_BLOCKS,
                     "fast_end_percentile": C.FAST_END},
        "baseline": comparison.baseline_runs,
        "candidate": comparison.candidate_runs,
        "verdicts": [_finite(f.as_dict()) for f in comparison.findings],
    }


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: a change from zero is reported as null with the values beside it."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


# --- baselines -----------------------------------------------------------------------------


@baseline_app.command("save")
@harness_errors
def baseline_save(
    name: Annotated[str, typer.Argument(help="Baseline name, e.g. main.")],
    results: Annotated[list[Path], typer.Argument(help="Results files or folders.", show_default=False)],
    append: Annotated[bool, typer.Option("--append", help="Add to this machine's runs instead of replacing "
                                         "them.")] = False,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Only for machines the baseline does not hold "
                                             "yet (seeds a new runner, never moves an existing baseline).")] = False,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Baselines folder (default "
                                                      "$HARNESS_BASELINES or ./baselines).")] = None,
) -> None:
    """Copy results into a named baseline, per machine (keyed by hardware fingerprint)."""
    from .baselines import baselines_root, save_baseline

    written = save_baseline(name, results, baselines_root(directory), append=append, if_missing=if_missing)
    for path in written:
        typer.echo(f"saved {path}")
    if not written:
        typer.echo(f"baseline {name} already holds this machine; nothing saved (--if-missing)")


@baseline_app.command("list")
@harness_errors
def baseline_list(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Baselines folder (default "
                                                      "$HARNESS_BASELINES or ./baselines).")] = None,
) -> None:
    """Named baselines and the machines they hold."""
    from .baselines import baselines_root, list_baselines

    root = baselines_root(directory)
    entries = list_baselines(root)
    if not entries:
        typer.echo(f"no baselines in {root}")
        return
    table = Table(title=f"baselines in {root}", title_justify="left")
    for column in ("name", "machine", "fingerprint", "cpu", "runs", "cases", "newest run"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(escape(e.name), escape(e.hostname), e.fingerprint, escape(e.cpu_model), str(e.runs),
                      str(e.cases), e.latest)
    Console(width=None if sys.stdout.isatty() else 160, highlight=False).print(table)


# --- export --------------------------------------------------------------------------------


@harness_errors
def export(
    results: Annotated[list[Path], typer.Argument(help="Results files or folders (one run per case).",
                                                  show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="Only 'pytest-benchmark' for now.")] = "pytest-benchmark",
    commit: Annotated[Optional[str], typer.Option("--commit", help="commit_info.id to record.")] = None,
    branch: Annotated[Optional[str], typer.Option("--branch", help="commit_info.branch to record.")] = None,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Include every sample (stats.data).")] = False,
) -> None:
    """Export results to other tools' formats (pytest-benchmark JSON, seconds)."""
    from .export import to_pytest_benchmark
    from .results import read_all

    if fmt != "pytest-benchmark":
        raise InputError(f"--format {fmt}: unknown; supported: pytest-benchmark")
    document, skipped = to_pytest_benchmark(read_all(results), commit, branch, include_data=data)
    _write(output, json.dumps(document, indent=2, allow_nan=False))
    note = f" ({skipped} failed/unavailable cases left out)" if skipped else ""
    typer.echo(f"wrote {len(document['benchmarks'])} benchmarks to {output}{note}")
