"""Plotly figure specs (plain dicts, rendered by the embedded plotly.js) for the HTML report.

Plain dicts rather than ``plotly.graph_objects``: building and validating hundreds of
objects for a 2,000-case run costs seconds, while the specs are a handful of keys. Every
string from results goes through ``esc``: plotly.js renders labels as pseudo-HTML, so an
escaped ``&lt;img&gt;`` shows as text and a raw one would be parsed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import fmt
from .tables import Matrix, choices

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
POINT_BUDGET = 400_000  # raw samples embedded over the whole report: keeps 2,000-case reports a few MB
MAX_POINTS = 2000  # per case
MIN_POINTS = 100


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any) -> float | None:
    """JSON-safe: NaN and infinities become null (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def numbers(values: Iterable[Any]) -> list[float | None]:
    return [number(v) for v in values]


def points_per_case(n_cases: int) -> int:
    return max(MIN_POINTS, min(MAX_POINTS, POINT_BUDGET // max(n_cases, 1)))


def downsample(samples: Sequence[float] | None, k: int) -> list[float]:
    """k evenly spaced quantiles (min and max included), rounded to 4 significant digits.

    Quantiles, not a random subset: the drawn distribution keeps its shape and its extremes
    deterministically, whatever the run length.
    """
    if not isinstance(samples, (list, tuple, np.ndarray)) or len(samples) == 0:
        return []
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size > k:
        values = np.quantile(values, np.linspace(0.0, 1.0, k))
    with np.errstate(divide="ignore"):
        exponent = 3 - np.floor(np.log10(np.abs(values)))
    exponent = np.where(np.isfinite(exponent), exponent, 0)
    scale = 10.0 ** np.abs(exponent)
    # Divide by exact powers of ten (never multiply by 0.1): the result prints short in JSON.
    rounded = np.where(exponent >= 0, np.round(values * scale) / scale, np.round(values / scale) * scale)
    return rounded.tolist()


LEGEND_TOP = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom", "font": {"size": 11}}
LEGEND_RIGHT = {"orientation": "v", "x": 1.01, "xanchor": "left", "y": 1, "yanchor": "top", "font": {"size": 11}}
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "star"]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout = {"title": {"text": esc(title), "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top",
                        "font": {"size": 14}},
              "font": {"family": FONT, "size": 12, "color": "#1f2933"}, "paper_bgcolor": "#ffffff",
              "plot_bgcolor": "#ffffff", "margin": {"l": 64, "r": 16, "t": 56, "b": 40},
              "legend": LEGEND_TOP, "hoverlabel": {"font": {"family": FONT}}, "height": 380}
    layout.update(extra)
    return layout


def log_ticks(values: Iterable[float]) -> dict[str, Any]:
    """Readable ticks for a log axis: 1-2-5 steps (decades only over a wide range), plain labels."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return {"type": "log"}
    low, high = min(finite), max(finite)
    steps = [(m, e) for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
             for m in (1, 2, 5) if low / 2.5 <= m * 10.0 ** e <= high * 2.5]
    if len(steps) > 12:
        steps = [(m, e) for m, e in steps if m == 1]
    ticks = [float(f"{m}e{e}") for m, e in steps]  # exact decimals: 0.2, not 0.20000000000000001
    return {"type": "log", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": esc(title)}, "gridcolor": "#e5e8ec", "zerolinecolor": "#d0d5db", "automargin": True,
            **extra}


def _colors(keys: Iterable[str]) -> dict[str, str]:
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(dict.fromkeys(keys))}


def speedup_heatmap(matrix: Matrix) -> dict[str, Any]:
    """Rows model · params, columns targets; colour on a log2 scale centred on 1× (the baseline)."""
    speedups = matrix.speedups
    rows = [f"{esc(m)} · {esc(c)}" for m, c in speedups.index]
    columns = [esc(c) for c in speedups.columns]
    z, text, hover = [], [], []
    rows_iter = zip(speedups.iterrows(), matrix.variants.iterrows(), matrix.intervals.iterrows())
    for (_, values), (_, variants), (_, intervals) in rows_iter:
        z.append([number(math.log2(v)) if pd.notna(v) and v > 0 else None for v in values])
        text.append([f"{fmt.times(v)}<br>{esc(var)}" if pd.notna(v) else "" for v, var in zip(values, variants)])
        hover.append([f"interval {i}" if isinstance(i, str) and i else "" for i in intervals])
    ticks = [0.25, 0.5, 1, 2, 4, 8, 16]
    # The scale spans at least 0.5x..2x so that a matrix of near-1x values is not painted as extremes.
    finite = [abs(v) for row in z for v in row if v is not None]
    bound = max([1.0, *finite])
    trace = {"type": "heatmap", "z": z, "x": columns, "y": rows, "text": text, "texttemplate": "%{text}",
             "customdata": hover, "textfont": {"size": 11, "color": "#1f2933"},
             "hovertemplate": "%{y}<br>%{x}<br>%{text}<br>%{customdata}<extra></extra>",
             # Light ends keep the dark cell text readable at both extremes.
             "colorscale": [[0, "#e4897b"], [0.5, "#f7f7f7"], [1, "#6fa8d6"]], "zmid": 0, "zmin": -bound,
             "zmax": bound, "xgap": 2, "ygap": 2,
             "colorbar": {"title": {"text": "speedup"}, "tickvals": [math.log2(t) for t in ticks],
                          "ticktext": [f"{t:g}×" for t in ticks], "thickness": 12}}
    return {"data": [trace], "layout": _layout(
        matrix.title, height=max(220, 90 + 34 * len(rows)),
        xaxis=_axis("", side="top", tickangle=0, automargin=True), margin={"l": 16, "r": 16, "t": 70, "b": 16},
        yaxis=_axis("", autorange="reversed", automargin=True))}


def latency_boxes(cases: pd.DataFrame, k: int) -> dict[str, Any]:
    """One box per case from downsampled raw samples, grouped by params (batch, streams)."""
    colors = _colors(cases["config"])
    labels = choices(cases)
    # Marked per target · variant (not per case) so that every params group shares one category.
    failing = {label for label, verdict in zip(labels, cases["verdict"]) if verdict in ("fail", "error")}
    flagged = [bool(u or f) for u, f in zip(cases["unstable"], cases["partial_fallback"])]
    traces, shown = [], set()
    for label, config, samples, flag in zip(labels, cases["config"], cases["samples_ms"], flagged):
        values = downsample(samples, k)
        if not values:
            continue
        total = len(samples)
        warning = "<br>⚠ flagged: see the flagged cases" if flag else ""
        label = f"{label} ✗" if label in failing else label
        traces.append({"type": "box", "y": values, "x0": esc(label), "name": esc(config),
                       "legendgroup": esc(config), "offsetgroup": esc(config), "showlegend": config not in shown,
                       "marker": {"color": colors[config], "size": 3, "opacity": 0.5},
                       "line": {"width": 1.2}, "boxpoints": "outliers",
                       "hovertemplate": f"{esc(label)} · {esc(config)}<br>%{{y:.4g}} ms"
                                        f"<br>(drawn from {min(k, total)} of {total} samples){warning}"
                                        "<extra></extra>"})
        shown.add(config)
    # Log scale once outliers or targets span more than 20x: a linear axis would flatten every box.
    low, high = cases["latency_ms.min"].min(), cases["max"].max()
    log = bool(low > 0 and high / low > 20)
    yaxis = _axis("latency (ms)", **(log_ticks([low, high]) if log else {"rangemode": "tozero"}))
    return {"data": traces, "layout": _layout("Latency distribution per case", boxmode="group", yaxis=yaxis,
                                               xaxis=_axis("", tickangle=-25), height=420)}


def throughput_lines(long: pd.DataFrame, by: str) -> dict[str, Any]:
    """samples/s against batch size or streams: colour is the target, dash and marker the variant."""
    long = long[["series", "target_label", "variant", by, "samples_per_s", "p50"]]
    colors = _colors(long["target_label"])
    variants = {v: i for i, v in enumerate(dict.fromkeys(long["variant"]))}
    traces = []
    for series, group in long.groupby("series", sort=False):
        group = group.sort_values(by)
        first = group.iloc[0]
        style = variants[first["variant"]]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": esc(series),
                       "x": [int(v) for v in group[by]], "y": numbers(group["samples_per_s"]),
                       "line": {"color": colors[first["target_label"]], "width": 2, "dash": DASHES[style % 6]},
                       "marker": {"size": 7, "symbol": SYMBOLS[style % 6]},
                       "customdata": [[fmt.ms(v)] for v in group["p50"]],
                       "hovertemplate": f"{esc(series)}<br>{by} %{{x}}: %{{y:,.4g}} samples/s"
                                        "<br>p50 %{customdata[0]}<extra></extra>"})
    values = sorted({int(v) for v in long[by]})
    return {"data": traces, "layout": _layout(
        f"Throughput vs {by}", xaxis=_axis(by, type="log", tickvals=values, ticktext=[str(v) for v in values]),
        yaxis=_axis("samples / s", rangemode="tozero"), legend=LEGEND_RIGHT,
        margin={"l": 64, "r": 16, "t": 44, "b": 48})}


def memory_bars(cases: pd.DataFrame) -> dict[str, Any]:
    cases = cases[["config", "target_label", "variant", "peak_rss"]]
    colors = _colors(cases["config"])
    traces = []
    for config, group in cases.groupby("config", sort=False):
        traces.append({"type": "bar", "name": esc(config), "x": [esc(c) for c in choices(group)],
                       "y": numbers(group["peak_rss"]), "marker": {"color": colors[config]},
                       "hovertemplate": "%{x}<br>peak RSS %{y:,.0f} MB<extra>" + esc(config) + "</extra>"})
    return {"data": traces, "layout": _layout("Peak memory (RSS)", barmode="group",
                                               yaxis=_axis("MB", rangemode="tozero"), xaxis=_axis("", tickangle=-25))}


def accuracy_scatter(points: pd.DataFrame) -> dict[str, Any]:
    """p50 against 1 - cosine (both log, both minimised); the Pareto front per params is a line.

    Exact matches (loss 0) sit on the axis floor, a decade below the smallest non-zero loss, labelled 0.
    """
    points = points[["config", "target_label", "variant", "p50", "loss", "verdict", "pareto"]]
    positive = points.loc[points["loss"] > 0, "loss"]
    floor = float(positive.min()) / 10 if len(positive) else 1e-9
    colors = _colors(points["config"])
    traces: list[dict[str, Any]] = []
    # Front labels only for a single parameter set: several fronts' labels (fp32 at every batch size
    # sits on the same exact-match floor) land on top of each other. Hover names every point.
    label_front = points["config"].nunique() == 1
    for config, group in points.groupby("config", sort=False):
        y = [v if v > 0 else floor for v in group["loss"]]
        labels = [esc(c) for c in choices(group)]
        custom = [[label, fmt.loss(loss), esc(verdict), "yes" if front else "no"]
                  for label, loss, verdict, front in zip(labels, group["loss"], group["verdict"], group["pareto"])]
        traces.append({"type": "scatter", "mode": "markers", "name": esc(config), "legendgroup": esc(config),
                       "x": numbers(group["p50"]), "y": numbers(y), "customdata": custom,
                       "marker": {"color": colors[config], "size": 9, "line": {"width": 1, "color": "#ffffff"},
                                  "symbol": ["x" if v in ("fail", "error") else "circle" for v in group["verdict"]]},
                       "hovertemplate": "%{customdata[0]}<br>p50 %{x:.4g} ms<br>1 - cosine %{customdata[1]}"
                                        "<br>accuracy %{customdata[2]} · Pareto %{customdata[3]}<extra></extra>"})
        front = group[group["pareto"]].sort_values("p50")
        # Only the front is labelled: those are the candidates worth reading; the rest are in hover.
        line = {"type": "scatter", "mode": "lines", "name": f"Pareto front · {esc(config)}",
                "legendgroup": esc(config), "showlegend": False, "x": numbers(front["p50"]),
                "y": numbers(v if v > 0 else floor for v in front["loss"]), "hoverinfo": "skip", "cliponaxis": False,
                "line": {"color": colors[config], "dash": "dot", "width": 2, "shape": "hv"}}
        if label_front:  # alternate sides along the front, so neighbours do not collide
            line.update(mode="lines+text", text=[esc(c) for c in choices(front)],
                        textposition=["top right" if i % 2 == 0 else "bottom left" for i in range(len(front))],
                        textfont={"size": 10, "color": colors[config]})
        traces.append(line)
    decades = list(range(math.floor(math.log10(floor)) + 1,
                         math.ceil(math.log10(max(float(points["loss"].max()), floor))) + 1))
    decades = decades[::-(-len(decades) // 6)] if decades else decades  # at most about 6 labels
    yticks = {"tickvals": [floor, *(float(f"1e{d}") for d in decades)],
              "ticktext": ["0 (exact)", *(f"10<sup>{d}</sup>" for d in decades)]}
    return {"data": traces, "layout": _layout(
        "Latency vs accuracy loss", xaxis=_axis("p50 latency (ms)", **log_ticks(points["p50"])),
        yaxis=_axis("1 - cosine vs fp32 reference", type="log", **yticks), height=420)}


def serving_curve(points: pd.DataFrame) -> dict[str, Any]:
    """Latency at the bound's percentile against offered QPS (the "hockey stick"), one line per
    target x variant (and params); INVALID runs drawn as open red-ringed markers, the bound dashed."""
    colors = _colors(points["curve"])
    traces = []
    several = points["config"].nunique() > 1
    for (curve, config), group in points.groupby(["curve", "config"], sort=False):
        group = group.sort_values("qps")
        name = f"{curve} · {config}" if several else str(curve)
        valid = group["valid"].astype(bool).tolist()
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": esc(name),
            "x": numbers(group["qps"]), "y": numbers(group["latency_ms"]),
            "line": {"color": colors[curve], "width": 2},
            "marker": {"size": [11 if p else 8 for p in group["peak"]],
                       "symbol": ["star" if p else ("circle" if v else "circle-open") for p, v in zip(group["peak"], valid)],
                       "color": colors[curve], "line": {"width": [0 if v else 2 for v in valid],
                                                         "color": ["#d62728" if not v else colors[curve] for v in valid]}},
            "customdata": [["VALID" if v else "INVALID: " + esc(r)[:160]] for v, r in zip(valid, group["reasons"])],
            "hovertemplate": f"{esc(name)}<br>%{{x:,.4g}} QPS offered: %{{y:.3g}} ms<br>%{{customdata[0]}}<extra></extra>"})
    bound = points["bound_ms"].dropna()
    percentile = points["percentile"].dropna()
    label = f"p{percentile.iloc[0]:g}" if len(percentile) else "latency"
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": float(b), "y1": float(b),
               "line": {"color": "#d62728", "width": 1, "dash": "dash"}} for b in sorted(set(bound))]
    return {"data": traces, "layout": _layout(
        f"{label} latency vs offered load (LoadGen server)", xaxis=_axis("offered QPS", rangemode="tozero"),
        yaxis=_axis(f"{label} latency (ms), from scheduled arrival", **log_ticks([*points["latency_ms"], *bound])),
        shapes=shapes, legend=LEGEND_RIGHT, margin={"l": 64, "r": 16, "t": 44, "b": 48})}


def history_lines(points: pd.DataFrame, changes: pd.DataFrame, runs: list[str], model: str) -> dict[str, Any]:
    """p50 per case across the runs of a history (its interval as error bars); a change point is
    a large marker, red up for a regression, green down for an improvement, named on hover."""
    colors = _colors(points["case_id"])
    traces = []
    for case_id, group in points.groupby("case_id", sort=False):
        group = group.sort_values("position")
        low = (group["p50"] - group["low"]).where(group["low"].notna())
        high = (group["high"] - group["p50"]).where(group["high"].notna())
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": esc(case_id), "x": [esc(r) for r in group["run"]],
            "y": numbers(group["p50"]), "line": {"color": colors[case_id], "width": 2}, "marker": {"size": 6},
            "error_y": {"type": "data", "symmetric": False, "array": numbers(high), "arrayminus": numbers(low),
                        "thickness": 1, "width": 3, "color": colors[case_id]},
            "customdata": [[esc(c or "-"), esc(b or "-"), esc(o or "?")]
                           for c, b, o in zip(group["commit"], group["branch"], group["onnxruntime"])],
            "hovertemplate": f"{esc(case_id)}<br>%{{x}}: p50 %{{y:.4g}} ms<br>commit %{{customdata[0]}} · "
                             "branch %{customdata[1]}<br>onnxruntime %{customdata[2]}<extra></extra>"})
    for verdict, symbol, color in (("regression", "triangle-up", "#d62728"), ("improvement", "triangle-down",
                                                                              "#2ca02c")):
        marked = changes[changes["verdict"] == verdict]
        if len(marked):
            traces.append({
                "type": "scatter", "mode": "markers", "name": f"{verdict} (change point)",
                "x": [esc(r) for r in marked["run"]], "y": numbers(marked["after"]),
                "marker": {"symbol": symbol, "size": 16, "color": color, "line": {"width": 1, "color": "#1f2933"}},
                "customdata": [[esc(c), f"{ch * 100:+.1f}%", fmt.ms(b)]
                               for c, ch, b in zip(marked["case_id"], marked["change"], marked["before"])],
                "hovertemplate": f"{verdict} at %{{x}}<br>%{{customdata[0]}}: %{{customdata[2]}} → %{{y:.4g}} ms "
                                 "(%{customdata[1]})<extra></extra>"})
    return {"data": traces, "layout": _layout(
        f"{model}: p50 over time (runs oldest first)",
        xaxis=_axis("run", type="category", categoryorder="array", categoryarray=[esc(r) for r in runs]),
        yaxis=_axis("p50 latency (ms)", rangemode="tozero"),  # linear from 0: a step reads as its size
        legend=LEGEND_RIGHT, margin={"l": 64, "r": 16, "t": 44, "b": 64})}


OP_TYPES_SHOWN = 8  # op types with their own colour; the rest are "other"


def op_breakdown(cases: pd.DataFrame) -> dict[str, Any]:
    """Where the time goes: each case's kernel time split by operator type (shares, stacked to
    100%), from the untimed profiling pass."""
    cases = cases[cases["profile_by_op"].notna()]
    totals: dict[str, float] = {}
    for shares in cases["profile_by_op"]:
        for op, share in shares.items():
            totals[op] = totals.get(op, 0.0) + share
    shown = sorted(totals, key=lambda op: -totals[op])[:OP_TYPES_SHOWN]
    labels = [esc(f"{c} · {t} · {v}") for c, t, v in zip(cases["config"], cases["target_label"], cases["variant"])]
    traces = []
    for index, op in enumerate([*shown, "other"]):
        values = [(sum(s for o, s in shares.items() if o not in shown) if op == "other" else shares.get(op, 0.0))
                  for shares in cases["profile_by_op"]]
        traces.append({"type": "bar", "orientation": "h", "name": esc(op), "y": labels, "x": numbers(values),
                       "marker": {"color": "#b8c2cc" if op == "other" else PALETTE[index % len(PALETTE)]},
                       "hovertemplate": f"{esc(op)}: %{{x:.1%}} of the kernel time<br>%{{y}}<extra></extra>"})
    return {"data": traces, "layout": _layout(
        "Where the time goes (kernel time by operator type)", barmode="stack",
        xaxis=_axis("share of kernel time", tickformat=".0%", range=[0, 1]),
        yaxis=_axis("", autorange="reversed", automargin=True), legend=LEGEND_RIGHT,
        height=max(340, 80 + 26 * len(labels)), margin={"l": 64, "r": 16, "t": 44, "b": 48})}
