"""Pair mode: a baseline's runs against a candidate's, case by case; and whether two runs may be compared."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, InputError
from ..results import Run
from .config import Settings
from .differences import differences
from .evidence import Finding, Side, collect, exact_evidence, run_evidence, sample_evidence
from .metrics import METRIC_BY_NAME, METRICS
from .rules import adjust, busy_guard, decide, noise_floor, within_noise


@dataclass(frozen=True)
class Comparison:
    findings: list[Finding]
    settings: Settings
    mode: str  # "pair" or "history"
    baseline_runs: list[dict[str, Any]]  # run_summaries
    candidate_runs: list[dict[str, Any]]
    differences: list[str] = field(default_factory=list)  # what else differs between the sides (differences.py)

    def count(self, verdict: str) -> int:
        return sum(1 for f in self.findings if f.verdict == verdict)

    @property
    def exit_code(self) -> int:
        return exit_code(self.findings)

    def status_events(self) -> list[Finding]:
        return [f for f in self.findings if f.metric == "status"]


def exit_code(findings: list[Finding]) -> int:
    """0 nothing regressed and every verdict decided; 1 any regression; 3 no regression but at
    least one verdict inconclusive (a pass that could not be checked is not a pass)."""
    verdicts = {f.verdict for f in findings}
    if "regression" in verdicts:
        return EXIT_FAILED
    if "inconclusive" in verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def case_event(base: Side | None, cand: Side | None) -> Finding | None:
    """Status changes between the two sides; None when both are ok (metrics decide then)."""
    case_id = (cand or base).case_id  # type: ignore[union-attr]
    if base is None:
        status = cand.status if cand is not None else "?"
        return Finding(case_id, "status", "new", note=f"new case ({status}); no baseline")
    if cand is None:
        return Finding(case_id, "status", "inconclusive", note="missing in the candidate: not checked")
    b, c = base.status, cand.status
    if c == "failed":
        if b == "failed":
            return Finding(case_id, "status", "n/a", note=f"failing in baseline and candidate: {cand.reason}")
        return Finding(case_id, "status", "regression", note=f"newly failing: {cand.reason}")
    if c == "unavailable":
        if b == "unavailable":
            return Finding(case_id, "status", "n/a", note=f"unavailable on both sides: {cand.reason}")
        return Finding(case_id, "status", "inconclusive", note=f"newly unavailable: {cand.reason}")
    if b != "ok":
        return Finding(case_id, "status", "new", note=f"was {b} in the baseline, ok now: no baseline numbers")
    return None


def compare_documents(baseline: list[Run], candidate: list[Run],
                      settings: Settings) -> Comparison:
    base_sides, cand_sides = collect(baseline, candidate=False), collect(candidate, candidate=True)
    findings: list[Finding] = []
    for base, cand in both_ok(base_sides, cand_sides, findings):
        findings.extend(_metric_evidence(base, cand, settings))
    findings = noise_floor(adjust(findings))
    findings = [busy_guard(within_noise(decide(f, METRIC_BY_NAME[f.metric], settings.alpha), METRIC_BY_NAME[f.metric]),
                           METRIC_BY_NAME[f.metric])
                if f.metric in METRIC_BY_NAME else f for f in findings]
    return Comparison(findings, settings, "pair", run_summaries(baseline), run_summaries(candidate),
                      differences(baseline, candidate))


def both_ok(base_sides: dict[str, Side], cand_sides: dict[str, Side],
            findings: list[Finding]) -> Iterator[tuple[Side, Side]]:
    """Every case in candidate-then-baseline order: status changes (new, missing, newly failing,
    ...) go straight into findings; cases ok on both sides are yielded for their metrics."""
    for case_id in _ordered_ids(base_sides, cand_sides):
        base, cand = base_sides.get(case_id), cand_sides.get(case_id)
        event = case_event(base, cand)
        if event is not None:
            findings.append(event)
        else:
            assert base is not None and cand is not None  # case_event returned None: both sides ok
            yield base, cand


def _ordered_ids(base: dict[str, Side], cand: dict[str, Side]) -> list[str]:
    return list(cand) + [c for c in base if c not in cand]


def _metric_evidence(base: Side, cand: Side, settings: Settings) -> list[Finding]:
    out = []
    for metric in METRICS:
        if settings.ignored(base.case_id, metric.name):
            continue
        threshold = settings.threshold(base.case_id, metric.name)
        if metric.kind == "samples" and any(r.serving is not None for r in base.ok_records + cand.ok_records):
            continue  # a LoadGen case's latency is LoadGen's, with no raw samples: its own metrics judge it
        if metric.kind == "samples":
            finding = sample_evidence(base, cand, metric, threshold, floor_threshold(settings, base.case_id, threshold),
                                      settings.alpha)
        elif metric.kind == "per_run":
            finding = run_evidence(base, cand, metric, threshold, settings.alpha)
        else:
            finding = exact_evidence(base, cand, metric, threshold)
        if finding.verdict != "n/a":
            out.append(finding)
    return out


def floor_threshold(settings: Settings, case_id: str, threshold: float) -> float:
    """How far the fast end must move to confirm a speed change: the smaller of the metric's
    minimum and the p50 one (a p99 allowed 20 % still needs the model 5 % slower, not 20 %)."""
    return min(threshold, settings.threshold(case_id, "latency_p50"))


def run_summaries(documents: list[Run]) -> list[dict[str, Any]]:
    return [{"path": d.source, "run_id": d.run_id, "started_at": d.started_at, "hostname": d.environment.hostname,
             "fingerprint": d.environment.fingerprint, "status": d.status, "cases": len(d.cases)}
            for d in documents]


def fingerprints(documents: list[Run]) -> dict[str, str]:
    """fingerprint -> a hostname that produced it."""
    out: dict[str, str] = {}
    for d in documents:
        out.setdefault(str(d.environment.fingerprint), str(d.environment.hostname))
    return out


def runtime_versions(documents: list[Run]) -> dict[str, set[str]]:
    """target -> onnxruntime versions that ran it (cases that never got a runtime carry none)."""
    out: dict[str, set[str]] = {}
    for d in documents:
        for record in d.cases:
            version = record.runtime.onnxruntime_version
            if version:
                out.setdefault(record.target, set()).add(str(version))
    return out


def check_comparable(baseline: list[Run], candidate: list[Run],
                     allow_machines: bool = False, allow_runtimes: bool = False) -> None:
    """Refuse (InputError, exit 2) what only the cross-hardware report may put side by side."""
    if allow_machines:
        return
    b, c = fingerprints(baseline), fingerprints(candidate)
    if len(c) > 1:
        raise InputError(f"the candidate mixes {len(c)} machines ({_machines(c)}); compare one machine at a time")
    if set(b) != set(c):  # by fingerprint alone: CI containers get a new hostname every night
        raise InputError(f"baseline ({_machines(b)}) and candidate ({_machines(c)}) come from different machines; "
                         "compare like with like, or pass --allow-different-machines")
    if allow_runtimes:
        return
    bv, cv = runtime_versions(baseline), runtime_versions(candidate)
    for target in sorted(set(bv) & set(cv)):
        if bv[target] != cv[target]:
            raise InputError(f"target {target}: onnxruntime {', '.join(sorted(bv[target]))} in the baseline, "
                             f"{', '.join(sorted(cv[target]))} in the candidate; pass --allow-different-runtimes "
                             "to measure the upgrade itself")


def _machines(prints: dict[str, str]) -> str:
    return ", ".join(f"{host} [{fp}]" for fp, host in prints.items())
