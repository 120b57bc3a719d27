"""The evidence behind a verdict: each side's runs, block statistics and the test, the effect, the fast end."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from ..results import CaseRecord, Run
from ..stats import BUSY_SHARE, pooled_sigma, rerun_change_bound
from ..units import signed_pct as fmt_pct
from .metrics import FAST_END, METRIC_BY_NAME, TARGET_BLOCKS, Metric


@dataclass(frozen=True)
class Side:
    """One case on one side: its records (one per results file that holds it) and pooled status."""

    case_id: str
    records: tuple[CaseRecord, ...]
    status: str
    reason: str | None

    @property
    def ok_records(self) -> list[CaseRecord]:
        return [r for r in self.records if r.ok]


def collect(documents: Iterable[Run], candidate: bool) -> dict[str, Side]:
    """Cases by id across files. A candidate case is failed if any of its runs failed (a crash is
    never averaged away); a baseline case is ok if any run was ok."""
    by_id: dict[str, list[CaseRecord]] = {}
    for document in documents:
        for record in document.cases:
            by_id.setdefault(record.case_id, []).append(record)
    order = ("failed", "ok", "unavailable") if candidate else ("ok", "failed", "unavailable")
    out = {}
    for case_id, records in by_id.items():
        statuses = [r.status for r in records]
        status = next((s for s in order if s in statuses), statuses[0])
        reason = next((r.reason for r in records if r.status == status), None)
        out[case_id] = Side(case_id, tuple(records), status, reason)
    return out


def segments(record: CaseRecord) -> list[np.ndarray]:
    """Raw samples split per worker process (repeat): blocks never straddle two processes."""
    if not record.samples_ms:
        return []
    values = np.asarray(record.samples_ms, dtype=np.float64)
    sizes = record.measurement.repeat_iterations if record.measurement else []
    if sizes and sum(sizes) == values.size:
        return [s for s in np.split(values, np.cumsum(sizes)[:-1]) if s.size]
    return [values]


def run_value(record: CaseRecord, metric: Metric) -> float | None:
    """The headline number of one run, as the results file reports it."""
    value: Any = None
    if metric.name.startswith("latency_"):
        value = getattr(record.latency_ms, f"p{int(metric.quantile or 50)}", None)
    elif metric.name == "throughput":
        value = record.throughput.samples_per_s if record.throughput else None
    elif metric.name == "peak_memory":
        value = record.memory_mb.peak_rss if record.memory_mb else None
    elif metric.name in SERVING_METRICS:
        value = serving_value(record, metric.name)
    else:
        value = getattr(record.accuracy, metric.name.removeprefix("accuracy_"), None)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


SERVING_METRICS = ("serving_qps", "server_latency", "loadgen_valid")


def serving_value(record: CaseRecord, name: str) -> float | None:
    s = record.serving
    if s is None:
        return None
    if name == "loadgen_valid":
        return 1.0 if s.validity == "VALID" else 0.0
    if name == "server_latency":
        return s.latency_at_bound_ms if s.scenario == "server" and s.peak_qps is None else None
    if s.validity != "VALID":
        return None  # an INVALID run's rate is no rate it can serve; loadgen_valid reports it
    return s.peak_qps if s.peak_qps is not None else (s.completed_qps if s.scenario == "offline" else None)


def min_block(metric: Metric) -> int:
    """Samples per block so that a block's quantile has about 5 samples above it."""
    q = (metric.quantile or 50.0) / 100.0
    return max(10, math.ceil(5 / (1 - q)))


def block_size(metric: Metric, sides: Iterable[list[np.ndarray]]) -> int:
    """One block size for every run involved, so the block quantiles have the same bias."""
    smallest = min((sum(s.size for s in segs) for segs in sides), default=0)
    return max(min_block(metric), smallest // TARGET_BLOCKS)


def block_values(segs: list[np.ndarray], metric: Metric, size: int, record: CaseRecord) -> np.ndarray:
    """One value per contiguous block of ``size`` samples within each worker process."""
    out = []
    for seg in segs:
        k = seg.size // size
        if k == 0:
            continue
        blocks = seg[: k * size].reshape(k, size)
        if metric.name == "throughput":
            out.append(throughput_scale(record) / blocks.mean(axis=1))
        else:
            out.append(np.percentile(blocks, metric.quantile or 50.0, axis=1))
    return np.concatenate(out) if out else np.empty(0)


def throughput_scale(record: CaseRecord) -> float:
    """samples/s = streams * batch * 1000 / mean latency (ms): Little's law for a closed loop,
    which is how the worker drives the session. Used for the test only; the reported
    throughput is the measured one."""
    throughput = record.throughput
    streams = throughput.streams if throughput else record.streams
    batch = throughput.batch if throughput else record.batch
    return 1000.0 * float(streams) * float(batch)


@dataclass(frozen=True)
class Finding:
    """One verdict with everything that led to it (also the JSON/JUnit/Markdown row)."""

    case_id: str
    metric: str  # a metric name, or "status" for case-level events
    verdict: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # relative (cand/base - 1) or absolute difference for accuracy
    floor_change: float | None = None  # change of the fast end (p5), expressed like this metric
    floor_threshold: float | None = None  # the fast end must move at least this much too
    median_change: float | None = None  # change of p50 latency, expressed like this metric
    disturbed: str = ""  # why a run looks disturbed by other processes (p50 moved far more than p5)
    every_process: str = ""  # "slower"/"faster": every candidate process median beyond every baseline one by the p50 minimum
    busy: str = ""  # which run the harness measured on a busy machine (other processes' CPU share)
    threshold: float | None = None
    noise_threshold: float | None = None  # the grid's run-to-run noise floor (see noise_floor)
    rerun_threshold: float | None = None  # the change reruns stay inside, from both runs' process spread
    p_value: float | None = None
    q_value: float | None = None
    n_baseline: int = 0  # observations the test used (blocks or runs)
    n_candidate: int = 0
    testable: bool = False  # the test could reach alpha with these counts
    note: str = ""

    @property
    def label(self) -> str:
        metric = METRIC_BY_NAME.get(self.metric)
        return metric.label if metric else self.metric

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def relative_change(base: float | None, cand: float | None) -> float | None:
    if base is None or cand is None:
        return None
    if base == 0:
        return 0.0 if cand == 0 else math.inf
    return cand / base - 1.0


def worse_by(metric: Metric, change: float | None) -> float | None:
    """The change expressed so that positive is bad, whatever the metric's direction."""
    if change is None:
        return None
    return -change if metric.higher_is_better else change


def min_attainable_p(n1: int, n2: int) -> float:
    """Smallest two-sided Mann-Whitney p-value for these sizes: 2 / C(n1+n2, n1)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def mann_whitney(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size == 0 or y.size == 0:
        return None
    if np.all(x == x[0]) and np.all(y == x[0]):
        return 1.0
    return float(sps.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def sample_evidence(base: Side, cand: Side, metric: Metric, threshold: float, floor_threshold: float,
                    alpha: float) -> Finding:
    """Latency percentiles and throughput: test on block values; effect pooled and at the fast end."""
    b_recs, c_recs = base.ok_records, cand.ok_records
    b_segs = [segments(r) for r in b_recs]
    c_segs = [segments(r) for r in c_recs]
    b_val, c_val = pooled(b_recs, b_segs, metric), pooled(c_recs, c_segs, metric)
    if b_val is None or c_val is None:
        return _missing_metric(base.case_id, metric, b_val, c_val)
    change = relative_change(b_val, c_val)
    if not all(b_segs) or not all(c_segs):
        return Finding(base.case_id, metric.name, "", b_val, c_val, change, threshold=threshold,
                       floor_threshold=floor_threshold, note="no raw samples in the results: effect only")
    latency_floor = relative_change(fast_end(b_segs), fast_end(c_segs))
    floor = as_metric(metric, latency_floor)
    median = relative_change(quantile(b_segs, 50.0), quantile(c_segs, 50.0))
    disturbed = disturbance(median, latency_floor, floor_threshold)
    moved, busy = every_process_moved(b_recs, c_recs, floor_threshold), busy_runs(b_recs, c_recs)
    rerun = rerun_threshold(b_recs, c_recs)
    size = block_size(metric, b_segs + c_segs)
    b_blocks = np.concatenate([block_values(s, metric, size, r) for s, r in zip(b_segs, b_recs)])
    c_blocks = np.concatenate([block_values(s, metric, size, r) for s, r in zip(c_segs, c_recs)])
    if b_blocks.size == 0 or c_blocks.size == 0:
        return Finding(base.case_id, metric.name, "", b_val, c_val, change, floor, floor_threshold,
                       as_metric(metric, median), disturbed, moved, busy, threshold, rerun_threshold=rerun,
                       note=f"fewer than {size} samples per worker: no block to test")
    return Finding(base.case_id, metric.name, "", b_val, c_val, change, floor, floor_threshold,
                   as_metric(metric, median), disturbed, moved, busy, threshold, rerun_threshold=rerun,
                   p_value=mann_whitney(b_blocks, c_blocks), n_baseline=int(b_blocks.size),
                   n_candidate=int(c_blocks.size), testable=min_attainable_p(b_blocks.size, c_blocks.size) <= alpha,
                   note=f"{b_blocks.size} vs {c_blocks.size} blocks of {size} samples")


def process_medians(records: list[CaseRecord]) -> list[float]:
    """The median of each worker process (one per repeat), the unit a rerun reproduces."""
    out: list[float] = []
    for record in records:
        m = record.measurement
        if m is not None and m.repeat_medians_ms:
            out.extend(m.repeat_medians_ms)
        elif record.latency_ms is not None:
            out.append(record.latency_ms.p50)
    return out


def rerun_threshold(base: list[CaseRecord], cand: list[CaseRecord]) -> float | None:
    """The change between the two sides that reruns of unchanged code stay inside (90%), from each
    run's pooled process spread (``p50_interval_sigma``, the sigma that sized the rerun interval
    the report printed); None when a side has no such figure (fewer than 3 worker processes)."""
    b, c = (pooled_sigma([r.measurement.p50_interval_sigma for r in records if r.measurement is not None])
            for records in (base, cand))
    return rerun_change_bound(b, c) if b is not None and c is not None else None


MIN_PROCESSES = 2  # per side, for "every process moved" to mean more than one speed mode


def every_process_moved(base: list[CaseRecord], cand: list[CaseRecord], threshold: float) -> str:
    """"slower" when every candidate process's median is beyond every baseline process's median by
    more than the minimum effect ("faster" likewise), else "". No process landing in a slow or fast
    speed mode can explain that away: a guard may call it inconclusive, never ok."""
    b, c = process_medians(base), process_medians(cand)
    if len(b) < MIN_PROCESSES or len(c) < MIN_PROCESSES:
        return ""  # one process is one draw of the machine's speed mode (40% apart here): it proves nothing
    if min(c) > max(b) * (1 + threshold):
        return "slower"
    if max(c) < min(b) * (1 - threshold):
        return "faster"
    return ""


def busy_runs(base: list[CaseRecord], cand: list[CaseRecord]) -> str:
    """Which side the harness itself measured on a busy machine (other processes' share of the CPU)."""
    found = []
    for side, records in (("baseline", base), ("candidate", cand)):
        shares = [r.measurement.other_processes_cpu for r in records
                  if r.measurement is not None and r.measurement.other_processes_cpu is not None]
        if shares and max(shares) > BUSY_SHARE:
            found.append(f"the {side} run was measured on a busy machine (other processes used {max(shares):.0%} "
                         "of the CPU)")
    return " and ".join(found)


def as_metric(metric: Metric, latency_change: float | None) -> float | None:
    """A latency change expressed as a change of this metric (throughput moves inversely)."""
    if latency_change is None or not metric.higher_is_better:
        return latency_change
    return 1.0 / (1.0 + latency_change) - 1.0 if latency_change > -1.0 else math.inf


def quantile(segs: list[list[np.ndarray]], q: float) -> float:
    """Median over runs of each run's q-th percentile (``segs``: per run, per worker process)."""
    return float(np.median([np.percentile(np.concatenate(run), q) for run in segs]))


def fast_end(segs: list[list[np.ndarray]]) -> float:
    """The 5th percentile of all samples: what the model costs when nothing else runs.
    Other processes only ever add time, so a change of the code moves it and a neighbour
    (almost) never does."""
    return quantile(segs, FAST_END)


def disturbance(median: float | None, floor: float | None, threshold: float) -> str:
    """A slower (or faster) model scales its whole latency distribution: p5 and p50 move
    together. When p50 moved much further than p5 (by more than the minimum effect and more than
    a quarter of its move), other processes slowed one of the runs throughout, or at least the
    typical inference changed and the best one did not: neither is a regression to bank on.
    The gap is taken between log ratios, so a step stays a step however large it is (a 4x
    model moving p5 x3 and p50 x4 is not "disturbed"; in plain percent it was: 200% vs 300%).
    A fast end that moved the other way by less than the minimum counts as not moved; one that
    moved the other way by more is a change of shape, not a disturbance (see fast_end_guard)."""
    if median is None or floor is None or median <= -1 or floor <= -1 or median == 0:
        return ""
    if median * floor < 0 and abs(floor) >= threshold:
        return ""
    m, f = math.log1p(median), math.log1p(floor)
    gap = abs(m) - math.copysign(1.0, m) * f  # how much further p50 went than p5, along p50's way
    if gap > max(math.log1p(threshold), abs(m) / 4):
        side = "candidate" if median > 0 else "baseline"
        return (f"the {side} run looks disturbed: its p50 moved {fmt_pct(median)} and its fast end (p5) only "
                f"{fmt_pct(floor)}, where a change of the model moves both alike")
    return ""


def pooled(records: list[CaseRecord], segs: list[list[np.ndarray]], metric: Metric) -> float | None:
    """The side's number: the median over its runs of each run's value (the percentile of the
    run's samples, as the results file reports it). With one run that is the run's value;
    with several (a baseline saved from 3 runs), one disturbed run is outvoted."""
    if metric.quantile is not None and records and all(segs):
        return quantile(segs, metric.quantile)
    values = [v for v in (run_value(r, metric) for r in records) if v is not None]
    return float(np.median(values)) if values else None


def observations(records: list[CaseRecord], metric: Metric) -> list[float]:
    """One value per run; a serving case run in several LoadGen processes gives one per process
    (a rate only from a VALID headline: an INVALID case's figures are no rate it can serve)."""
    out: list[float] = []
    for record in records:
        s = record.serving
        if (metric.name in ("serving_qps", "server_latency") and s is not None and s.repeat_figures
                and run_value(record, metric) is not None):
            out += [float(v) for v in s.repeat_figures if v is not None]
        elif (value := run_value(record, metric)) is not None:
            out.append(value)
    return out


def run_evidence(base: Side, cand: Side, metric: Metric, threshold: float, alpha: float) -> Finding:
    """Peak memory and the serving figures: one value per run (or LoadGen process), so those are
    the observations."""
    b = np.array(observations(base.ok_records, metric))
    c = np.array(observations(cand.ok_records, metric))
    b_val = float(np.median(b)) if b.size else None
    c_val = float(np.median(c)) if c.size else None
    if b_val is None or c_val is None:
        return _missing_metric(base.case_id, metric, b_val, c_val)
    change = relative_change(b_val, c_val)
    return Finding(base.case_id, metric.name, "", b_val, c_val, change, threshold=threshold,
                   p_value=mann_whitney(b, c), n_baseline=int(b.size), n_candidate=int(c.size),
                   testable=min_attainable_p(b.size, c.size) <= alpha, note=f"{b.size} vs {c.size} runs")


def exact_evidence(base: Side, cand: Side, metric: Metric, threshold: float) -> Finding:
    """Accuracy: deterministic for a given model, inputs and runtime, so a threshold is enough."""
    b = [v for v in (run_value(r, metric) for r in base.ok_records) if v is not None]
    c = [v for v in (run_value(r, metric) for r in cand.ok_records) if v is not None]
    b_val = float(np.median(b)) if b else None
    c_val = float(np.median(c)) if c else None
    if b_val is None or c_val is None:
        return _missing_metric(base.case_id, metric, b_val, c_val)
    diff = c_val - b_val
    return Finding(base.case_id, metric.name, "", b_val, c_val, diff, threshold=threshold,
                   note="deterministic: threshold only")


def _missing_metric(case_id: str, metric: Metric, b_val: float | None, c_val: float | None) -> Finding:
    if b_val is None and c_val is None:
        return Finding(case_id, metric.name, "n/a", note="not measured on either side")
    side = "candidate" if c_val is None else "baseline"
    verdict = "inconclusive" if c_val is None else "n/a"
    return Finding(case_id, metric.name, verdict, b_val, c_val, note=f"no {metric.label} in the {side}")
