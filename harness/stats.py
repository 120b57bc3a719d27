"""Latency statistics for benchmark samples.

Imported inside the worker process, which runs in foreign environments where only
the standard library and numpy exist: keep this module free of scipy and of other
``harness`` imports.

Conventions
-----------
* Percentiles (p50 … p999, and the quartiles behind ``iqr``/outliers) use numpy's
  default ``linear`` interpolation (Hyndman & Fan type 7), the same as
  ``np.percentile`` / ``np.median`` and therefore what pytest-benchmark users and
  ad-hoc numpy scripts get, so numbers can be compared directly.
* The median confidence interval is the distribution-free order-statistic interval
  ``[x_(j), x_(n+1-j)]`` (1-based ranks) with ``j`` the largest rank such that
  ``P(B <= j-1) <= (1-confidence)/2`` for ``B ~ Binomial(n, 1/2)``. Coverage is
  therefore ``>= confidence`` for any continuous distribution (conservative, never
  liberal). The binomial tail is computed exactly in log space with ``math.lgamma``
  for every ``n`` (no normal approximation): only the ~10*sqrt(n) pmf terms within
  20 standard deviations below the mean are summed (mass below that is < 1e-80), so
  even n = 10**6 costs a few milliseconds, and results are cached per (n, confidence).
* When ``n`` is too small to reach ``confidence`` (n < 6 at 95 %), :func:`median_ci`
  returns ``(min, max)``; check :func:`median_ci_reached` before trusting it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = [
    "summarize",
    "median_ci",
    "median_ci_reached",
    "relative_precision_reached",
    "repeat_spread",
    "between_process_interval",
    "reproducibility_flags",
]

MAD_SCALE = 1.4826  # makes the MAD a consistent estimator of sigma for normal data
BUSY_SHARE = 0.25  # other processes' share of all CPU time above which the machine was not quiet
_TUKEY_K = 1.5
_P999_MIN_N = 1000  # below this p99.9 is just an interpolation of the top two samples
_Z90 = 1.2815516  # standard normal 90th percentile: (p90 - p50) / _Z90 estimates sigma for normal data
_TAIL_MIN_N = 20  # below this p90 is an interpolation between the top two or three samples
_PERCENTILES = (25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9)


def _as_array(samples: Sequence[float]) -> np.ndarray:
    """1-D float64 view/copy of ``samples``; rejects empty and non-finite input."""
    a = np.asarray(samples, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("no samples")
    if not np.isfinite(a).all():
        raise ValueError("samples contain NaN or infinity")
    return a


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


@lru_cache(maxsize=1024)
def _median_ci_ranks(n: int, confidence: float) -> tuple[int, int] | None:
    """0-based sorted indices ``(lo, hi)`` bounding the median at ``confidence``.

    ``None`` when even ``(min, max)`` does not reach ``confidence``. Cached because
    the measurement loop asks for the same ``n`` pattern repeatedly.
    """
    _check_confidence(confidence)
    if n < 1:
        return None
    half_alpha = (1.0 - confidence) / 2.0
    tol = half_alpha * (1.0 + 1e-12)  # exact ties such as 1/32 must count as reached
    log_nfact = math.lgamma(n + 1)
    log_half_n = n * math.log(2.0)
    # Start 20 sd (sd = sqrt(n)/2) below the mean: the skipped tail is < 1e-80.
    start = max(0, int(n / 2.0 - 10.0 * math.sqrt(n)))
    cdf = 0.0
    r = -1  # largest r with P(B <= r) <= alpha/2
    for i in range(start, n // 2 + 1):
        cdf += math.exp(log_nfact - math.lgamma(i + 1) - math.lgamma(n - i + 1) - log_half_n)
        if cdf > tol:
            break
        r = i
    if r < 0:
        return None
    return r, n - 1 - r


def median_ci_reached(n: int, confidence: float = 0.95) -> bool:
    """Whether ``n`` samples are enough for a median CI at ``confidence`` (n >= 6 at 95 %)."""
    return _median_ci_ranks(int(n), float(confidence)) is not None


def _ci_from_sorted(s: np.ndarray, confidence: float) -> tuple[float, float]:
    ranks = _median_ci_ranks(int(s.size), float(confidence))
    if ranks is None:
        return float(s[0]), float(s[-1])
    return float(s[ranks[0]]), float(s[ranks[1]])


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free order-statistic confidence interval of the median.

    Falls back to ``(min, max)`` — which then has coverage *below* ``confidence`` —
    when :func:`median_ci_reached` is False.
    """
    _check_confidence(confidence)
    a = _as_array(samples)
    ranks = _median_ci_ranks(int(a.size), float(confidence))
    if ranks is None:
        return float(a.min()), float(a.max())
    lo, hi = ranks
    part = np.partition(a, (lo, hi))
    return float(part[lo]), float(part[hi])


def _ratio(num: float, den: float) -> float:
    """``num/|den|`` that stays defined for a zero denominator (0 if num is 0, else inf)."""
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / abs(den)


def summarize(samples_ms: Sequence[float], confidence: float = 0.95) -> dict[str, float | int]:
    """Latency statistics from raw samples (milliseconds).

    Keys: n, mean, std (ddof=1; 0.0 for n == 1), cv, min, p50, p90, p95, p99,
    p999 (only when n >= 1000 — with fewer samples it would be an interpolation
    between the two largest values, not a tail estimate), max, iqr, mad (unscaled),
    mad_scaled (1.4826*mad), cv_robust (mad_scaled/median), outliers (count outside the Tukey fences), median_ci_low,
    median_ci_high, median_ci_rel (half-width / median). All values are plain Python
    ints/floats. ``cv`` and ``median_ci_rel`` are ``inf`` only for a zero
    mean/median with non-zero spread.
    """
    _check_confidence(confidence)
    a = _as_array(samples_ms)
    n = int(a.size)
    s = np.sort(a)  # one sort serves percentiles, CI ranks, min and max
    q1, p50, q3, p90, p95, p99, p999 = (float(v) for v in np.percentile(s, _PERCENTILES))
    mean = float(s.mean())
    std = float(s.std(ddof=1)) if n > 1 else 0.0
    iqr = q3 - q1
    mad = float(np.median(np.abs(s - p50)))
    lo_fence, hi_fence = q1 - _TUKEY_K * iqr, q3 + _TUKEY_K * iqr
    # s is sorted, so the outlier count is two binary searches.
    outliers = int(np.searchsorted(s, lo_fence, side="left")) + int(
        n - np.searchsorted(s, hi_fence, side="right")
    )
    ci_low, ci_high = _ci_from_sorted(s, confidence)

    out: dict[str, float | int] = {
        "n": n,
        "mean": mean,
        "std": std,
        "cv": _ratio(std, mean),
        "min": float(s[0]),
        "p50": p50,
        "p90": p90,
        "p95": p95,
        "p99": p99,
    }
    if n >= _P999_MIN_N:
        out["p999"] = p999
    out.update(
        {
            "max": float(s[-1]),
            "iqr": iqr,
            "mad": mad,
            "mad_scaled": MAD_SCALE * mad,
            "cv_robust": _ratio(MAD_SCALE * mad, p50),
            "outliers": outliers,
            "median_ci_low": ci_low,
            "median_ci_high": ci_high,
            "median_ci_rel": _ratio((ci_high - ci_low) / 2.0, p50),
        }
    )
    return out


def relative_precision_reached(
    samples: Sequence[float], precision: float, confidence: float = 0.95
) -> bool:
    """True when the median CI half-width / median <= ``precision`` (0.01 = ±1 %).

    Meant for the measurement loop: ranks are cached per n and only four order
    statistics are selected with ``np.partition`` (O(n), no sort). Pass a float64
    numpy array (e.g. a view ``buf[:i]`` of a preallocated buffer) to also avoid the
    list-to-array conversion. False while n is too small for a CI at ``confidence``.
    """
    n = len(samples)
    ranks = _median_ci_ranks(n, float(confidence)) if n else None
    if ranks is None:
        return False
    lo, hi = ranks
    a = np.asarray(samples, dtype=np.float64)
    mid_lo, mid_hi = (n - 1) // 2, n // 2
    part = np.partition(a, sorted({lo, mid_lo, mid_hi, hi}))
    median = (float(part[mid_lo]) + float(part[mid_hi])) / 2.0
    if not math.isfinite(median):
        return False
    half_width = (float(part[hi]) - float(part[lo])) / 2.0
    return _ratio(half_width, median) <= precision


MIN_INTERVAL_PROCESSES = 3  # fewer process medians give no interval worth printing
TRIM_FROM = 4  # processes from which the spread flag leaves out the one furthest out
RERUN_COVERAGE = 0.90  # the share of reruns whose p50 the interval aims to hold
_RERUN_Z = 1.6449  # two-sided normal quantile for RERUN_COVERAGE


@lru_cache(maxsize=64)
def _small_sample_factor(n: int) -> float:
    """What 1.4826 x MAD of n normal values must be multiplied by for its median to be sigma:
    with 5 values it is 1.34 (the MAD of few values sits low: it is measured around their own
    median). Computed once per n by a seeded simulation, so it is the same on every machine."""
    draws = np.random.default_rng(20261205).standard_normal((20000, n))
    mad = MAD_SCALE * np.median(np.abs(draws - np.median(draws, axis=1, keepdims=True)), axis=1)
    return float(1.0 / np.median(mad))


def process_sigma(medians: Sequence[float]) -> float | None:
    """Robust sd of the log process medians (1.4826 MAD, corrected for the few values so that
    its median over many cases is unbiased): how much one fresh process differs from the next,
    relatively; None below MIN_INTERVAL_PROCESSES processes."""
    a = _as_array(medians)
    if a.size < MIN_INTERVAL_PROCESSES or np.any(a <= 0):
        return None
    logs = np.log(a)
    return MAD_SCALE * float(np.median(np.abs(logs - np.median(logs)))) * _small_sample_factor(int(a.size))


def pooled_sigma(sigmas: Sequence[float | None]) -> float | None:
    """The run's typical process-to-process spread: the median of its cases' ``process_sigma``.
    Pooled because five processes say little about their own spread, while every case of a run
    shares the machine that causes it."""
    known = [s for s in sigmas if s is not None]
    return float(np.median(known)) if known else None


def rerun_change_bound(sigma_a: float, sigma_b: float) -> float:
    """The relative change between two runs' p50s that reruns of unchanged code stay inside with
    RERUN_COVERAGE, given each run's pooled process spread: with equal sigmas, a p50 outside the
    other run's rerun interval (between_process_interval) is exactly a change past this bound."""
    return math.expm1(_RERUN_Z * math.hypot(sigma_a, sigma_b))


def between_process_interval(medians: Sequence[float], center: float | None = None,
                             run_sigma: float | None = None) -> tuple[float, float, float] | None:
    """(low, high, coverage) for the p50 a rerun will report, from per-process medians.

    A process's speed is partly decided when it starts (memory layout, frequency, neighbours:
    on the shared 2-vCPU VMs here, two modes up to 40% apart), so the samples of one process
    cannot say what the next process will give; the medians of several fresh processes can.

    The interval is the range of the process medians, ``[min, max]``, widened where needed to
    ``center * exp(+-z * sigma * sqrt(2))``: sigma is the run's pooled process spread
    (``run_sigma``; this case's own ``process_sigma`` without one), sqrt(2) because the rerun's
    p50 and this one both carry it, z for RERUN_COVERAGE (90%), which ``coverage`` reports. The
    rerun is treated as one more process, not as the mean of five: processes measured minutes
    apart share the VM's state, so five of them do not narrow the uncertainty as 1/sqrt(5)
    would. Measured on three quickstart runs here (144 ordered pairs of case and rerun): the
    range alone held the rerun's p50 in 72%, this interval in 92% (docs/measurement.md).
    Without ``center`` (older records), the range alone, with its distribution-free coverage of
    the process-median distribution's median, ``1 - 2 * 0.5**n``. None below
    MIN_INTERVAL_PROCESSES processes: say so rather than print an interval a rerun would not respect.
    """
    a = _as_array(medians)
    if a.size < MIN_INTERVAL_PROCESSES:
        return None
    low, high = float(a.min()), float(a.max())
    if center is None:
        return low, high, 1.0 - 2.0 * 0.5 ** int(a.size)
    sigma = run_sigma if run_sigma is not None else process_sigma(medians)
    width = math.exp(_RERUN_Z * (sigma or 0.0) * math.sqrt(2.0))
    return min(low, center / width), max(high, center * width), RERUN_COVERAGE


def repeat_spread(medians: Sequence[float]) -> dict[str, float | int]:
    """Spread between repeats (medians of independent worker processes).

    Within-process CIs miss between-process variance (clocks, allocation, placement);
    this is what shows it. ``rel_range`` is (max-min)/median of the medians, ``rel_range_trimmed``
    the same without the one process furthest out (TRIM_FROM or more processes; else the full range),
    and ``cv`` is std(ddof=1)/mean; all 0 for a single repeat.
    """
    a = _as_array(medians)
    n = int(a.size)
    lo, hi = float(a.min()), float(a.max())
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if n > 1 else 0.0
    median = float(np.median(a))
    s = np.sort(a)
    trimmed = min(s[-2] - s[0], s[-1] - s[1]) if n >= TRIM_FROM else hi - lo
    return {
        "n": n,
        "min": lo,
        "max": hi,
        "mean": mean,
        "rel_range": _ratio(hi - lo, median) if n > 1 else 0.0,
        "rel_range_trimmed": _ratio(float(trimmed), median) if n > 1 else 0.0,
        "cv": _ratio(std, mean) if n > 1 else 0.0,
    }


def _pct(x: float, digits: int) -> str:
    return f"{x * 100:.{digits}f}%" if digits else f"{x * 100:g}%"


def reproducibility_flags(
    repeat: dict | None,
    processes: int,
    precision: float | None = None,
    other_processes_cpu: float | None = None,
    spread_threshold: float = 0.25,
) -> list[str]:
    """Reasons a rerun may not reproduce this case's numbers; empty list = nothing says so.

    Only what predicts a different rerun is flagged: medians of the worker processes that
    disagree by more than ``spread_threshold`` (relative range, without the furthest process
    when there are TRIM_FROM or more), a precision asked for that one
    or two processes cannot show (the next process may land in another speed mode), and a
    machine the harness measured as busy (other processes over BUSY_SHARE of the CPU). The shape
    of the latency tail (p99/p50) is a property of the model on this machine, not a sign of
    trouble: it is reported, never flagged. Strict ``>``: a value at a threshold is not flagged.
    """
    reasons: list[str] = []
    if repeat is not None and repeat.get("n", 0) > 1:
        # One odd process of four or more moves neither the p50 (a median) nor, much, a rerun's; the
        # interval carries it. Processes that disagree in bulk do predict a different rerun.
        spread = repeat.get("rel_range_trimmed", repeat.get("rel_range"))
        if spread is not None and spread > spread_threshold:
            odd = " leaving out the furthest one" if repeat.get("n", 0) >= TRIM_FROM else ""
            reasons.append(f"processes differ: medians {_pct(spread, 1)} apart{odd} > {_pct(spread_threshold, 0)}")
    if precision is not None and processes < MIN_INTERVAL_PROCESSES:
        reasons.append(f"precision +-{_pct(precision, 0)} asked, but {processes} process"
                       f"{'es' if processes != 1 else ''} cannot show what the next one gives "
                       f"(set repeats >= {MIN_INTERVAL_PROCESSES})")
    if other_processes_cpu is not None and other_processes_cpu > BUSY_SHARE:
        reasons.append(f"busy machine: other processes used {other_processes_cpu:.0%} of the CPU while measuring")
    return reasons
