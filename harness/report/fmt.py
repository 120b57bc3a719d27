"""Number formatting and column specs shared by the HTML and Markdown renderers.

One place decides how a latency, a speedup or a price reads, so the two outputs never
disagree; the raw value stays available to the HTML tables for sorting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..units import compact, integer, loss, mb, missing, ms, pct, times, usd
from ..units import times_range as times_range  # re-exported: tables and summary format through fmt

_MD_ESCAPES = {"\\": "\\\\", "|": "\\|", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
               "#": "\\#", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_escape(text: Any) -> str:
    """Safe inside a Markdown table cell and inline text (reports and compare): no cell splits, no
    HTML, no emphasis, no heading; a newline would end the table row, so white space is folded."""
    out = "".join(_MD_ESCAPES.get(ch, ch) for ch in str(text))
    return " ".join(out.split())


def md_code(text: Any) -> str:
    """An identifier (a case id) as inline code in a Markdown table: nothing inside renders, but
    a | would still split the cell and a backtick would end the span."""
    return "`" + " ".join(str(text).replace("`", "'").replace("|", "\\|").split()) + "`"


def text(value: Any) -> str:
    if missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": text, "ms": ms, "x": times, "rate": compact, "pct": pct, "loss": loss, "usd": usd, "mb": mb,
    "int": integer, "count": compact, "cosine": lambda v: "-" if missing(v) else f"{v:.6f}",
}


def value(raw: Any, kind: str) -> str:
    return FORMATS[kind](raw)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"
    title: str = ""  # tooltip: what the number means

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


CASE = [Column("model", "model"), Column("config", "params"), Column("target_label", "target"),
        Column("variant", "variant")]

COLUMNS: dict[str, list[Column]] = {
    "fastest": [Column("model", "model"), Column("config", "params"), Column("choice", "fastest"),
                Column("p50", "p50", "ms", "median latency"),
                Column("speedup", "speedup", "x", "baseline p50 / this p50"),
                Column("speedup_range", "speedup interval", "text",
                       "from the baseline's and this case's uncertainty intervals"),
                Column("samples_per_s", "samples/s", "rate"),
                Column("throughput_speedup", "throughput ×", "x", "samples/s over the baseline's"),
                Column("runner_up", "runner-up"), Column("margin", "margin", "pct", "runner-up p50 / p50 - 1"),
                Column("confidence", "decided?", "text", "do the uncertainty intervals of the two overlap?"),
                Column("notes", "notes")],
    "percentiles": [*CASE, Column("n", "n", "int", "samples"), Column("p50", "p50", "ms"),
                    Column("ci", "rerun interval", "text", "where a rerun's p50 is expected 9 times in 10: the "
                           "range of the worker processes' medians, widened by the run's spread between processes"),
                    Column("ci_rel", "±", "pct", "half-width of the rerun interval relative to p50"),
                    Column("p90", "p90", "ms"), Column("p95", "p95", "ms"), Column("p99", "p99", "ms"),
                    Column("p999", "p99.9", "ms"), Column("max", "max", "ms"),
                    Column("cv_robust", "robust CV", "pct", "scaled MAD / median"),
                    Column("notes", "notes")],
    "memory": [*CASE, Column("peak_rss", "peak RSS MB", "mb", "high-water mark of the worker process"),
               Column("rss_after_session", "RSS after session MB", "mb"),
               Column("session_mb", "session MB", "mb", "RSS after session creation minus RSS at start")],
    "cold_start": [*CASE, Column("session_create", "session create", "ms"),
                   Column("first_inference", "first inference", "ms"), Column("p50", "warm p50", "ms"),
                   Column("first_vs_warm", "first / warm", "x")],
    "quantization": [*CASE, Column("precision", "precision", "text", "the precision the target asked for and the "
                                   "one the runtime reports it ran at (OpenVINO reports it; others do not)"),
                     Column("p50", "p50", "ms"), Column("cosine", "cosine", "cosine"),
                     Column("loss", "1 - cosine", "loss"), Column("top1", "top-1 agreement", "pct"),
                     Column("verdict", "accuracy"), Column("pareto", "Pareto front", "text",
                                                            "no other case is both faster and more accurate")],
    "cost": [*CASE, Column("price_per_hour", "USD / hour", "usd"), Column("samples_per_s", "samples/s", "rate"),
             Column("cost_per_million", "USD / 1M samples", "usd", "a sample is one input row: a batch of 8 is 8 "
                    "samples; price per hour / (samples/s x 3600) x 1e6"),
             Column("inferences_per_dollar", "samples / USD", "count"), Column("cheapest", "cheapest")],
    "problems": [*CASE, Column("status", "status"), Column("reason", "reason")],
    "problems_grouped": [Column("target_label", "target"), Column("status", "status"),
                         Column("cases", "cases", "int"), Column("reason", "reason"), Column("models", "models"),
                         Column("variants", "variants"), Column("params", "params")],
    "flagged": [*CASE, Column("p50", "p50", "ms"), Column("notes", "flags")],
    "history_changes": [Column("run", "run"), Column("commit", "commit"), Column("model", "model"),
                        Column("case_id", "case"), Column("verdict", "verdict"),
                        Column("before", "p50 before", "ms", "median of the runs since the previous change"),
                        Column("after", "p50 at this run", "ms"), Column("change_pct", "change", "pct")],
    "serving": [Column("model", "model"), Column("serving_config", "params"), Column("target_label", "target"),
                Column("variant", "variant"), Column("load", "load", "text", "server: the offered rate; peak "
                                                                         "search; offline: every sample at once"),
                Column("bound", "bound", "text", "server: the latency bound and its percentile"),
                Column("validity", "LoadGen", "text", "LoadGen's verdict: VALID when the latency bound, minimum "
                       "duration and query count and early stopping were all met"),
                Column("serving_reasons", "why INVALID", "text", "LoadGen's words; the early stopping arithmetic "
                       "is in the results file and the LoadGen logs"),
                Column("rate", "QPS", "rate", "peak search: the highest offered QPS that was VALID; otherwise "
                       "the QPS LoadGen saw completed"),
                Column("vs_baseline", "× baseline", "x", "peak or offline QPS over the baseline target and "
                       "variant's"),
                Column("p50", "p50", "ms", "from each query's scheduled arrival (queueing included)"),
                Column("at_bound", "at percentile", "ms", "latency at the bound's percentile"),
                Column("cost_per_million_queries", "USD / 1M queries", "usd", "price per hour / (QPS x 3600) x 1e6"),
],
}
