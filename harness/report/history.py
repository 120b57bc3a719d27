"""The history view: each case's p50 across the runs of one suite on one machine, over time,
with changes marked by the same robust rule ``harness compare --history`` applies.

A run is named on the axis by what it measured: its ``--label``, else the commit its CI
exposed (``Provenance``), else its date. A change point is a run whose p50 is worse (or better)
than the median of the runs since the previous change by more than the minimum effect and
``mad_k`` x MAD, and passes compare's fast-end guard; the next runs are then judged against the
new level only, so one step is marked once, at the run that made it (at an inconclusive first
night of the new level once the next night confirms it: see ``step_start``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..compare.config import Settings
from ..compare.evidence import Finding, relative_change, run_value
from ..compare.history import history_finding
from ..compare.metrics import METRIC_BY_NAME, Metric
from ..results import CaseRecord, Run
from .data import machine_key

MIN_RUNS = 3  # runs of one suite on one machine that make a history


@dataclass(frozen=True)
class History:
    suite: str
    machine: str
    runs: list[Run]  # oldest first
    points: pd.DataFrame  # one row per run and ok case
    changes: pd.DataFrame  # one row per change point

    def changes_table(self) -> pd.DataFrame:
        """The change points as the HTML and Markdown tables show them."""
        return self.changes.assign(commit=self.changes["commit"].fillna("").astype(str).str[:12],
                                   change_pct=self.changes["change"])


def run_name(position: int, run: Run) -> str:
    """'#3 abc12345': unique on the axis even when two runs share a label."""
    short = run.provenance.short if run.provenance else ""
    return f"#{position + 1} {short or str(run.started_at or '')[:16].replace('T', ' ')}"


def find_history(documents: list[Run], force: bool = False) -> History | None:
    """The runs of the suite and machine with the most runs over time (at least MIN_RUNS, or 2
    when forced); None when the inputs are not a history."""
    groups: dict[tuple[str, str], dict[str, Run]] = {}
    for run in documents:
        groups.setdefault((run.suite.name, machine_key(run.environment)), {})[str(run.run_id)] = run
    if not groups:
        return None
    (suite, machine), found = max(groups.items(), key=lambda item: len(item[1]))
    if len(found) < (2 if force else MIN_RUNS):
        return None
    runs = sorted(found.values(), key=lambda r: str(r.started_at or ""))
    return History(suite, str(runs[0].environment.hostname or machine), runs, _points(runs), _changes(runs))


def _points(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for position, run in enumerate(runs):
        provenance = run.provenance
        for case in run.cases:
            if not case.ok or case.latency_ms is None:
                continue
            interval = case.measurement.p50_interval_ms if case.measurement else None
            rows.append({"position": position, "run": run_name(position, run), "run_id": run.run_id,
                         "started_at": run.started_at, "model": case.model, "case_id": case.case_id,
                         "p50": case.latency_ms.p50, "low": interval[0] if interval else math.nan,
                         "high": interval[1] if interval else math.nan,
                         "commit": provenance.commit if provenance else None,
                         "branch": provenance.branch if provenance else None,
                         "label": provenance.label if provenance else None,
                         "onnxruntime": case.runtime.onnxruntime_version})
    columns = ["position", "run", "run_id", "started_at", "model", "case_id", "p50", "low", "high", "commit",
               "branch", "label", "onnxruntime"]
    return pd.DataFrame(rows, columns=columns)


def _changes(runs: list[Run], settings: Settings | None = None) -> pd.DataFrame:
    """Walk each case's runs in order; judge a run against the runs since the last change.

    A run that moved beyond the minimum effect but was only inconclusive (its fast end moved less
    than its p50: a disturbed night, or a step the guard could not yet bank on) is held; when the
    next run confirms the change in the same direction, the step is marked at the first held run
    that already sat at the new level, not one night late."""
    settings = settings or Settings()
    metric = METRIC_BY_NAME["latency_p50"]
    by_case: dict[str, list[tuple[int, CaseRecord]]] = {}
    for position, run in enumerate(runs):
        for case in run.cases:
            if case.ok:
                by_case.setdefault(case.case_id, []).append((position, case))
    rows: list[dict[str, Any]] = []
    for case_id, series in by_case.items():
        window: list[tuple[int, CaseRecord]] = []
        held: list[tuple[int, CaseRecord, float]] = []  # inconclusive moves since the last judged run
        for position, case in series:
            if window and window[-1][1].runtime.onnxruntime_version != case.runtime.onnxruntime_version:
                window, held = [], []  # an onnxruntime upgrade restarts the history, as in compare --history
            if len(window) >= settings.history.min_runs:
                finding = history_finding(case_id, [c for _, c in window[-settings.history.last:]], [case], metric,
                                          settings)
                if finding.verdict in ("regression", "improvement"):
                    start = step_start(held, position, finding, metric)
                    level = [c for p, c in window if p >= start] + [case]
                    after = float(np.median([v for v in (run_value(c, metric) for c in level) if v is not None]))
                    run = runs[start]
                    rows.append({"position": start, "run": run_name(start, run), "model": case.model,
                                 "case_id": case_id, "verdict": finding.verdict, "before": finding.baseline,
                                 "after": after, "change": relative_change(finding.baseline, after),
                                 "commit": run.provenance.commit if run.provenance else None,
                                 "label": run.provenance.label if run.provenance else None})
                    window, held = [(p, c) for p, c in window if p >= start], []
                elif finding.verdict == "inconclusive" and finding.change is not None:
                    held.append((position, case, finding.change))
                else:
                    held = []
            window.append((position, case))
    columns = ["position", "run", "model", "case_id", "verdict", "before", "after", "change", "commit", "label"]
    return pd.DataFrame(rows, columns=columns).sort_values(["position", "case_id"], ignore_index=True)


def step_start(held: list[tuple[int, CaseRecord, float]], position: int, finding: Finding, metric: Metric) -> int:
    """Where a confirmed step began: the earliest of the held runs just before it that moved the
    same way and sit nearer the new level than the old (in log terms); else the confirming run."""
    start = position
    new, old = finding.candidate, finding.baseline
    if not new or not old or finding.change is None:
        return start
    for held_position, case, change in reversed(held):
        value = run_value(case, metric)
        if (not value or change * finding.change <= 0
                or abs(math.log(value / new)) >= abs(math.log(value / old))):
            break
        start = held_position
    return start
