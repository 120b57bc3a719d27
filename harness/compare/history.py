"""History mode: a candidate against the last K runs of its machine, by a robust per-run rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError
from ..results import CaseRecord, Run
from ..stats import MAD_SCALE
from .config import Settings
from .differences import differences
from .evidence import (
    Finding,
    _missing_metric,
    as_metric,
    busy_runs,
    collect,
    disturbance,
    every_process_moved,
    quantile,
    relative_change,
    run_value,
    segments,
    worse_by,
)
from .metrics import FAST_END, METRICS, Metric
from .pair import Comparison, _machines, both_ok, fingerprints, floor_threshold, run_summaries
from .rules import decide, speed_guard


def select_history(documents: list[Run], candidate: list[Run], last: int,
                   allow_machines: bool = False) -> list[Run]:
    """The last K runs of the candidate's machine, the candidate's own files left out."""
    own = {d.run_id for d in candidate}
    prints = set(fingerprints(candidate))
    if len(prints) > 1 and not allow_machines:
        raise InputError(f"the candidate mixes {len(prints)} machines; compare one machine at a time")
    same = [d for d in documents if d.run_id not in own
            and (allow_machines or str(d.environment.fingerprint) in prints)]
    if not same:
        found = _machines(fingerprints(documents)) if documents else "nothing"
        raise InputError(f"no history run from the candidate's machine ({_machines(fingerprints(candidate))}); "
                         f"the history holds {found}")
    same.sort(key=lambda d: str(d.started_at or ""))
    return same[-last:]


def compare_history(history: list[Run], candidate: list[Run], settings: Settings,
                    allow_runtimes: bool = False) -> Comparison:
    """Robust rule per case and metric against the per-run values of the last K runs."""
    cand_sides = collect(candidate, candidate=True)
    hist_sides = collect(history, candidate=False)
    findings: list[Finding] = []
    for base, cand in both_ok(hist_sides, cand_sides, findings):
        case_id = cand.case_id
        records = _same_runtime(base.ok_records, cand.ok_records, allow_runtimes)
        for metric in METRICS:
            if not settings.ignored(case_id, metric.name):
                finding = history_finding(case_id, records, cand.ok_records, metric, settings)
                if finding.verdict != "n/a":
                    findings.append(finding)
    return Comparison(findings, settings, "history", run_summaries(history), run_summaries(candidate),
                      differences(history, candidate))


def _same_runtime(history: list[CaseRecord], candidate: list[CaseRecord], allow: bool) -> list[CaseRecord]:
    """History runs made with the candidate's onnxruntime: an upgrade restarts the history."""
    if allow or not candidate:
        return history
    version = candidate[0].runtime.onnxruntime_version
    return [r for r in history if r.runtime.onnxruntime_version == version]


def history_finding(case_id: str, history: list[CaseRecord], candidate: list[CaseRecord], metric: Metric,
                    settings: Settings) -> Finding:
    """Robust rule on per-run values: worse than the history's median by more than the minimum
    effect AND by more than k * MAD (scaled) of the history. The median, not the worst run,
    is the reference, so one disturbed night does not raise the bar for the next K; the MAD
    band is what widens it for metrics that really do vary (tails, throughput). Speed metrics
    then pass the same fast-end guard as in pair mode."""
    threshold = settings.threshold(case_id, metric.name)
    hist = np.array([v for v in (run_value(r, metric) for r in history) if v is not None])
    cand = [v for v in (run_value(r, metric) for r in candidate) if v is not None]
    if not cand or hist.size == 0:
        return _missing_metric(case_id, metric, float(np.median(hist)) if hist.size else None,
                               float(np.median(cand)) if cand else None)
    c, center = float(np.median(cand)), float(np.median(hist))
    band = settings.history.mad_k * MAD_SCALE * float(np.median(np.abs(hist - center)))
    finding = Finding(case_id, metric.name, "", center, c, threshold=threshold, n_baseline=int(hist.size),
                      n_candidate=len(cand), note=f"{hist.size} history runs, {settings.history.mad_k:g} x MAD = "
                                                  f"{band:.4g} {metric.unit}".rstrip())
    if metric.kind == "exact":
        return decide(replace(finding, change=c - center), metric, settings.alpha)
    finding = replace(finding, change=relative_change(center, c))
    worse = worse_by(metric, finding.change) or 0.0
    if hist.size < settings.history.min_runs:
        return replace(finding, verdict="inconclusive" if abs(worse) >= threshold else "ok",
                       note=f"only {hist.size} history runs (need {settings.history.min_runs}); {finding.note}")
    outside = abs(c - center) > band
    if abs(worse) < threshold or not outside:
        return replace(finding, verdict="ok")
    if metric.kind == "samples":
        finding = with_history_floor(finding, history, candidate, metric,
                                     floor_threshold(settings, case_id, threshold))
        guarded = speed_guard(finding, metric)
        if guarded is not None and guarded.verdict:
            return guarded
        finding = guarded or finding
    return replace(finding, verdict="regression" if worse > 0 else "improvement")


def with_history_floor(finding: Finding, history: list[CaseRecord], candidate: list[CaseRecord],
                       metric: Metric, tf: float) -> Finding:
    """Fast-end and p50 changes of the candidate against the history's medians of them."""
    h = [segments(r) for r in history]
    c = [segments(r) for r in candidate]
    h, c = [s for s in h if s], [s for s in c if s]
    if not h or not c:
        return finding

    def typical(runs: list[list[np.ndarray]], q: float) -> float:
        return float(np.median([quantile([segs], q) for segs in runs]))

    floor = relative_change(typical(h, FAST_END), typical(c, FAST_END))
    median = relative_change(typical(h, 50.0), typical(c, 50.0))
    return replace(finding, floor_change=as_metric(metric, floor), floor_threshold=tf,
                   median_change=as_metric(metric, median), disturbed=disturbance(median, floor, tf),
                   every_process=every_process_moved(history, candidate, tf),
                   busy=busy_runs(history, candidate).replace("the baseline run was", "a history run was"))
