"""`harness ab`: baseline and candidate processes alternating in one time window, decided on
the paired per-round ratios. Same outputs and exit codes as `harness compare` (0 ok, 1 slower
or newly failing, 2 input error, 3 inconclusive)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import InputError
from .common import SuiteArg

if TYPE_CHECKING:
    from ..ab import ABResult, ABVerdict

OUTCOME = {0: "OK", 1: "SLOWER", 3: "INCONCLUSIVE"}


def ab(
    suite: SuiteArg,
    baseline: Annotated[str, typer.Option("--baseline", help="A target, model or variant of the suite.")],
    candidate: Annotated[str, typer.Option("--candidate", help="Another value of the same axis.")],
    rounds: Annotated[int, typer.Option("--rounds", help="Rounds per case; each measures both sides in one process "
                                                          "(alternating blocks) where they share a runtime, else in "
                                                          "one process each, in random order.")] = 10,
    budget: Annotated[Optional[float], typer.Option("--budget", help="Seconds: start no round after this (at least 3 "
                                                                      "rounds; --rounds stays the most).")] = None,
    min_effect: Annotated[float, typer.Option("--min-effect", help="Smallest change that counts (0.05 = 5%).")] = 0.05,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results file.")] = Path("results"),
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="Write a Markdown summary.")] = None,
    junit: Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML, one testcase per case.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write every verdict as JSON.")] = None,
) -> None:
    """Paired A/B run: exit 0 no case slower, 1 slower, 2 input error, 3 inconclusive."""
    import os

    from ..ab import run_ab
    from ..console import make_console
    from ..files import write_atomic_text
    from ..suite import load_suite

    if rounds < 2:
        raise InputError(f"--rounds {rounds}: at least 2 (the interval needs two ratios; 10 or more is typical)")
    if budget is not None and budget <= 0:
        raise InputError(f"--budget {budget}: seconds, more than 0")
    if not 0 <= min_effect < 1:
        raise InputError(f"--min-effect {min_effect}: a fraction between 0 and 1 (0.05 = 5%)")
    console = make_console()
    result = run_ab(load_suite(suite), baseline, candidate, rounds, min_effect, output,
                    lambda text: console.print(text, markup=False, highlight=False), budget_s=budget)
    text = to_markdown(result)
    if markdown is not None:
        write_atomic_text(markdown, text)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as f:
            f.write(text + "\n")
    if junit is not None:
        write_atomic_text(junit, to_junit(result))
    if json_path is not None:
        import json

        write_atomic_text(json_path, json.dumps(to_json(result), indent=1, allow_nan=False))
    print_result(console, result)
    raise typer.Exit(result.exit_code)


def fmt_ratio(low: float | None, ratio: float | None, high: float | None) -> str:
    if ratio is None:
        return "-"
    if low is None or high is None:
        return f"{ratio:.3f}"
    return f"{ratio:.3f} ({low:.3f}-{high:.3f})"


def pairing(v: ABVerdict) -> str:
    return f"{v.rounds} apart" if v.apart else f"{v.rounds} in 1 process"


def full_note(v: ABVerdict) -> str:
    return "; ".join(part for part in (v.note, f"sides apart: {v.apart}" if v.apart else "") if part)


def header(result: ABResult) -> str:
    return (f"{result.axis} {result.baseline} -> {result.candidate}: {result.rounds} paired rounds, minimum effect "
            f"{result.min_effect:.0%}, order seed {result.order_seed}, results {result.results_path}")


def print_result(console: object, result: ABResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    code = result.exit_code
    table = Table(title=f"harness ab: {OUTCOME[code]} (exit {code})", title_justify="left")
    for column in ("case", "verdict", "candidate / baseline (95%)", "rounds", "baseline p50", "candidate p50", "note"):
        table.add_column(column, overflow="fold")
    for v in result.verdicts:
        table.add_row(escape(v.key), v.verdict, fmt_ratio(v.low, v.ratio, v.high), pairing(v),
                      f"{v.baseline_p50:.4g} ms" if v.baseline_p50 else "-",
                      f"{v.candidate_p50:.4g} ms" if v.candidate_p50 else "-", escape(full_note(v)))
    console.print(table)  # type: ignore[attr-defined]
    console.print(header(result), markup=False)  # type: ignore[attr-defined]


def to_markdown(result: ABResult) -> str:
    from ..report.fmt import md_code, md_escape

    code = result.exit_code
    icon = {0: ":white_check_mark:", 1: ":x:", 3: ":warning:"}[code]
    lines = [f"## {icon} A/B: {OUTCOME[code]} (exit {code})", "", md_escape(header(result)) + ".", "",
             "| case | verdict | candidate / baseline (95%) | rounds | note |", "|---|---|---|---|---|"]
    for v in result.verdicts:
        lines.append(f"| {md_code(v.key)} | {v.verdict} | {fmt_ratio(v.low, v.ratio, v.high)} | {pairing(v)} "
                     f"| {md_escape(full_note(v))} |")
    return "\n".join(lines) + "\n"


def to_junit(result: ABResult) -> str:
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name=f"harness ab {result.baseline} vs {result.candidate}",
                       tests=str(len(result.verdicts)))
    failures = skipped = 0
    for v in result.verdicts:
        case = ET.SubElement(suite, "testcase", classname="harness.ab", name=v.key, time="0")
        message = f"{v.verdict}: ratio {fmt_ratio(v.low, v.ratio, v.high)}, {pairing(v)} {full_note(v)}".strip()
        if v.verdict in ("slower", "failed"):
            failures += 1
            ET.SubElement(case, "failure", message=message, type=v.verdict).text = message
        elif v.verdict == "inconclusive":
            skipped += 1
            ET.SubElement(case, "skipped", message=message)
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    root = ET.Element("testsuites", name="harness ab")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_json(result: ABResult) -> dict[str, object]:
    return {"schema": "harness-ab/1", "exit_code": result.exit_code, "outcome": OUTCOME[result.exit_code].lower(),
            "axis": result.axis, "baseline": result.baseline, "candidate": result.candidate,
            "rounds": result.rounds, "min_effect": result.min_effect, "order_seed": result.order_seed,
            "results": str(result.results_path), "verdicts": [v.as_dict() for v in result.verdicts]}
