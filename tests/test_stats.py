"""Tests for harness.stats: every statistic is checked against numpy/scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from harness import stats

RNG_SEED = 20240611


def _binom_lo_rank(n: int, confidence: float) -> int | None:
    """Reference: largest r with Binom(n, .5).cdf(r) <= alpha/2, via scipy."""
    half_alpha = (1.0 - confidence) / 2.0
    r = int(sps.binom.ppf(half_alpha, n, 0.5))
    while r >= 0 and sps.binom.cdf(r, n, 0.5) > half_alpha:
        r -= 1
    while sps.binom.cdf(r + 1, n, 0.5) <= half_alpha:
        r += 1
    return r if r >= 0 else None


def _samples() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    normal = rng.normal(10.0, 0.5, 500)
    with_outliers = np.concatenate([rng.normal(5.0, 0.1, 300), [50.0, 60.0, 0.01, 80.0]])
    return {
        "lognormal": rng.lognormal(mean=1.0, sigma=0.8, size=2000),
        "normal": normal,
        "with_outliers": with_outliers,
        "n2": np.array([3.0, 7.0]),
        "n5": np.array([4.0, 1.0, 3.0, 2.0, 10.0]),
        "ints": np.arange(1, 101, dtype=float),
    }


SAMPLES = _samples()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_summarize_matches_numpy_scipy(name: str) -> None:
    x = SAMPLES[name]
    s = stats.summarize(x.tolist())
    q25, q50, q75, q90, q95, q99 = np.percentile(x, [25, 50, 75, 90, 95, 99])
    assert s["n"] == x.size
    assert s["mean"] == pytest.approx(np.mean(x))
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert s["cv"] == pytest.approx(np.std(x, ddof=1) / np.mean(x))
    assert s["min"] == x.min() and s["max"] == x.max()
    assert s["p50"] == pytest.approx(np.median(x))
    assert s["p90"] == pytest.approx(q90)
    assert s["p95"] == pytest.approx(q95)
    assert s["p99"] == pytest.approx(q99)
    assert s["iqr"] == pytest.approx(sps.iqr(x))
    assert s["mad"] == pytest.approx(sps.median_abs_deviation(x, scale=1.0))
    assert s["mad_scaled"] == pytest.approx(sps.median_abs_deviation(x, scale="normal"), rel=1e-4)
    iqr = q75 - q25
    expected_outliers = int(np.sum((x < q25 - 1.5 * iqr) | (x > q75 + 1.5 * iqr)))
    assert s["outliers"] == expected_outliers
    lo, hi = stats.median_ci(x)
    assert (s["median_ci_low"], s["median_ci_high"]) == (lo, hi)
    assert lo <= s["p50"] <= hi
    assert s["median_ci_rel"] == pytest.approx((hi - lo) / 2 / np.median(x))


def test_summarize_types_are_plain_and_json_serialisable() -> None:
    s = stats.summarize(SAMPLES["lognormal"])
    for key, value in s.items():
        assert type(value) in (int, float), key
    assert type(s["n"]) is int and type(s["outliers"]) is int
    json.dumps(s, allow_nan=False)


def test_summarize_key_set() -> None:
    s = stats.summarize(SAMPLES["normal"])
    assert set(s) == {
        "n", "mean", "std", "cv", "min", "p50", "p90", "p95", "p99", "max", "iqr",
        "mad", "mad_scaled", "cv_robust", "outliers", "median_ci_low", "median_ci_high", "median_ci_rel",
    }  # fmt: skip


def test_outliers_detected() -> None:
    s = stats.summarize(SAMPLES["with_outliers"])
    assert s["outliers"] >= 4  # the four planted points at minimum
    assert stats.summarize(SAMPLES["ints"])["outliers"] == 0


def test_lognormal_skew_shows_in_stats() -> None:
    s = stats.summarize(SAMPLES["lognormal"])
    assert s["mean"] > s["p50"]  # right-skewed
    assert s["p99"] - s["p50"] > s["p50"] - s["min"]


def test_p999_only_from_1000_samples() -> None:
    x = np.random.default_rng(RNG_SEED).exponential(1.0, 1000)
    assert "p999" not in stats.summarize(x[:999])
    s = stats.summarize(x)
    assert s["p999"] == pytest.approx(np.percentile(x, 99.9))
    assert s["p99"] <= s["p999"] <= s["max"]


def test_n1() -> None:
    s = stats.summarize([2.5])
    assert s["n"] == 1 and s["std"] == 0.0 and s["cv"] == 0.0
    for k in ("mean", "min", "max", "p50", "p90", "p99", "median_ci_low", "median_ci_high"):
        assert s[k] == 2.5
    assert s["iqr"] == 0.0 and s["mad"] == 0.0 and s["outliers"] == 0
    assert not stats.median_ci_reached(1)


def test_n2_and_n5_linear_interpolation() -> None:
    s2 = stats.summarize([3.0, 7.0])
    assert s2["p50"] == 5.0 and s2["p90"] == pytest.approx(6.6)
    assert s2["std"] == pytest.approx(math.sqrt(8.0))
    s5 = stats.summarize([4.0, 1.0, 3.0, 2.0, 10.0])
    assert s5["p50"] == 3.0 and s5["iqr"] == 2.0 and s5["mad"] == 1.0
    assert s5["p90"] == pytest.approx(np.percentile([1, 2, 3, 4, 10], 90))
    # n=5 cannot reach 95 %: the interval falls back to (min, max) and says so
    assert stats.median_ci([4.0, 1.0, 3.0, 2.0, 10.0]) == (1.0, 10.0)
    assert not stats.median_ci_reached(5)
    assert stats.median_ci_reached(6)


def test_zero_latency_samples() -> None:
    s = stats.summarize([0.0] * 10)
    assert s["cv"] == 0.0 and s["median_ci_rel"] == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_bad_input_rejected(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.summarize(bad)


def test_bad_confidence_rejected() -> None:
    with pytest.raises(ValueError):
        stats.median_ci([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError):
        stats.summarize([1.0, 2.0], confidence=0.0)


@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
@pytest.mark.parametrize("n", [1, 5, 6, 7, 8, 9, 10, 11, 20, 50, 51, 100, 999, 1000, 4321, 10**5])
def test_median_ci_ranks_match_scipy_binom(n: int, confidence: float) -> None:
    r = _binom_lo_rank(n, confidence)
    assert stats.median_ci_reached(n, confidence) == (r is not None)
    x = np.arange(n, dtype=float)  # sorted values equal their 0-based rank
    lo, hi = stats.median_ci(x, confidence)
    if r is None:
        assert (lo, hi) == (0.0, n - 1.0)
    else:
        assert (lo, hi) == (float(r), float(n - 1 - r))
        coverage = sps.binom.cdf(n - 1 - r, n, 0.5) - sps.binom.cdf(r - 1, n, 0.5)
        assert coverage >= confidence


def test_median_ci_reached_thresholds() -> None:
    assert [n for n in range(1, 12) if stats.median_ci_reached(n, 0.95)][0] == 6
    assert [n for n in range(1, 12) if stats.median_ci_reached(n, 0.99)][0] == 8
    assert not stats.median_ci_reached(0)


def test_median_ci_unsorted_input_matches_sorted() -> None:
    x = SAMPLES["lognormal"]
    shuffled = np.random.default_rng(1).permutation(x)
    assert stats.median_ci(shuffled) == stats.median_ci(np.sort(x))


def test_median_ci_empirical_coverage() -> None:
    rng = np.random.default_rng(RNG_SEED)
    true_median = math.log(2.0)  # exponential(scale=1)
    trials, n = 2000, 50
    data = rng.exponential(1.0, size=(trials, n))
    hits = 0
    for row in data:
        lo, hi = stats.median_ci(row, 0.95)
        hits += lo <= true_median <= hi
    coverage = hits / trials
    assert 0.93 <= coverage <= 0.98, coverage


def test_relative_precision_monotone() -> None:
    x = np.random.default_rng(RNG_SEED).lognormal(0.0, 0.3, 20_000)
    precisions = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
    reached = [stats.relative_precision_reached(x, p) for p in precisions]
    assert reached == sorted(reached)  # False ... False True ... True
    assert not reached[0] and reached[-1]
    # agrees with summarize's median_ci_rel
    rel = stats.summarize(x)["median_ci_rel"]
    for p in precisions:
        assert stats.relative_precision_reached(x, p) == (rel <= p)
    # more samples from the same distribution -> tighter: once reached, stays reached
    ns = [100, 300, 1000, 3000, 10_000, 20_000]
    at_1pct = [stats.relative_precision_reached(x[:k], 0.01) for k in ns]
    assert at_1pct == sorted(at_1pct) and at_1pct[-1]
    # higher confidence is harder
    assert stats.summarize(x, 0.99)["median_ci_rel"] > rel


def test_relative_precision_small_n_and_lists() -> None:
    assert not stats.relative_precision_reached([], 0.5)
    assert not stats.relative_precision_reached([1.0, 1.0, 1.0, 1.0, 1.0], 0.5)  # n < 6
    assert stats.relative_precision_reached([1.0] * 6, 0.0)
    x = np.random.default_rng(0).normal(10, 1, 1001)
    assert stats.relative_precision_reached(x.tolist(), 0.1) == stats.relative_precision_reached(
        x, 0.1
    )


def test_repeat_spread_known_numbers() -> None:
    r = stats.repeat_spread([10.0, 11.0, 12.0, 9.0])
    assert r["n"] == 4 and r["min"] == 9.0 and r["max"] == 12.0
    assert r["mean"] == pytest.approx(10.5)
    assert r["rel_range"] == pytest.approx(3.0 / 10.5)
    assert r["cv"] == pytest.approx(np.std([10, 11, 12, 9], ddof=1) / 10.5)
    one = stats.repeat_spread([7.0])
    assert one == {"n": 1, "min": 7.0, "max": 7.0, "mean": 7.0, "rel_range": 0.0, "rel_range_trimmed": 0.0,
                   "cv": 0.0}
    five = stats.repeat_spread([10.0, 10.2, 9.9, 10.1, 15.0])  # one slow process
    assert five["rel_range"] == pytest.approx(5.1 / 10.1)
    assert five["rel_range_trimmed"] == pytest.approx(0.3 / 10.1)  # without the furthest one
    with pytest.raises(ValueError):
        stats.repeat_spread([])


def test_cv_robust_ignores_rare_preemptions() -> None:
    body = np.random.default_rng(3).normal(0.006, 0.0001, 10_000)
    body[::500] = 10.0  # 20 samples hit by millisecond preemptions
    s = stats.summarize(body)
    assert s["cv"] > 1.0
    assert s["cv_robust"] == pytest.approx(1.4826 * s["mad"] / s["p50"])
    assert s["cv_robust"] < 0.05


def test_reproducibility_flags() -> None:
    assert stats.reproducibility_flags(None, 1) == []
    assert stats.reproducibility_flags(stats.repeat_spread([5.0]), 1) == []
    repeat = stats.repeat_spread([100.0, 134.0, 105.0])  # rel_range = 34/105
    assert stats.reproducibility_flags(repeat, 3) == ["processes differ: medians 32.4% apart > 25%"]
    assert stats.reproducibility_flags({"n": 3, "rel_range": 0.25}, 3) == []  # at the threshold: not flagged
    assert stats.reproducibility_flags(repeat, 3, spread_threshold=0.4) == []
    assert stats.reproducibility_flags(None, 2, precision=0.01) == [
        "precision +-1% asked, but 2 processes cannot show what the next one gives (set repeats >= 3)"]
    assert stats.reproducibility_flags(None, 3, precision=0.01) == []
    assert stats.reproducibility_flags(None, 5, other_processes_cpu=0.5) == [
        "busy machine: other processes used 50% of the CPU while measuring"]
    assert stats.reproducibility_flags(None, 5, other_processes_cpu=0.2) == []
    # one odd process of five is carried by the interval, not flagged; processes split in bulk are
    assert stats.reproducibility_flags(stats.repeat_spread([10.0, 10.2, 9.9, 10.1, 15.0]), 5) == []
    assert stats.reproducibility_flags(stats.repeat_spread([10.0, 10.2, 14.0, 14.1, 15.0]), 5) == [
        "processes differ: medians 29.3% apart leaving out the furthest one > 25%"]


def test_the_rerun_interval_is_widened_by_the_runs_pooled_spread() -> None:
    medians = [10.0, 10.1, 10.05, 9.95, 10.0]
    assert stats.process_sigma([1.0, 2.0]) is None
    low, high, coverage = stats.between_process_interval(medians, 10.0, run_sigma=0.02)  # type: ignore[misc]
    width = math.exp(1.6449 * 0.02 * math.sqrt(2))
    assert (low, high, coverage) == (pytest.approx(10.0 / width), pytest.approx(10.0 * width), 0.9)
    # a case's own wider range is kept
    low, high, _ = stats.between_process_interval([8.0, 10.0, 10.0, 10.0, 13.0], 10.0, 0.01)  # type: ignore[misc]
    assert (low, high) == (8.0, 13.0)
    assert stats.pooled_sigma([0.01, None, 0.03, 0.02]) == pytest.approx(0.02)
    assert stats.pooled_sigma([None]) is None
    # What 90% means: runs that each shift as a whole (shared VM state) by nearly as much as one
    # process differs from the next (the interval's model: a rerun is like one more process; three
    # quickstart runs here: reruns' p50 differ by 2.2% robust sd, processes by 1.4-2.2% before the
    # small-sample correction), and a rerun's p50 lands inside about 90% of the time; the range of
    # the process medians alone holds it far less often.
    rng = np.random.default_rng(3)
    hits = ranges = 0
    sigmas = []
    trials = 4000
    for _ in range(trials):
        runs = [rng.normal(0, 0.013) + rng.normal(0, 0.015, 5) for _ in range(2)]  # run shift + process spread
        sigmas.append(stats.process_sigma(np.exp(runs[0]).tolist()))
    pooled = float(np.median(sigmas))
    for _ in range(trials):
        runs = [rng.normal(0, 0.013) + rng.normal(0, 0.015, 5) for _ in range(2)]
        first, rerun = np.exp(runs[0]), float(np.median(np.exp(runs[1])))
        low, high, _ = stats.between_process_interval(first.tolist(), float(np.median(first)), pooled)  # type: ignore[misc]
        hits += low <= rerun <= high
        ranges += first.min() <= rerun <= first.max()
    assert 0.85 <= hits / trials <= 0.95 and ranges / trials < hits / trials - 0.1


def test_between_process_interval() -> None:
    assert stats.between_process_interval([1.0, 2.0]) is None  # too few processes: no interval at all
    low, high, coverage = stats.between_process_interval([1.2, 0.8, 1.0, 1.1, 0.9])  # type: ignore[misc]
    assert (low, high) == (0.8, 1.2) and coverage == pytest.approx(1 - 2 / 32)
    # what the coverage means: the range of 5 process medians holds the population median 94% of the time
    rng = np.random.default_rng(1)
    draws = rng.lognormal(0.0, 0.2, (20000, 5))
    hit = (draws.min(axis=1) <= 1.0) & (draws.max(axis=1) >= 1.0)
    assert hit.mean() == pytest.approx(coverage, abs=0.01)
