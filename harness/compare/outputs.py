"""What compare says: the terminal table, Markdown (and the CI step summary), JUnit XML and JSON.

Every number goes through ``harness.units``; every string from a results file is escaped for
the output it lands in (rich markup, Markdown/HTML, XML).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..files import write_atomic_text
from ..report.fmt import md_code, md_escape
from ..units import ms, signed_pct
from . import metrics as M
from .evidence import Finding
from .pair import Comparison

VERDICT_STYLE = {"regression": "bold red", "improvement": "green", "inconclusive": "yellow", "new": "cyan",
                 "ok": "dim", "n/a": "dim"}
VERDICT_TAG = {"regression": "REGRESSION", "improvement": "improved", "inconclusive": "inconclusive", "new": "new",
               "ok": "", "n/a": ""}
CELL_TAG = {"regression": "REG", "improvement": "imp", "inconclusive": "?", "new": "new"}
OUTCOME = {0: "OK", 1: "REGRESSION", 3: "INCONCLUSIVE"}


def write_outputs(comparison: Comparison, markdown: Path | None, junit: Path | None, json_path: Path | None) -> None:
    text = to_markdown(comparison)
    if markdown is not None:
        write_atomic_text(markdown, text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    if junit is not None:
        write_atomic_text(junit, to_junit(comparison))
    if json_path is not None:
        write_atomic_text(json_path, json.dumps(to_json(comparison), indent=1, default=_json_default, allow_nan=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def fmt_value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    spec = M.METRIC_BY_NAME.get(metric)
    if spec is None:
        return f"{value:g}"
    if spec.unit == "ms":
        return ms(value)
    if spec.unit == "samples/s":
        return f"{value:,.0f}/s"
    if spec.unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.6f}"


def fmt_change(finding: Finding) -> str:
    value = finding.change
    if value is None:
        return ""
    spec = M.METRIC_BY_NAME.get(finding.metric)
    if spec is not None and not spec.relative:
        return f"{value:+.2g}"
    return signed_pct(value)


def explain(finding: Finding) -> str:
    """One line a reader can act on."""
    if finding.metric == "status":
        return finding.note
    parts = []
    if finding.verdict in ("regression", "improvement"):
        limit = (f"{finding.threshold:g}" if not M.METRIC_BY_NAME[finding.metric].relative
                 else f"{(finding.threshold or 0) * 100:g}%")
        parts.append(f"beyond the minimum effect {limit}")
        if finding.q_value is not None:
            parts.append(f"q={finding.q_value:.2g} (BH)")
        if finding.floor_change is not None:
            parts.append(f"fast end (p5) {signed_pct(finding.floor_change)}")
    if finding.note:
        parts.append(finding.note)
    return "; ".join(parts)


def summary_line(comparison: Comparison) -> str:
    counts = {v: comparison.count(v) for v in ("regression", "improvement", "inconclusive", "ok", "new")}
    cases = len({f.case_id for f in comparison.findings})
    return (f"{counts['regression']} regressions, {counts['improvement']} improvements, {counts['inconclusive']} "
            f"inconclusive, {counts['ok']} ok, {counts['new']} new, over {cases} cases")


def sources_line(comparison: Comparison) -> str:
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


def print_comparison(console: Console, comparison: Comparison) -> None:
    code = comparison.exit_code
    table = Table(title=f"harness compare: {OUTCOME[code]} (exit {code})", title_justify="left")
    metrics = [m for m in M.METRICS if any(f.metric == m.name for f in comparison.findings)]
    table.add_column("case", overflow="fold")
    table.add_column("status", overflow="fold")
    for metric in metrics:
        table.add_column(metric.label, justify="right")
    by_case: dict[str, dict[str, Finding]] = {}
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
    if comparison.differences:
        console.print("[yellow]also differs between the sides[/] (a verdict holds only if these do not matter):")
        for line in comparison.differences:
            console.print(f"  {escape(line)}", highlight=False)


def _status_cell(finding: Finding | None) -> str:
    if finding is None:
        return "ok"
    word = finding.note.split(":")[0].split(";")[0]
    return f"[{VERDICT_STYLE.get(finding.verdict, '')}]{escape(word)}[/]"


def _cell(finding: Finding) -> str:
    text = fmt_change(finding)
    tag = CELL_TAG.get(finding.verdict, "")
    style = VERDICT_STYLE.get(finding.verdict, "")
    return f"[{style}]{escape(text)}{' ' + tag if tag else ''}[/]" if style else escape(text)


def to_markdown(comparison: Comparison) -> str:
    code = comparison.exit_code
    icon = {0: ":white_check_mark:", 1: ":x:", 3: ":warning:"}[code]
    lines = [f"## {icon} Performance comparison: {OUTCOME[code]} (exit {code})", "",
             md_escape(summary_line(comparison)) + ".", "", md_escape(sources_line(comparison)) + ".", ""]
    if comparison.differences:
        lines += ["Also differs between the sides (a verdict holds only if these do not matter):", ""]
        lines += [f"- {md_escape(line)}" for line in comparison.differences] + [""]
    notable = [f for f in comparison.findings if f.verdict in ("regression", "inconclusive", "improvement", "new")
               or (f.metric == "status" and f.verdict != "ok")]
    if notable:
        lines += ["| verdict | case | metric | baseline | candidate | change | why |", "|---|---|---|---|---|---|---|"]
        order = {"regression": 0, "inconclusive": 1, "improvement": 2, "new": 3}
        for f in sorted(notable, key=lambda f: order.get(f.verdict, 9)):
            verdict = f"**{f.verdict}**" if f.verdict == "regression" else f.verdict
            lines.append(f"| {verdict} | {md_code(f.case_id)} | " + " | ".join(md_escape(x) for x in (
                f.label, fmt_value(f.metric, f.baseline) if f.metric != "status" else "",
                fmt_value(f.metric, f.candidate) if f.metric != "status" else "",
                fmt_change(f), explain(f))) + " |")
        lines.append("")
    lines += ["<details><summary>Every case and metric</summary>", "", _md_grid(comparison), "", "</details>", ""]
    return "\n".join(lines)


def _md_grid(comparison: Comparison) -> str:
    metrics = [m for m in M.METRICS if any(f.metric == m.name for f in comparison.findings)]
    rows = ["| case | " + " | ".join(m.label for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    by_case: dict[str, dict[str, Finding]] = {}
    for f in comparison.findings:
        by_case.setdefault(f.case_id, {})[f.metric] = f
    for case_id, row in by_case.items():
        if "status" in row:
            rows.append(f"| {md_code(case_id)} | " + md_escape(row["status"].note) + " |" * len(metrics))
            continue
        cells = []
        for m in metrics:
            found = row.get(m.name)
            cells.append("" if found is None else f"{fmt_change(found)} {VERDICT_TAG.get(found.verdict, '')}".strip())
        rows.append(f"| {md_code(case_id)} | " + " | ".join(md_escape(c) for c in cells) + " |")
    return "\n".join(rows)


def to_junit(comparison: Comparison) -> str:
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


def to_json(comparison: Comparison) -> dict[str, Any]:
    s = comparison.settings
    return {
        "schema": "harness-compare/1",
        "exit_code": comparison.exit_code,
        "outcome": OUTCOME[comparison.exit_code].lower(),
        "mode": comparison.mode,
        "summary": {v: comparison.count(v) for v in ("regression", "improvement", "inconclusive", "ok", "new", "n/a")},
        "settings": {"alpha": s.alpha, "min_effect": s.min_effect, "rules": [r.model_dump() for r in s.rules],
                     "history": s.history.model_dump(), "block_target": M.TARGET_BLOCKS,
                     "fast_end_percentile": M.FAST_END},
        "baseline": comparison.baseline_runs,
        "candidate": comparison.candidate_runs,
        "differences": comparison.differences,
        "verdicts": [_finite(f.as_dict()) for f in comparison.findings],
    }


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: a change from zero is reported as null with the values beside it."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
