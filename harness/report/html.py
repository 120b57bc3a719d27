"""The self-contained HTML report: one file, plotly.js embedded once, no network access needed.

Everything from suites and results is escaped: jinja2 autoescapes the markup, ``script_json``
makes the embedded chart data safe inside <script>, and charts.py escapes plotly labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from .. import __version__
from ..files import write_atomic_text as write_text
from ..results import Environment, Run, read_all
from ..worker.checks import PROFILE_RUNS
from . import charts, fmt, tables
from .data import Machine, build_frame, machines, runs_note
from .fmt import COLUMNS, Column
from .history import run_name
from .summary import Summary, summarize
from .views import TableView, matrix_view, table_view


def script_json(value: Any) -> Markup:
    """JSON that cannot end its <script> element or open a comment: <, > and & become \\u escapes
    (they only occur inside JSON strings, where the escapes mean the same characters)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return Markup(text)


# plotly.js's cartesian bundle (scatter, bar, box, heatmap: every chart here), the npm package
# plotly.js-cartesian-dist-min at the version plotly.py bundles, gzipped and embedded as base64:
# 0.66 MB instead of the full bundle's 4.8 MB. The page inflates it with the browser's own
# DecompressionStream, so the file stays self-contained and makes no request.
PLOTLY_BUNDLE = Path(__file__).parent / "assets" / "plotly-cartesian.min.js.gz"
PLOTLY_VERSION = "4.1.1"


# Above this, the chart data and the "All numbers" tables also travel gzipped (a 2,000-case report
# was 8.2 MB, half chart data and half table markup); smaller reports keep them readable in the
# source. The page inflates them on load, like plotly.js.
PACK_ABOVE = 1_000_000  # characters


def pack(text: str) -> Markup:
    """gzip + base64: safe inside any element, 3-10x smaller for JSON and table markup."""
    import base64
    import gzip

    return Markup(base64.b64encode(gzip.compress(text.encode(), compresslevel=6, mtime=0)).decode("ascii"))


@lru_cache(maxsize=1)
def plotly_js() -> Markup:
    """The gzipped bundle as base64 (no character of it can end a <script> element)."""
    import base64

    return Markup(base64.b64encode(PLOTLY_BUNDLE.read_bytes()).decode("ascii"))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


@dataclass
class Figures:
    """Chart specs collected while building sections; embedded once as JSON, drawn lazily by id."""

    specs: list[dict[str, Any]] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)

    def add(self, spec: dict[str, Any], caption: str = "", wide: bool = False) -> dict[str, Any]:
        self.specs.append(spec)
        self.captions.append(caption)
        return {"index": len(self.specs) - 1, "height": spec["layout"].get("height", 360), "caption": caption,
                "wide": wide}


def _machine_rows(found: list[Machine]) -> tuple[list[str], list[list[str]]]:
    """Side-by-side environment comparison: the fields that explain a difference in speed."""
    fields = [("hostname", "hostname"), ("cpu_model", "CPU"), ("cpu_count_physical", "physical cores"),
              ("cpu_count_logical", "logical CPUs"), ("memory_gb", "memory GB"), ("os", "OS"),
              ("cpu_governor", "governor"), ("python", "Python"), ("onnxruntime_version", "onnxruntime"),
              ("harness_version", "harness"), ("fingerprint", "fingerprint")]
    rows = [[label, *(fmt.text(m.environment.get(key)) or "-" for m in found)] for key, label in fields]
    gpus = [", ".join(str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in m.environment.get("gpus") or [])
            or "-" for m in found]
    rows.append(["GPUs", *gpus])
    rows.append(["runs", *(", ".join(m.runs) for m in found)])
    return [m.label for m in found], rows


def _environment_items(environment: Environment) -> list[tuple[str, str]]:
    items = []
    for key, value in environment.to_json().items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True) if isinstance(value, dict) else ", ".join(map(str, value))
        items.append((str(key), fmt.text(value) or "-"))
    return items


def _dynamic(frame: pd.DataFrame, fixed: list[Column], kind: str, **kinds: str) -> list[Column]:
    """Fixed columns, then every other column of ``frame`` (machines, batch sizes, targets) as ``kind``."""
    names = {c.key for c in fixed}
    return fixed + [Column(c, c, kinds.get(c, kind)) for c in frame.columns if c not in names]


def _throughput_view(frame: pd.DataFrame, by: str) -> TableView | None:
    """Only when ``by`` varies: a one-column pivot says nothing the percentiles table does not."""
    table = tables.throughput_pivot(frame, by)
    if table.empty or len(table.columns) < 7:  # 4 label columns + fixed + >= 2 values + scaling
        return None
    fixed = [Column("model", "model"), Column("fixed", "other params"), Column("target_label", "target"),
             Column("variant", "variant")]
    return table_view(table, _dynamic(table, fixed, "rate", scaling="x"), f"t-throughput-{by}",
                      f"samples/s by {by}; scaling = samples/s at the largest {by} over the smallest")


def _model_sections(frame: pd.DataFrame, figures: Figures, k: int) -> list[dict[str, Any]]:
    """One chart set per model (never per case), from tables computed once for all models."""
    cases = tables.ok(frame)
    curves = {by: tables.throughput_vs(frame, by) for by in ("batch", "streams")}
    quant = tables.quantization(frame)
    served = tables.serving_points(frame)
    sections = []
    for model in dict.fromkeys(frame["model"]):
        mine = cases[cases["model"] == model]
        out = []
        if len(mine):
            out.append(figures.add(charts.latency_boxes(mine, k),
                                   f"Boxes from at most {k:,} evenly spaced quantiles of each case's raw samples "
                                   "(min and max kept); exact percentiles are in the tables. ✗: fails the accuracy "
                                   "check.", wide=True))
            for by, curve in curves.items():
                if len(curve := curve[curve["model"] == model]):
                    out.append(figures.add(charts.throughput_lines(curve, by),
                                           "Measured, not derived: completed samples over wall time.", wide=True))
            if len(points := quant[quant["model"] == model]) > 1:
                out.append(figures.add(charts.accuracy_scatter(points),
                                       "Accuracy loss is 1 - cosine similarity of the outputs against the fp32 "
                                       "reference on CPU. Lower left is better; × fails the accuracy check; "
                                       "dotted: the Pareto front per params (labelled when the model has one param set; hover names "
                                       "every point)."))
            out.append(figures.add(charts.memory_bars(mine), "Peak RSS includes the runtime and the arena."))
            if mine["profile_by_op"].notna().any():
                out.append(figures.add(charts.op_breakdown(mine),
                                       "From onnxruntime's profiler in an untimed pass (never the timed loop): "
                                       f"each case's mean kernel time per node over {PROFILE_RUNS} warm runs, summed by operator "
                                       "type. An EP that compiles a subgraph (OpenVINO) shows it as one "
                                       "operator. Per node: harness profile RESULTS --case ID.", wide=True))
        if len(points := served[served["model"] == model]):
            out.append(figures.add(charts.serving_curve(points),
                                   "Each point is one MLPerf LoadGen server run: Poisson arrivals at the offered "
                                   "rate, latency counted from each query's scheduled arrival. Open red-ringed "
                                   "markers: INVALID (hover for LoadGen's reasons); star: the peak a search found; "
                                   "dashed: the latency bound.", wide=True))
        sections.append({"model": model, "charts": out})
    return sections


def _dates(documents: list[Run]) -> str:
    starts = sorted(str(d.started_at) for d in documents if d.started_at)
    ends = sorted(str(d.finished_at) for d in documents if d.finished_at)
    if not starts:
        return "-"
    first = starts[0].replace("T", " ").replace("Z", "")
    last = (ends[-1] if ends else starts[-1]).replace("T", " ").replace("Z", "")
    return f"{first} – {last} UTC" if first != last else f"{first} UTC"


def _history_section(documents: list[Run], figures: Figures, force: bool) -> dict[str, Any] | None:
    from .history import find_history

    found = find_history(documents, force)
    if found is None:
        return None
    names = [run_name(i, run) for i, run in enumerate(found.runs)]
    models = []
    for model in dict.fromkeys(found.points["model"]):
        points = found.points[found.points["model"] == model]
        models.append({"model": model, "chart": figures.add(
            charts.history_lines(points, found.changes[found.changes["model"] == model], names, str(model)),
            "Each point: the run's p50, with the range of its worker processes' medians. Triangles: a change "
            "point by compare --history's rule (red up: slower, green down: faster), judged against the runs "
            "since the previous change.", wide=True)})
    return {"suite": found.suite, "machine": found.machine, "runs": len(found.runs), "models": models,
            "changes": table_view(found.changes_table(), COLUMNS["history_changes"], "t-history",
                                  empty="No change point: every run is within the noise of the runs before it.")}


def context(documents: list[Run], baseline: str = "cpu/fp32",
            prices: dict[str, float] | None = None, history: bool = False) -> dict[str, Any]:
    """Everything the template shows, computed once; ``history`` shows the history view even
    for two runs (it shows by itself from three runs of one suite on one machine)."""
    base = tables.parse_baseline(baseline)
    frame = build_frame(documents, prices)
    summary: Summary = summarize(documents, frame, base)
    figures = Figures()
    k = charts.points_per_case(int((frame["status"] == "ok").sum()))
    best = tables.speedup_matrix(frame, base)
    same = tables.speedup_matrix(frame, base, base.variant)
    heatmap = figures.add(charts.speedup_heatmap(best), "Colour: log scale, white = as fast as the baseline. "
                          "Each cell is the target's fastest variant that passes accuracy, at the same params.",
                          wide=True) if not best.speedups.empty else None
    found = machines(documents)
    machine_names, machine_rows = _machine_rows(found)
    comparison = tables.machine_comparison(frame)
    tables_out = {
        "fastest": table_view(summary.fastest, COLUMNS["fastest"], "t-fastest",
                              "Fastest eligible target × variant per model and params (by p50), "
                              f"vs {summary.baseline}"),
        "best": matrix_view(best, "t-best", annotate=True),
        "same": matrix_view(same, "t-same", annotate=False),
        "percentiles": table_view(tables.percentiles(frame), COLUMNS["percentiles"] + (
            [Column("runs", "runs", "int", "runs of this configuration in the inputs; figures are the newest's")]
            if (frame["runs"] > 1).any() else []), "t-percentiles"),
        "throughput_batch": _throughput_view(frame, "batch"),
        "throughput_streams": _throughput_view(frame, "streams"),
        "memory": table_view(tables.memory(frame), COLUMNS["memory"], "t-memory"),
        "cold_start": table_view(tables.cold_start(frame), COLUMNS["cold_start"], "t-cold"),
        "quantization": table_view(tables.quantization(frame), COLUMNS["quantization"], "t-quant"),
        "cost": table_view(cost, COLUMNS["cost"], "t-cost") if len(cost := tables.cost(frame)) else None,
        "problems": table_view(tables.problems(frame), COLUMNS["problems"], "t-problems"),
        "serving": table_view(served, COLUMNS["serving"], "t-serving") if len(served := tables.serving(frame, base))
        else None,
        "problems_grouped": table_view(tables.problems_grouped(frame), COLUMNS["problems_grouped"],
                                       "t-problems-grouped", empty="No case failed and none was unavailable."),
        "flagged": table_view(tables.flagged(frame), COLUMNS["flagged"], "t-flagged",
                              empty="No measurement carries a warning."),
        "machines": table_view(comparison, _dynamic(comparison, [Column("model", "model"), Column("config", "params"),
                                                                 Column("target", "target"),
                                                                 Column("variant", "variant")], "ms",
                                                     fastest="text", ratio="x"),
                               "t-machines") if len(comparison) else None,
    }
    models = _model_sections(frame, figures, k)
    history_view = _history_section(documents, figures, history)
    return {
        "history": history_view,
        "title": summary.title, "summary": summary,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "dates": _dates(documents), "runs_note": runs_note(documents, frame), "harness_version": __version__, "heatmap": heatmap, "tables": tables_out,
        "models": models, "machines": found, "machine_names": machine_names, "machine_rows": machine_rows,
        "environments": [(m, _environment_items(m.environment)) for m in found], "points_per_case": k,
        "figure_specs": figures, "figures": (figure_json := script_json(figures.specs)), "plotly_js": plotly_js(), "n_figures": len(figures.specs),
        "figures_gz": pack(str(figure_json)) if len(figure_json) > PACK_ABOVE else None, "pack": pack,
        "pack_above": PACK_ABOVE,
    }


def render_html(documents: list[Run], baseline: str = "cpu/fp32",
                prices: dict[str, float] | None = None, history: bool = False) -> str:
    return render_context(context(documents, baseline, prices, history))


def render_context(values: dict[str, Any]) -> str:
    """The page from a ``context`` (the caller may use the same context's figures elsewhere)."""
    return _environment().get_template("report.html.j2").render(**values)


def write_report(paths: list[Path], output: Path, baseline: str = "cpu/fp32",
                 prices: dict[str, float] | None = None, history: bool = False) -> Path:
    """Read results files/folders and write one self-contained HTML report; returns its path."""
    return write_text(Path(output), render_html(read_all(paths), baseline, prices, history))
