"""Regression detection: baseline vs candidate results, one verdict per case and metric.

Why this is not a single percentage
-----------------------------------
On shared runners a case's latency moves by several percent between two runs with no code
change, and a whole case sometimes runs 20-50 % slower because a neighbour took the CPU for a
second or two (measured on this project's 2-core CI machine: 4 of 72 case-runs). Tools that
gate on one percentage drown their users in such alarms; tools that gate on a significance
test alone flag 1 % shifts once there are 50k samples. So a change is a regression only when
all of these hold (asv's rule, test AND effect, made robust to contention):

1. **Significance.** Mann-Whitney U (two-sided, scipy) on *block statistics*, not on raw
   samples: each worker process's samples are cut into contiguous blocks of a common size
   (about 24 blocks on the smaller side, at least ``5 / (1 - q)`` samples so a block's
   ``q``-quantile has data above it) and each block gives one value (its p50/p90/p99, or its
   throughput). Raw samples are autocorrelated (bursts of preemption are consecutive), so a
   test on them reports absurd certainty; block values are close to independent. The
   p-values of the whole grid are adjusted with Benjamini-Hochberg; a test whose smallest
   attainable p-value is above alpha (too few blocks or runs) cannot make a discovery and is
   left out of the family (Tarone's argument).
2. **Effect.** The pooled change (the number the results file reports) must exceed a minimum
   effect (default 5 %, per metric, per case by glob) in the bad direction.
3. **The model, not the machine.** Other processes only ever add time, so the fast end of the
   latency distribution (p5 of the raw samples) is what the code costs here. A speed change
   counts only if p5 moved too; if only the slow part moved it is ``ok`` (with a note). If
   p5 moved the same way but p50 much more, a neighbour disturbed one run throughout: that
   is ``inconclusive`` (rerun), not a regression. If p5 moved the other way, the
   distribution changed shape (more threads than free cores, say): the model's doing, so
   the change stands; and p50 must have moved with p5, or a tail/throughput change is riding
   on a small shift of the whole process (memory layout, clock) and is not counted. Measured
   on 19 runs x 8 cases of the CI machine (162 ordered pairs): MWU on blocks + 5 % alone
   gave a false regression in 134 pairs, the full rule in none (8 pairs inconclusive, all
   from one disturbed case-run), and a 25 %-deeper model was caught in 15 of 15.

With too few values for the test to reach alpha, a change above the minimum effect is
``inconclusive``; a change below it is ``ok`` whatever a test could say, since both
conditions are needed. Peak memory has one value per run, so it is decided only with several
runs per side (or with ``--history``); accuracy is deterministic, so it is a threshold on the
absolute difference. History mode replaces the test with a robust rule on per-run values.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import stats as sps

from .errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, InputError

# --- metrics -------------------------------------------------------------------------------

MetricName = Literal["latency_p50", "latency_p90", "latency_p99", "throughput", "peak_memory",
                     "accuracy_cosine", "accuracy_top1"]


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    higher_is_better: bool
    kind: Literal["samples", "per_run", "exact"]  # where its evidence comes from
    quantile: float | None = None  # latency percentile, for kind "samples"
    relative: bool = True  # min effect is a fraction of the baseline (else an absolute difference)


METRICS: tuple[Metric, ...] = (
    Metric("latency_p50", "latency p50", "ms", False, "samples", 50.0),
    Metric("latency_p90", "latency p90", "ms", False, "samples", 90.0),
    Metric("latency_p99", "latency p99", "ms", False, "samples", 99.0),
    Metric("throughput", "throughput", "samples/s", True, "samples"),
    Metric("peak_memory", "peak memory", "MB", False, "per_run"),
    Metric("accuracy_cosine", "accuracy cosine", "", True, "exact", relative=False),
    Metric("accuracy_top1", "accuracy top-1", "", True, "exact", relative=False),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}

# Relative for speed and memory; absolute for accuracy (a 5 % drop of a cosine of 0.9999 would
# be a broken model long before it counted).
DEFAULT_MIN_EFFECT: dict[str, float] = {"latency_p50": 0.05, "latency_p90": 0.05, "latency_p99": 0.05,
                                        "throughput": 0.05, "peak_memory": 0.05,
                                        "accuracy_cosine": 0.001, "accuracy_top1": 0.01}
# Run-to-run noise of the whole grid (see noise_floor): at least this many cases to estimate it,
# and a change must exceed NOISE_K of its robust sigma as well as the minimum effect.
NOISE_MIN_CASES = 8
NOISE_K = 5.0  # heavy tails: whole processes land slow more often than a normal law says
TARGET_BLOCKS = 24  # blocks on the smaller side; enough for MWU, long enough to absorb bursts
FAST_END = 5.0  # percentile of the raw samples that stands for the model's own cost

Verdict = Literal["regression", "improvement", "ok", "inconclusive", "new", "n/a"]


# --- settings --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MinEffects(_Strict):
    latency_p50: float | None = Field(None, ge=0)
    latency_p90: float | None = Field(None, ge=0)
    latency_p99: float | None = Field(None, ge=0)
    throughput: float | None = Field(None, ge=0)
    peak_memory: float | None = Field(None, ge=0)
    accuracy_cosine: float | None = Field(None, ge=0)
    accuracy_top1: float | None = Field(None, ge=0)

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CaseRule(_Strict):
    match: str = Field(description="fnmatch glob on the case id, e.g. 'resnet50/*/cuda/*'")
    min_effect: MinEffects = Field(default_factory=MinEffects)
    ignore: list[MetricName] = Field(default_factory=list)


class HistoryConfig(_Strict):
    last: int = Field(5, ge=1)
    mad_k: float = Field(3.0, ge=0, description="candidate must also be beyond median + k * MAD of the history")
    min_runs: int = Field(3, ge=1, description="fewer history runs than this: inconclusive")


class CompareConfig(_Strict):
    alpha: float = Field(0.05, gt=0, lt=1)
    min_effect: MinEffects = Field(default_factory=MinEffects)
    cases: list[CaseRule] = Field(default_factory=list)
    history: HistoryConfig = Field(default_factory=HistoryConfig)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a verdict; built once per comparison (no global state)."""

    alpha: float = 0.05
    min_effect: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIN_EFFECT))
    rules: tuple[CaseRule, ...] = ()
    history: HistoryConfig = field(default_factory=HistoryConfig)

    def threshold(self, case_id: str, metric: str) -> float:
        value = self.min_effect[metric]
        for rule in self.rules:  # later rules win
            if fnmatch.fnmatchcase(case_id, rule.match):
                value = rule.min_effect.given().get(metric, value)
        return value

    def ignored(self, case_id: str, metric: str) -> bool:
        return any(metric in rule.ignore and fnmatch.fnmatchcase(case_id, rule.match) for rule in self.rules)


def load_config(path: Path | None) -> CompareConfig:
    """YAML or TOML (by suffix); unknown keys are errors so a typo never silently loosens a gate."""
    if path is None:
        return CompareConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text) if Path(path).suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read compare config: {' '.join(str(exc).split())}") from None
    try:
        return CompareConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"{path}: {where}: {first['msg']}") from None


def make_settings(config: CompareConfig, alpha: float | None = None, min_effect: float | None = None,
                  last: int | None = None) -> Settings:
    """Built-in defaults < config file < command-line flags < the config's per-case rules."""
    effects = {**DEFAULT_MIN_EFFECT, **config.min_effect.given()}
    if min_effect is not None:
        effects.update({m.name: min_effect for m in METRICS if m.relative})
    history = config.history if last is None else config.history.model_copy(update={"last": last})
    return Settings(alpha=config.alpha if alpha is None else alpha, min_effect=effects, rules=tuple(config.cases),
                    history=history)


# --- results: one side of a comparison ------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One case on one side: its records (one per results file that holds it) and pooled status."""

    case_id: str
    records: tuple[dict[str, Any], ...]
    status: str
    reason: str | None

    @property
    def ok_records(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") == "ok"]


def collect(documents: Iterable[dict[str, Any]], candidate: bool) -> dict[str, Side]:
    """Cases by id across files. A candidate case is failed if any of its runs failed (a crash is
    never averaged away); a baseline case is ok if any run was ok."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        for record in document.get("cases", []):
            by_id.setdefault(record["case_id"], []).append(record)
    order = ("failed", "ok", "unavailable") if candidate else ("ok", "failed", "unavailable")
    out = {}
    for case_id, records in by_id.items():
        statuses = [r.get("status") for r in records]
        status = next((s for s in order if s in statuses), statuses[0])
        reason = next((r.get("reason") for r in records if r.get("status") == status), None)
        out[case_id] = Side(case_id, tuple(records), status, reason)
    return out


def segments(record: dict[str, Any]) -> list[np.ndarray]:
    """Raw samples split per worker process (repeat): blocks never straddle two processes."""
    samples = record.get("samples_ms") or []
    if not samples:
        return []
    values = np.asarray(samples, dtype=np.float64)
    sizes = (record.get("measurement") or {}).get("repeat_iterations") or []
    if sizes and sum(sizes) == values.size:
        return [s for s in np.split(values, np.cumsum(sizes)[:-1]) if s.size]
    return [values]


def run_value(record: dict[str, Any], metric: Metric) -> float | None:
    """The headline number of one run, as the results file reports it."""
    value: Any
    if metric.name.startswith("latency_"):
        value = (record.get("latency_ms") or {}).get(f"p{int(metric.quantile or 50)}")
    elif metric.name == "throughput":
        value = (record.get("throughput") or {}).get("samples_per_s")
    elif metric.name == "peak_memory":
        value = (record.get("memory_mb") or {}).get("peak_rss")
    else:
        value = (record.get("accuracy") or {}).get(metric.name.removeprefix("accuracy_"))
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def min_block(metric: Metric) -> int:
    """Samples per block so that a block's quantile has about 5 samples above it."""
    q = (metric.quantile or 50.0) / 100.0
    return max(10, math.ceil(5 / (1 - q)))


def block_size(metric: Metric, sides: Iterable[list[np.ndarray]]) -> int:
    """One block size for every run involved, so the block quantiles have the same bias."""
    smallest = min((sum(s.size for s in segs) for segs in sides), default=0)
    return max(min_block(metric), smallest // TARGET_BLOCKS)


def block_values(segs: list[np.ndarray], metric: Metric, size: int, record: dict[str, Any]) -> np.ndarray:
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
            out.append(np.percentile(blocks, metric.quantile, axis=1))
    return np.concatenate(out) if out else np.empty(0)


def throughput_scale(record: dict[str, Any]) -> float:
    """samples/s = streams * batch * 1000 / mean latency (ms): Little's law for a closed loop,
    which is how the worker drives the session. Used for the test only; the reported
    throughput is the measured one."""
    params = record.get("params") or {}
    throughput = record.get("throughput") or {}
    streams = throughput.get("streams") or params.get("streams") or 1
    batch = throughput.get("batch") or params.get("batch") or 1
    return 1000.0 * float(streams) * float(batch)


# --- evidence and verdicts -------------------------------------------------------------------


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
    threshold: float | None = None
    noise_threshold: float | None = None  # the grid's run-to-run noise floor (see noise_floor)
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
    size = block_size(metric, b_segs + c_segs)
    b_blocks = np.concatenate([block_values(s, metric, size, r) for s, r in zip(b_segs, b_recs)])
    c_blocks = np.concatenate([block_values(s, metric, size, r) for s, r in zip(c_segs, c_recs)])
    if b_blocks.size == 0 or c_blocks.size == 0:
        return Finding(base.case_id, metric.name, "", b_val, c_val, change, floor, floor_threshold,
                       as_metric(metric, median), disturbed, threshold,
                       note=f"fewer than {size} samples per worker: no block to test")
    return Finding(base.case_id, metric.name, "", b_val, c_val, change, floor, floor_threshold,
                   as_metric(metric, median), disturbed, threshold,
                   p_value=mann_whitney(b_blocks, c_blocks), n_baseline=int(b_blocks.size),
                   n_candidate=int(c_blocks.size), testable=min_attainable_p(b_blocks.size, c_blocks.size) <= alpha,
                   note=f"{b_blocks.size} vs {c_blocks.size} blocks of {size} samples")


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
    together. When both moved the same way but p50 by much more (more than the minimum effect
    and more than a quarter of its move), other processes slowed one of the runs throughout."""
    if median is None or floor is None or median * floor <= 0:
        return ""
    gap = abs(median) - abs(floor)
    if gap > max(threshold, abs(median) / 4):
        side = "candidate" if median > 0 else "baseline"
        return (f"the {side} run looks disturbed: its p50 moved {fmt_pct(median)} and its fast end (p5) only "
                f"{fmt_pct(floor)}, where a change of the model moves both alike")
    return ""


def pooled(records: list[dict[str, Any]], segs: list[list[np.ndarray]], metric: Metric) -> float | None:
    """The side's number: the median over its runs of each run's value (the percentile of the
    run's samples, as the results file reports it). With one run that is the run's value;
    with several (a baseline saved from 3 runs), one disturbed run is outvoted."""
    if metric.quantile is not None and records and all(segs):
        return quantile(segs, metric.quantile)
    values = [v for v in (run_value(r, metric) for r in records) if v is not None]
    return float(np.median(values)) if values else None


def run_evidence(base: Side, cand: Side, metric: Metric, threshold: float, alpha: float) -> Finding:
    """Peak memory: one value per run, so the runs are the observations."""
    b = np.array([v for v in (run_value(r, metric) for r in base.ok_records) if v is not None])
    c = np.array([v for v in (run_value(r, metric) for r in cand.ok_records) if v is not None])
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


def decide(finding: Finding, metric: Metric, alpha: float) -> Finding:
    """Apply the rule to evidence whose q-value (BH) is already filled in."""
    if finding.verdict:
        return finding
    worse = worse_by(metric, finding.change) or 0.0
    t = finding.threshold or 0.0
    if metric.kind == "exact":
        return replace(finding, verdict="regression" if worse > t else "improvement" if worse < -t else "ok")
    if abs(worse) < t:
        return replace(finding, verdict="ok")
    direction = "regression" if worse > 0 else "improvement"
    guarded = speed_guard(finding, metric)
    if guarded is not None:
        return guarded
    if not finding.testable:
        what = "blocks" if metric.kind == "samples" else "runs"
        return replace(finding, verdict="inconclusive", note=(
            f"too few {what} for the test to reach alpha {alpha:g}: {finding.note}"))
    if finding.q_value is not None and finding.q_value <= alpha:
        return replace(finding, verdict=direction)
    q = "-" if finding.q_value is None else f"{finding.q_value:.2g}"
    return replace(finding, verdict="ok", note=f"not significant (q={q}); {finding.note}")


def speed_guard(finding: Finding, metric: Metric) -> Finding | None:
    """Overrule a speed change that is not the model's (None: the change stands).

    Only the fast end (p5) tells the model's cost from time other processes added. It did not
    move -> ok. It moved the other way -> the distribution changed shape (threads, say): the
    model's doing, the change stands. It moved the same way -> a slower model moves p5 and p50
    alike, so: p50 moved much more -> a disturbed run, inconclusive for a regression (rerun),
    no improvement claimed; p50 moved less than the minimum -> a tail or throughput change
    riding on a small shift of the whole process (layout, frequency), ok."""
    worse = worse_by(metric, finding.change) or 0.0
    floor = worse_by(metric, finding.floor_change)
    if floor is None:
        return None
    tf = finding.floor_threshold if finding.floor_threshold is not None else (finding.threshold or 0.0)
    if abs(floor) < tf:
        return replace(finding, verdict="ok", note=(
            f"{fmt_pct(finding.change)}, but the fast end (p5) did not move ({fmt_pct(finding.floor_change)}): the "
            f"kind of change other processes cause (a tail-only change of the model looks the same; compare "
            f"against --history or on a quiet machine to tell them apart); {finding.note}"))
    if floor * worse < 0:
        return None  # the shape changed: the model's doing
    if finding.disturbed:
        return replace(finding, verdict="inconclusive" if worse > 0 else "ok",
                       note=f"{fmt_pct(finding.change)} but {finding.disturbed}; rerun; {finding.note}")
    typical = worse_by(metric, finding.median_change)
    if typical is not None and abs(typical) < tf:
        return replace(finding, verdict="ok", note=(
            f"{fmt_pct(finding.change)} with the fast end {fmt_pct(finding.floor_change)} but p50 only "
            f"{fmt_pct(finding.median_change)}: not the whole distribution moving, as a change of the model would; "
            f"{finding.note}"))
    return None


def adjust(findings: list[Finding]) -> list[Finding]:
    """Benjamini-Hochberg over every test that could reach alpha (Tarone: the others cannot
    make a discovery, so counting them would only cost power)."""
    family = [i for i, f in enumerate(findings) if f.testable and f.p_value is not None and not f.verdict]
    if not family:
        return findings
    q = sps.false_discovery_control([findings[i].p_value for i in family], method="bh")
    out = list(findings)
    for i, value in zip(family, q):
        out[i] = replace(out[i], q_value=float(value))
    return out


def fmt_pct(value: float | None) -> str:
    """A relative change as a signed percentage ('+inf' from a zero baseline, '-' when unknown)."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "+inf"
    return f"{value * 100:+.1f}%"


# --- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    findings: list[Finding]
    settings: Settings
    mode: str  # "pair" or "history"
    baseline_runs: list[dict[str, Any]]
    candidate_runs: list[dict[str, Any]]

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


def compare_documents(baseline: list[dict[str, Any]], candidate: list[dict[str, Any]],
                      settings: Settings) -> Comparison:
    base_sides, cand_sides = collect(baseline, candidate=False), collect(candidate, candidate=True)
    findings: list[Finding] = []
    for base, cand in both_ok(base_sides, cand_sides, findings):
        findings.extend(_metric_evidence(base, cand, settings))
    findings = noise_floor(adjust(findings))
    findings = [within_noise(decide(f, METRIC_BY_NAME[f.metric], settings.alpha), METRIC_BY_NAME[f.metric])
                if f.metric in METRIC_BY_NAME else f for f in findings]
    return Comparison(findings, settings, "pair", run_summaries(baseline), run_summaries(candidate))


def grid_sigma(shifts: np.ndarray) -> float:
    """Robust sigma of the run-to-run noise from the grid's log changes.

    Two estimates, the smaller wins: the MAD around the median (right when every case moved
    together: a global change shifts the centre, not the spread) and the median |shift| around
    zero (right when a minority of cases really changed: they sit in the upper half of |shift|
    and leave its median alone; for normal noise median |x| = 0.6745 sigma). Under pure noise
    both estimate sigma. A change that hits between about half and nearly all cases unevenly
    can inflate both: the note on each verdict shows the floor used, and --history avoids it.
    """
    centred = 1.4826 * float(np.median(np.abs(shifts - np.median(shifts))))
    around_zero = float(np.median(np.abs(shifts))) / 0.6745
    return min(centred, around_zero)


def noise_floor(findings: list[Finding]) -> list[Finding]:
    """Attach to each speed finding a noise floor: NOISE_K robust sigmas of the grid's changes.

    Samples within one run cannot show how much the NEXT process on the same machine differs
    (frequency, memory placement, neighbours): on a shared 2-core VM whole runs of identical code
    move by 3-8 %, past a 5 % minimum and significant on any within-run test. The other cases of
    the same comparison can show it: with no real change their shifts scatter around a common
    centre, and the spread of that scatter (1.4826 MAD) is the run-to-run noise. A real regression
    in a few cases stands out from the scatter; a regression of every case moves the centre, not
    the spread, and is still caught against the minimum effect. A change between the minimum
    effect and the floor is inconclusive (see within_noise), never silently ok.
    """
    out = list(findings)
    for metric in METRICS:
        if metric.kind == "exact" or not metric.relative:
            continue
        index = [i for i, f in enumerate(out) if f.metric == metric.name and not f.verdict
                 and f.change is not None and math.isfinite(f.change) and f.change > -1]
        if len(index) < NOISE_MIN_CASES:
            continue
        sigma = grid_sigma(np.log1p([out[i].change for i in index]))
        floor = math.expm1(NOISE_K * sigma)
        for i in index:
            if floor > (out[i].threshold or 0.0):
                out[i] = replace(out[i], noise_threshold=floor, note=(
                    f"run-to-run noise of this comparison: {sigma:.1%} robust sigma over {len(index)} cases, "
                    f"floor {floor:.1%}; {out[i].note}"))
    return out


def within_noise(finding: Finding, metric: Metric) -> Finding:
    """A significant change past the minimum effect but inside the grid's noise floor cannot be
    told from the next process being a little slower: inconclusive (rerun with repeats, or use
    --history), never a regression; an improvement that small is not claimed."""
    worse = worse_by(metric, finding.change) or 0.0
    if finding.noise_threshold is None or abs(worse) > finding.noise_threshold:
        return finding
    if finding.verdict == "regression":
        return replace(finding, verdict="inconclusive", note=(
            f"{fmt_pct(finding.change)} is within this comparison's run-to-run noise (floor "
            f"{finding.noise_threshold:.1%}); rerun with repeats or compare with --history; {finding.note}"))
    if finding.verdict == "improvement":
        return replace(finding, verdict="ok", note=f"within run-to-run noise; {finding.note}")
    return finding


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


def run_summaries(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"path": d.get("_path"), "run_id": d.get("run_id"), "started_at": d.get("started_at"),
             "hostname": (d.get("environment") or {}).get("hostname"),
             "fingerprint": (d.get("environment") or {}).get("fingerprint"), "cases": len(d.get("cases", []))}
            for d in documents]


# --- comparability ----------------------------------------------------------------------------


def fingerprints(documents: list[dict[str, Any]]) -> dict[str, str]:
    """fingerprint -> a hostname that produced it."""
    out: dict[str, str] = {}
    for d in documents:
        env = d.get("environment") or {}
        out.setdefault(str(env.get("fingerprint")), str(env.get("hostname")))
    return out


def runtime_versions(documents: list[dict[str, Any]]) -> dict[str, set[str]]:
    """target -> onnxruntime versions that ran it (cases that never got a runtime carry none)."""
    out: dict[str, set[str]] = {}
    for d in documents:
        for record in d.get("cases", []):
            version = (record.get("runtime") or {}).get("onnxruntime_version")
            if version:
                out.setdefault(record["target"], set()).add(str(version))
    return out


def check_comparable(baseline: list[dict[str, Any]], candidate: list[dict[str, Any]],
                     allow_machines: bool = False, allow_runtimes: bool = False) -> None:
    """Refuse (InputError, exit 2) what only the cross-hardware report may put side by side."""
    if allow_machines:
        return
    b, c = fingerprints(baseline), fingerprints(candidate)
    if len(c) > 1:
        raise InputError(f"the candidate mixes {len(c)} machines ({_machines(c)}); compare one machine at a time")
    if b != c:
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


# --- history ----------------------------------------------------------------------------------


def select_history(documents: list[dict[str, Any]], candidate: list[dict[str, Any]], last: int,
                   allow_machines: bool = False) -> list[dict[str, Any]]:
    """The last K runs of the candidate's machine, the candidate's own files left out."""
    own = {d.get("run_id") for d in candidate}
    prints = set(fingerprints(candidate))
    if len(prints) > 1 and not allow_machines:
        raise InputError(f"the candidate mixes {len(prints)} machines; compare one machine at a time")
    same = [d for d in documents if d.get("run_id") not in own
            and (allow_machines or str((d.get("environment") or {}).get("fingerprint")) in prints)]
    if not same:
        found = _machines(fingerprints(documents)) if documents else "nothing"
        raise InputError(f"no history run from the candidate's machine ({_machines(fingerprints(candidate))}); "
                         f"the history holds {found}")
    same.sort(key=lambda d: str(d.get("started_at") or ""))
    return same[-last:]


def compare_history(history: list[dict[str, Any]], candidate: list[dict[str, Any]], settings: Settings,
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
    return Comparison(findings, settings, "history", run_summaries(history), run_summaries(candidate))


def _same_runtime(history: list[dict[str, Any]], candidate: list[dict[str, Any]], allow: bool) -> list[dict[str, Any]]:
    """History runs made with the candidate's onnxruntime: an upgrade restarts the history."""
    if allow or not candidate:
        return history
    version = (candidate[0].get("runtime") or {}).get("onnxruntime_version")
    return [r for r in history if (r.get("runtime") or {}).get("onnxruntime_version") == version]


def history_finding(case_id: str, history: list[dict[str, Any]], candidate: list[dict[str, Any]], metric: Metric,
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
    band = settings.history.mad_k * 1.4826 * float(np.median(np.abs(hist - center)))
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
        if guarded is not None:
            return guarded
    return replace(finding, verdict="regression" if worse > 0 else "improvement")


def with_history_floor(finding: Finding, history: list[dict[str, Any]], candidate: list[dict[str, Any]],
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
                   median_change=as_metric(metric, median), disturbed=disturbance(median, floor, tf))
