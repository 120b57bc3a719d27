"""The verdict summary both HTML and Markdown open with: what to use per model, and how sure we are."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..results import Run
from . import fmt, tables
from .tables import Baseline, Pick, Verdict


@dataclass(frozen=True)
class Line:
    kind: str  # "Lowest latency", "Highest throughput", "Lowest cost"
    config: str
    choice: str
    value: str
    detail: str
    notes: str = ""


@dataclass(frozen=True)
class Card:
    model: str
    lines: list[Line]
    confidence: str
    decisive: bool | None
    warnings: list[str]


@dataclass(frozen=True)
class Summary:
    title: str
    suites: list[str]
    baseline: str  # as resolved, e.g. "cpu @ host-a · fp32"
    counts: dict[str, int]
    cards: list[Card]
    fastest: pd.DataFrame
    runtimes: list[str]


def _latency_line(pick: Pick, baseline: str) -> Line:
    if pick.choice == baseline:
        detail = "the baseline itself: no other eligible case was faster"
    elif fmt.missing(pick.speedup):
        detail = f"no {baseline} measurement at these params to compare with"
    else:
        interval = fmt.times_range(pick.speedup_low, pick.speedup_high)
        detail = f"{fmt.times(pick.speedup)} vs {baseline} (interval {interval})"
    return Line("Lowest latency", pick.config, pick.choice, f"{fmt.ms(pick.value)} p50", detail, pick.notes)


def _throughput_line(pick: Pick) -> Line:
    detail = f"{fmt.times(pick.speedup)} the baseline's samples/s" if not fmt.missing(pick.speedup) else ""
    if pick.runner_up:
        detail += f"{'; ' if detail else ''}runner-up {pick.runner_up} {fmt.pct(pick.margin)} lower"
    return Line("Highest throughput", pick.config, pick.choice, f"{fmt.compact(pick.value)} samples/s", detail,
                pick.notes)


def _cost_line(pick: Pick) -> Line:
    detail = f"runner-up {pick.runner_up} costs {fmt.pct(pick.margin)} more" if pick.runner_up else ""
    return Line("Lowest cost per million samples", pick.config, pick.choice, f"{fmt.usd(pick.value)} / 1M",
                detail, pick.notes)


def card(verdict: Verdict, baseline: str) -> Card:
    lines = []
    if verdict.latency:
        lines.append(_latency_line(verdict.latency, baseline))
    if verdict.throughput:
        lines.append(_throughput_line(verdict.throughput))
    if verdict.cheapest:
        lines.append(_cost_line(verdict.cheapest))
    decisive = verdict.latency.decisive if verdict.latency else None
    return Card(verdict.model, lines, verdict.confidence, decisive, verdict.warnings)


def _runtimes(frame: pd.DataFrame) -> list[str]:
    """'onnxruntime-openvino 1.24.1 (openvino @ host-b)': which build produced which numbers."""
    cases = frame[frame["status"] == "ok"].sort_values(["machine_rank", "target_rank"])
    builds: dict[str, list[str]] = {}
    for record in cases[["package", "onnxruntime_version", "target_label"]].to_dict("records"):
        build = f"{record['package'] or 'onnxruntime'} {record['onnxruntime_version'] or '?'}"
        builds.setdefault(build, [])
        if record["target_label"] not in builds[build]:
            builds[build].append(record["target_label"])
    return [f"{build} ({', '.join(targets)})" for build, targets in builds.items()]


def serving_lines(frame: pd.DataFrame, baseline: Baseline) -> dict[str, list[Line]]:
    """Per model: the target x variant that served the most QPS within the bound (peak searches)
    and the most offline throughput, with the runner-up; INVALID runs never win."""
    cases = tables.serving(frame, baseline)
    out: dict[str, list[Line]] = {}
    if cases.empty:
        return out
    usable = cases[(cases["validity"] == "VALID") & (cases["kind"].isin(["peak", "offline"]))]
    for (model, config, kind, bound), group in usable.groupby(["model", "serving_config", "kind", "bound"], sort=False):
        group = group.sort_values("rate", ascending=False)
        best = group.iloc[0]
        runner = group.iloc[1] if len(group) > 1 else None
        detail = f"{fmt.times(best['vs_baseline'])} {baseline}" if not fmt.missing(best["vs_baseline"]) else ""
        if runner is not None:
            detail += (f"{'; ' if detail else ''}runner-up {tables.choice(runner)} "
                       f"{fmt.pct(1 - runner['rate'] / best['rate'])} lower")
        what = f"Most QPS at {bound}" if kind == "peak" else "Most offline QPS"
        out.setdefault(str(model), []).append(Line(what, str(config), tables.choice(best),
                                                   f"{fmt.compact(best['rate'])} QPS", detail + " (one LoadGen run each)"))
    return out


def summarize(documents: list[Run], frame: pd.DataFrame, baseline: Baseline) -> Summary:
    suites = list(dict.fromkeys(d.suite.name for d in documents))
    fastest = tables.fastest(frame, baseline)
    label = tables.baseline_label(frame, baseline)
    cards = [card(v, label) for v in tables.verdicts(frame, baseline, fastest)]
    serving = serving_lines(frame, baseline)
    cards = [Card(c.model, c.lines + serving.get(c.model, []),
                  c.confidence if c.lines or not serving.get(c.model) else
                  "Serving picks rest on one LoadGen run per point: a verdict, not an interval.",
                  c.decisive, c.warnings) for c in cards]
    return Summary(f"Benchmark report: {', '.join(suites)}", suites, label, tables.counts(frame), cards, fastest,
                   _runtimes(frame))
