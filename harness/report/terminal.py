"""Terminal output: one line per finished case and the end-of-run summary table (rich)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1e3:.1f} us" if value < 1 else f"{value:.2f} ms"


def notes(record: dict[str, Any]) -> list[str]:
    """Warnings that must travel with a number: instability, partial fallback, accuracy failure."""
    out = []
    measurement = record.get("measurement") or {}
    for reason in measurement.get("unstable") or []:
        out.append(f"unstable: {reason}")
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


def summary_table(document: dict[str, Any]) -> Table:
    table = Table(title=escape(f"{document['suite']['name']} ({document['status']}) on "
                               f"{document['environment'].get('cpu_model')}"),
                  title_justify="left")
    for column, justify in (("case", "left"), ("status", "left"), ("p50", "right"), ("p99", "right"),
                            ("+-ci", "right"), ("samples/s", "right"), ("peak MB", "right"), ("nodes on EP", "right"),
                            ("accuracy", "right"), ("notes", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for record in document["cases"]:
        if record["status"] != "ok":
            style = "red" if record["status"] == "failed" else "yellow"
            table.add_row(escape(record["case_id"]), f"[{style}]{record['status']}[/]", "", "", "", "", "", "", "",
                          escape(str(record.get("reason") or "")))
            continue
        latency = record["latency_ms"]
        placement = record.get("placement") or {}
        nodes = f"{placement['on_requested']}/{placement['total']}" if placement.get("total") else "-"
        accuracy = record.get("accuracy") or {}
        acc = f"cos {accuracy['cosine']:.4f}" if "cosine" in accuracy else "ref" if not accuracy else "-"
        if accuracy.get("verdict") == "fail":
            acc = f"[red]{acc} FAIL[/]"
        table.add_row(escape(record["case_id"]), "[green]ok[/]", fmt_ms(latency["p50"]), fmt_ms(latency["p99"]),
                      f"{latency['median_ci_rel'] * 100:.1f}%", f"{record['throughput']['samples_per_s']:.1f}",
                      f"{record['memory_mb']['peak_rss']:.0f}", nodes, acc, escape("; ".join(notes(record))))
    return table
