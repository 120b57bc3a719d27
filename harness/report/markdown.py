"""GitHub-flavoured Markdown for CI summaries and PR comments: the verdict and the key tables.

Same numbers and formatting as the HTML (tables.py, fmt.py, views.py); no charts. Every cell
is escaped: a ``|`` would split a cell, and GitHub renders inline HTML.
"""

from __future__ import annotations

from ..results import Run
from . import tables
from .data import build_frame, machines, runs_note
from .fmt import COLUMNS
from .fmt import md_escape as escape
from .history import find_history
from .summary import summarize
from .views import TableView, matrix_view, table_view

_BADGES = {"unstable": "⚠ unstable", "fallback": "⚠ partial fallback", "accuracy": "✗ accuracy fail",
           "failed": "✗ failed", "unavailable": "unavailable"}


def table(view: TableView) -> str:
    if not view.rows:
        return f"_{escape(view.empty)}_\n"
    header = [escape(c.label) for c in view.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if c.numeric else "---" for c in view.columns) + "|"]
    for row in view.rows:
        cells = [escape(cell.text) for cell in row.cells]
        if row.flags:
            cells[0] += " " + " ".join(_BADGES[f] for f in row.flags)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(documents: list[Run], baseline: str = "cpu/fp32",
                    prices: dict[str, float] | None = None, history: bool = False) -> str:
    base = tables.parse_baseline(baseline)
    frame = build_frame(documents, prices)
    summary = summarize(documents, frame, base)
    c = summary.counts
    out = [f"# {escape(summary.title)}", ""]
    hosts = ", ".join(f"{escape(m.label)} ({escape(m.environment.get('cpu_model') or '?')})"
                      for m in machines(documents))
    out += [f"Runs: {escape(runs_note(documents, frame))}  ", f"Machines: {hosts}  ", f"Runtimes: {escape('; '.join(summary.runtimes) or '-')}  ",
            f"Baseline: {escape(summary.baseline)} (speedup = baseline p50 / p50 at the same model and params)", "",
            f"**{c['cases']} cases**: {c['ok']} ok, {c['failed']} failed, {c['unavailable']} unavailable, "
            f"{c['unstable']} unstable, {c['partial_fallback']} partial fallback, "
            f"{c['accuracy_fail']} failing accuracy",
            "", "## Verdict", ""]
    for card in summary.cards:
        out.append(f"### {escape(card.model)}")
        out.append("")
        for line in card.lines:
            out.append(f"- **{escape(line.kind)}** ({escape(line.config)}): **{escape(line.choice)}**, "
                       f"{escape(line.value)}" + (f"; {escape(line.detail)}" if line.detail else "")
                       + (f" ⚠ {escape(line.notes)}" if line.notes else ""))
        out.append(f"- {escape(card.confidence)}")
        out += [f"- ⚠ {escape(w)}" for w in card.warnings]
        out.append("")
    out += ["## Fastest per model and params", "",
            table(table_view(summary.fastest, COLUMNS["fastest"], "fastest", empty="no successful case")),
            f"## Speedup over {escape(summary.baseline)}", "",
            "Best eligible variant per target (fails accuracy: never picked):", "",
            table(matrix_view(tables.speedup_matrix(frame, base), "best", annotate=True)),
            f"Same precision ({escape(base.variant)}) on every target:", "",
            table(matrix_view(tables.speedup_matrix(frame, base, base.variant), "same", annotate=False))]
    found = find_history(documents, history)
    if found is not None:
        out += [f"## History: {escape(found.suite)} on {escape(found.machine)}, {len(found.runs)} runs", "",
                "Change points by the rule of `harness compare --history`, each judged against the runs since "
                "the previous change.", "",
                table(table_view(found.changes_table(), COLUMNS["history_changes"], "history",
                                 empty="no change point"))]
    served = tables.serving(frame, base)
    if len(served):
        out += ["## Serving (MLPerf LoadGen)", "",
                "Latency from each query's scheduled arrival; QPS: the peak that was VALID for a peak search, "
                "else completed. One LoadGen run per point: a verdict, not an interval.", "",
                table(table_view(served, COLUMNS["serving"], "serving"))]
    cost = tables.cost(frame)
    if len(cost):
        cheapest = cost[cost["cheapest"]]
        out += ["## Cost (cheapest per model and params)", "", table(table_view(cheapest, COLUMNS["cost"], "cost"))]
    out += ["## Failed and unavailable", "",
            table(table_view(tables.problems_grouped(frame), COLUMNS["problems_grouped"], "problems", empty="none")),
            "## Flagged measurements", "",
            table(table_view(tables.flagged(frame), COLUMNS["flagged"], "flagged", empty="none"))]
    return "\n".join(out).rstrip() + "\n"
