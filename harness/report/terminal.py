"""Terminal output: one line per finished case and the end-of-run summary table (rich)."""

from __future__ import annotations

from typing import Literal

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..results import CaseRecord, Run
from ..units import ms, rate


def serving_text(record: CaseRecord) -> str:
    """A LoadGen case in one phrase: the load, LoadGen's verdict and the rate it reached."""
    s = record.serving
    assert s is not None
    bound = f"p{s.percentile:g} <= {ms(s.latency_bound_ms)}" if s.percentile and s.latency_bound_ms else ""
    at_bound = f", p{s.percentile:g} {ms(s.latency_at_bound_ms)}" if s.latency_at_bound_ms is not None and s.percentile else ""
    if s.scenario == "offline":
        text = f"offline {s.validity}: {rate(s.completed_qps or 0)} QPS"
        if s.closed_loop_qps:
            text += f" (closed loop, same threads: {rate(s.closed_loop_qps)})"
    elif s.peak_qps is not None:
        text = f"peak {rate(s.peak_qps)} QPS at {bound}{at_bound} ({len(s.points)} server runs)"
    elif s.settings.get("find_peak"):
        text = f"no peak: {s.peak_reason or 'no rate was VALID'}"
    else:
        text = f"server {rate(s.target_qps or 0)} QPS {s.validity} at {bound}{at_bound}"
    if s.validity != "VALID" and s.reasons:
        text += f" ({'; '.join(s.reasons[:2])})"
    return text


def case_line(record: CaseRecord) -> str:
    on = f" on {record.measured_on.node}" if record.measured_on is not None else ""  # a fleet run's machine
    if not record.ok or record.latency_ms is None or record.throughput is None:
        return f"{record.case_id}{on}: {record.status.upper()}: {record.reason}"
    if record.serving is not None:
        return f"{record.case_id}{on}: ok {serving_text(record)}" + (f"  [{'; '.join(record.notes)}]" if record.notes else "")
    latency = record.latency_ms
    text = (f"{record.case_id}{on}: ok p50 {ms(latency.p50)} p99 {ms(latency.p99)} "
            f"{record.throughput.samples_per_s:.1f} samples/s")
    if record.accuracy is not None and record.accuracy.cosine is not None:
        text += f" cos {record.accuracy.cosine:.5f}"
    return text + (f"  [{'; '.join(record.notes)}]" if record.notes else "")


COLUMNS: tuple[tuple[str, Literal["left", "right"], bool], ...] = (("case", "left", False), ("status", "left", False), ("p50", "right", False), ("p99", "right", False),
           ("rerun +-", "right", True), ("samples/s", "right", False), ("peak MB", "right", True),
           ("nodes on EP", "right", True), ("accuracy", "right", False), ("note", "right", False))


def summary_table(run: Run, width: int | None = None) -> Group:
    """The end-of-run table; reasons and notes follow it as numbered footnotes so columns stay narrow.

    Below 130 columns the optional columns (CI, memory, placement) are left out; the results file has them.
    """
    columns = [c for c in COLUMNS if not (c[2] and width is not None and width < 130)]
    table = Table(title=escape(f"{run.suite.name} ({run.status}) on {run.environment.cpu_model}"),
                  title_justify="left")
    for name, justify, _ in columns:
        # Case ids are what users grep for: never break them.
        table.add_column(name, justify=justify, overflow="fold", no_wrap=name == "case")
    footnotes: list[str] = []

    def note(texts: list[str]) -> str:
        if not texts:
            return ""
        footnotes.append(f"[{len(footnotes) + 1}] " + "; ".join(texts))
        return f"[{len(footnotes)}]"

    for record in run.cases:
        row = {"case": escape(record.case_id)}
        latency, throughput = record.latency_ms, record.throughput
        if not record.ok or latency is None or throughput is None:
            style = "red" if record.status == "failed" else "yellow"
            row.update(status=f"[{style}]{record.status}[/]",
                       note=escape(note([str(record.reason or "no reason recorded")])))
        else:
            placement, accuracy = record.placement, record.accuracy
            acc = ("ref" if accuracy is None else f"cos {accuracy.cosine:.4f}" if accuracy.cosine is not None else "-")
            peak = record.memory_mb.peak_rss if record.memory_mb else None
            row.update({
                "status": "[green]ok[/]", "p50": ms(latency.p50), "p99": ms(latency.p99),
                "rerun +-": rerun_halfwidth(record),
                "samples/s": rate(throughput.samples_per_s),
                "peak MB": f"{peak:.0f}" if peak is not None else "-",
                "nodes on EP": f"{placement.on_requested}/{placement.total}" if placement and placement.total else "-",
                "accuracy": f"[red]{acc} FAIL[/]" if accuracy is not None and accuracy.verdict == "fail" else acc,
                "note": escape(note(record.notes)),
            })
            if record.serving is not None:
                valid = record.serving.validity == "VALID"
                row.update({"status": "[green]VALID[/]" if valid else "[red]INVALID[/]", "rerun +-": "-",
                            "note": escape(note([serving_text(record), *record.notes]))})
        table.add_row(*(row.get(name, "") for name, _, _ in columns))
    return Group(table, *(Text(line) for line in footnotes))


def rerun_halfwidth(record: CaseRecord) -> str:
    """Half the width of the interval a rerun's p50 is expected in, relative to p50; '-' with fewer
    than 3 processes (no interval: one process's CI would describe that process only)."""
    m, latency = record.measurement, record.latency_ms
    if m is None or not m.p50_interval_ms or latency is None or not latency.p50:
        return "-"
    low, high = m.p50_interval_ms
    return f"{(high - low) / 2 / latency.p50 * 100:.1f}%"
