"""Terminal output: one line per finished case and the end-of-run summary table (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} us" if value < 1 else f"{value:.2f} ms"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def notes(record: dict[str, Any]) -> list[str]:
    """Warnings that must travel with a number: instability, partial fallback, accuracy failure."""
    out = []
    measurement = record.get("measurement") or {}
    for reason in measurement.get("unstable") or []:
        out.append(f"unstable: {reason}")
    out.extend(measurement.get("warnings") or [])
    if measurement and not measurement.get("minimums_met", True):
        out.append("stopped at max_s before minimums")
    if measurement.get("precision") and not measurement.get("precision_met"):
        out.append(f"precision +-{measurement['precision']:.0%} not reached")
    placement = record.get("placement") or {}
    if placement.get("partial_fallback"):
        out.append(f"partial fallback: {placement['on_requested']}/{placement['total']} nodes on "
                   f"{record['runtime']['providers_requested'][0]}")
    accuracy = record.get("accuracy") or {}
    if accuracy.get("verdict") == "fail":
        out.append("accuracy FAIL: " + "; ".join(accuracy.get("problems", [])))
    return out


def case_line(record: dict[str, Any]) -> str:
    status = record["status"]
    if status != "ok":
        return f"{record['case_id']}: {status.upper()}: {record.get('reason')}"
    latency = record["latency_ms"]
    text = (f"{record['case_id']}: ok p50 {fmt_ms(latency['p50'])} p99 {fmt_ms(latency['p99'])} "
            f"{record['throughput']['samples_per_s']:.1f} samples/s")
    accuracy = record.get("accuracy") or {}
    if "cosine" in accuracy:
        text += f" cos {accuracy['cosine']:.5f}"
    extra = notes(record)
    return text + (f"  [{'; '.join(extra)}]" if extra else "")


COLUMNS = (("case", "left", False), ("status", "left", False), ("p50", "right", False), ("p99", "right", False),
           ("+-ci", "right", True), ("samples/s", "right", False), ("peak MB", "right", True),
           ("nodes on EP", "right", True), ("accuracy", "right", False), ("note", "right", False))


def summary_table(document: dict[str, Any], width: int | None = None) -> Group:
    """The end-of-run table; reasons and warnings follow it as numbered notes so columns stay narrow.

    Below 130 columns the optional columns (CI, memory, placement) are left out; the results file has them.
    """
    columns = [c for c in COLUMNS if not (c[2] and width is not None and width < 130)]
    table = Table(title=escape(f"{document['suite']['name']} ({document['status']}) on "
                               f"{document['environment'].get('cpu_model')}"),
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

    for record in document["cases"]:
        row = {"case": escape(record["case_id"])}
        if record["status"] != "ok":
            style = "red" if record["status"] == "failed" else "yellow"
            row.update(status=f"[{style}]{record['status']}[/]",
                       note=escape(note([str(record.get("reason") or "no reason recorded")])))
        else:
            latency = record["latency_ms"]
            placement = record.get("placement") or {}
            accuracy = record.get("accuracy") or {}
            acc = f"cos {accuracy['cosine']:.4f}" if "cosine" in accuracy else "ref" if not accuracy else "-"
            row.update({
                "status": "[green]ok[/]", "p50": fmt_ms(latency["p50"]), "p99": fmt_ms(latency["p99"]),
                "+-ci": f"{latency['median_ci_rel'] * 100:.1f}%",
                "samples/s": fmt_rate(record["throughput"]["samples_per_s"]),
                "peak MB": f"{record['memory_mb']['peak_rss']:.0f}",
                "nodes on EP": f"{placement['on_requested']}/{placement['total']}" if placement.get("total") else "-",
                "accuracy": f"[red]{acc} FAIL[/]" if accuracy.get("verdict") == "fail" else acc,
                "note": escape(note(notes(record))),
            })
        table.add_row(*(row.get(name, "") for name, _, _ in columns))
    return Group(table, *(Text(line) for line in footnotes))
