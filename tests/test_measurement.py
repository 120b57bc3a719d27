"""The measurement method: stopping rules, repeats, statistics, validity flags, concurrency, fingerprint.

No assertion here depends on how fast this machine is: the loop's stopping rules are checked
with a simulated clock (deterministic, instant), and the end-to-end runs check invariants that
hold on any machine (counts, identities between fields, which flags are set). Performance
requirements live in tests/benchmarks as ratios measured side by side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness import environment, stats
from harness.compare import segments
from harness.results import CaseRecord
from harness.worker import loops as worker

from .conftest import matmul_model, only_results, run_cli

CORES = os.cpu_count() or 1


# --- the loop, on a simulated clock --------------------------------------------------------


class FakeClock:
    """perf_counter_ns that only moves when the loop reads it (tick) or runs the model (latency)."""

    def __init__(self, latencies_ns: Iterator[int], tick_ns: int = 40) -> None:
        self.now = 0
        self.latencies = latencies_ns
        self.tick = tick_ns
        self.calls = 0

    def perf_counter_ns(self) -> int:
        self.now += self.tick
        return self.now

    def perf_counter(self) -> float:
        return self.perf_counter_ns() / 1e9

    def run(self) -> None:
        self.calls += 1
        self.now += next(self.latencies)


def constant(ns: int) -> Iterator[int]:
    while True:
        yield ns


def noisy(seed: int = 0) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.uniform(1e6, 100e6))  # 1-100 ms: a median within +-0.1 % is out of reach


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(latencies: Iterator[int]) -> FakeClock:
        fake = FakeClock(latencies)
        monkeypatch.setattr(worker, "time", SimpleNamespace(perf_counter_ns=fake.perf_counter_ns,
                                                            perf_counter=fake.perf_counter, sleep=lambda s: None))
        return fake

    return install


def measure_spec(**changes: Any) -> dict[str, Any]:
    return {"warmup_s": 0.0, "warmup_iterations": 0, "min_iterations": 100, "min_s": 1.0, "max_s": 10.0,
            "precision": None, **changes}


def test_count_reached_first_runs_on_until_min_seconds(clock) -> None:
    fake = clock(constant(1_000_000))  # 1 ms: 100 iterations take 0.1 s, so min_s = 1 s decides
    samples, start, end, reason, met = worker.run_until(fake.run, measure_spec(min_iterations=100, min_s=1.0))
    assert reason == "minimums" and met is False
    assert len(samples) > 100
    assert end - start >= 1e9  # not before min_s
    assert sum(samples[:-1]) < 1e9  # and it stopped at the first iteration that met both


def test_seconds_reached_first_runs_on_until_min_iterations(clock) -> None:
    fake = clock(constant(50_000_000))  # 50 ms: 0.1 s passes after 2 iterations, 100 are required
    samples, start, end, reason, _ = worker.run_until(fake.run, measure_spec(min_iterations=100, min_s=0.1))
    assert reason == "minimums"
    assert len(samples) == 100  # exactly the count, not one more
    assert end - start >= 0.1e9


def test_max_s_caps_the_loop_whatever_the_minimums(clock) -> None:
    fake = clock(constant(7_000_000))
    samples, start, end, reason, met = worker.run_until(fake.run, measure_spec(min_iterations=10**9, min_s=0.0, max_s=2.0))
    assert reason == "max_s" and met is False
    assert end - start >= 2e9
    assert sum(samples[:-1]) < 2e9  # the last iteration is the first to end past max_s


def test_precision_stop_on_a_steady_model(clock) -> None:
    fake = clock(constant(3_000_000))
    samples, _, _, reason, met = worker.run_until(
        fake.run, measure_spec(min_iterations=20, min_s=0.05, precision=0.01))
    assert reason == "precision" and met is True
    assert stats.relative_precision_reached(np.asarray(samples, float), 0.01)
    assert len(samples) < 200  # checked at the first opportunity after the minimums, not at max_s


def test_precision_unreachable_runs_to_max_s(clock) -> None:
    fake = clock(noisy())
    samples, start, end, reason, met = worker.run_until(
        fake.run, measure_spec(min_iterations=20, min_s=0.05, max_s=5.0, precision=0.001))
    assert reason == "max_s" and met is False
    assert end - start >= 5e9
    assert not stats.relative_precision_reached(np.asarray(samples, float), 0.001)


def test_precision_is_not_checked_before_the_minimums(clock) -> None:
    fake = clock(constant(1_000_000))
    samples, start, end, reason, _ = worker.run_until(
        fake.run, measure_spec(min_iterations=500, min_s=0.0, precision=0.5))
    assert reason == "precision" and len(samples) >= 500


def test_warm_up_needs_both_its_count_and_its_time(clock) -> None:
    fake = clock(constant(1_000_000))
    assert worker.warm_up(fake.run, {"warmup_iterations": 10, "warmup_s": 0.0}) == 10
    fake.calls = 0
    count = worker.warm_up(fake.run, {"warmup_iterations": 3, "warmup_s": 0.05})
    assert count == fake.calls and count >= 49  # 1 ms each: about 50 to cover 0.05 s, far more than 3


# --- statistics ------------------------------------------------------------------------------


def test_p999_only_from_1000_samples() -> None:
    rng = np.random.default_rng(1)
    assert "p999" not in stats.summarize(rng.lognormal(size=999))
    summary = stats.summarize(rng.lognormal(size=1000))
    assert summary["p99"] <= summary["p999"] <= summary["max"]


def test_every_documented_statistic_is_there() -> None:
    summary = stats.summarize(np.random.default_rng(2).lognormal(size=50))
    assert set(summary) == {"n", "mean", "std", "cv", "cv_robust", "min", "p50", "p90", "p95", "p99", "max", "iqr",
                            "mad", "mad_scaled", "outliers", "median_ci_low", "median_ci_high", "median_ci_rel"}


# --- end to end: real sessions in worker processes ---------------------------------------------


def run_suite(write_suite, tmp_path: Path, text: str, name: str) -> list[dict[str, Any]]:
    suite = write_suite(text, f"{name}.yaml")
    out = tmp_path / f"results-{name}"
    done = run_cli("run", suite, "-o", out)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    cases = only_results(out)["cases"]
    for case in cases:
        assert case["status"] == "ok", case.get("reason")
    return cases


def test_repeats_fixed_count_p999_and_validity_flags(write_suite, tmp_path) -> None:
    (case,) = run_suite(write_suite, tmp_path, """
        name: repeats
        models: [{name: tiny, source: "builtin:tiny"}]
        measure: {warmup_s: 0.05, warmup_iterations: 5, min_iterations: 1000, min_s: 0.2, max_s: 2, repeats: 3,
                  placement: false}
        session: {intra_op_num_threads: 1}
        """, "repeats")
    m = case["measurement"]
    assert m["repeats"] == 3 and len(m["repeat_medians_ms"]) == 3 and len(m["repeat_iterations"]) == 3
    assert m["repeat_spread"]["n"] == 3
    medians = m["repeat_medians_ms"]
    assert m["repeat_spread"]["rel_range"] == pytest.approx((max(medians) - min(medians)) / np.median(medians))
    for own, repeat_n in zip(medians, m["repeat_iterations"]):
        assert repeat_n >= 1000 and own > 0
    assert case["latency_ms"]["n"] == len(case["samples_ms"]) == sum(m["repeat_iterations"]) == m["iterations"]
    assert "p999" in case["latency_ms"]  # >= 1000 samples
    assert m["stop_reason"] in ("minimums", "max_s") and m["precision"] is None and m["precision_met"] is None
    assert m["minimums_met"] == (m["stop_reason"] == "minimums")
    assert m["median_ci_reached"] is True
    assert isinstance(m["unstable"], list) and isinstance(m["warnings"], list)
    assert m["warmup_iterations"] >= 5


def test_precision_stop_and_max_s_end_to_end(write_suite, tmp_path, models_dir) -> None:
    matmul_model(models_dir / "mm.onnx", size=256)
    steady = run_suite(write_suite, tmp_path, """
        name: precise
        models: [{name: mm, path: models/mm.onnx}]
        measure: {warmup_s: 0.05, warmup_iterations: 5, min_iterations: 20, min_s: 0.1, max_s: 5, precision: 0.05,
                  placement: false}
        session: {intra_op_num_threads: 1}
        """, "precise")[0]
    m = steady["measurement"]
    assert m["stop_reason"] == "precision" and m["precision_met"] is True and m["minimums_met"] is True
    # precision is each worker process's stopping rule: every process's own median CI is within 5%. The
    # pooled samples' CI is not promised (CI: 7.2% when the processes landed in different speed modes,
    # which is what the between-process interval and the "too few processes" flag are for).
    per_process = segments(CaseRecord.from_json(steady))
    assert len(per_process) == m["repeats"]
    for samples in per_process:
        assert stats.relative_precision_reached(samples, 0.05)
    assert m["iterations"] >= 20 and m["duration_s"] >= 0.1

    # A ms-scale model: at us scale, 10 ns clock steps can make many samples equal and the CI zero-wide.
    capped = run_suite(write_suite, tmp_path, """
        name: capped
        models: [{name: mlp, source: "builtin:mlp"}]
        measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 10, min_s: 0, max_s: 0.3, precision: 0.000001,
                  placement: false}
        session: {intra_op_num_threads: 1}
        """, "capped")[0]
    m = capped["measurement"]
    assert m["stop_reason"] == "max_s" and m["precision_met"] is False
    assert m["duration_s"] >= 0.3


def test_min_iterations_out_of_reach_is_not_minimums_met(write_suite, tmp_path) -> None:
    (case,) = run_suite(write_suite, tmp_path, """
        name: short
        models: [{name: mlp, source: "builtin:mlp"}]
        measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 1000000, min_s: 0, max_s: 0.3, placement: false, repeats: 1}
        session: {intra_op_num_threads: 1}
        """, "short")
    m = case["measurement"]
    assert m["stop_reason"] == "max_s" and m["minimums_met"] is False
    assert m["iterations"] < 1000000 and "p999" not in case["latency_ms"]  # fewer than 1000 samples of ~ms


def test_concurrency_sweep_throughput_is_measured_on_wall_time(write_suite, tmp_path, models_dir) -> None:
    """streams 1 and 2 on the CPU provider, two thread settings: throughput = done x batch / wall time."""
    matmul_model(models_dir / "mm.onnx", size=128)
    cases = run_suite(write_suite, tmp_path, f"""
        name: streams
        models: [{{name: mm, path: models/mm.onnx}}]
        targets:
          - {{name: one-thread, provider: CPUExecutionProvider, session: {{intra_op_num_threads: 1}}}}
          - {{name: all-cores, provider: CPUExecutionProvider, session: {{intra_op_num_threads: {CORES}}}}}
        matrix: {{batch: [2], streams: [1, 2]}}
        measure: {{warmup_s: 0.05, warmup_iterations: 5, min_iterations: 50, min_s: 0.3, max_s: 2, placement: false, repeats: 1}}
        """, "streams")
    by_id = {c["case_id"]: c for c in cases}
    assert set(by_id) == {f"mm/fp32/{t}/batch=2,streams={s}" for t in ("one-thread", "all-cores") for s in (1, 2)}
    for case in cases:
        streams = case["params"]["streams"]
        t, m, lat = case["throughput"], case["measurement"], case["latency_ms"]
        assert t["streams"] == streams and t["batch"] == 2
        assert t["samples_per_s"] == pytest.approx(m["iterations"] * 2 / t["wall_s"], rel=1e-12)
        assert t["inferences_per_s"] == pytest.approx(m["iterations"] / t["wall_s"], rel=1e-12)
        assert lat["n"] == m["iterations"] and lat["p50"] > 0  # per-request latency at each level
        # wall time covers first start to last completion, so it can't beat the latencies it contains
        assert t["wall_s"] * streams >= sum(case["samples_ms"]) / 1e3 * (1 - 1e-9)
        # Little's law for a closed loop: throughput x mean latency = requests in flight (<= streams,
        # exactly when no time passes outside `run`). 1/mean would give 1 whatever the streams.
        in_flight = t["inferences_per_s"] * lat["mean"] / 1e3
        assert in_flight <= streams * (1 + 1e-9)
        if streams == 2:
            assert in_flight > 1.2
    # (a "busy machine" warning may come and go with other jobs on a shared runner: not checked here)
    warned = {c["case_id"]: [w for w in c["measurement"]["warnings"] if "oversubscribed" in w] for c in cases}
    assert any("oversubscribed" in w for w in warned["mm/fp32/all-cores/batch=2,streams=2"])
    assert warned["mm/fp32/all-cores/batch=2,streams=1"] == [] and warned["mm/fp32/one-thread/batch=2,streams=1"] == []
    assert bool(warned["mm/fp32/one-thread/batch=2,streams=2"]) == (2 > CORES)


# --- fingerprint ------------------------------------------------------------------------------


def test_fingerprint_fields_and_hash() -> None:
    first, second = environment.fingerprint(), environment.fingerprint()
    assert first["cpu_model"] and isinstance(first["cpu_model"], str)
    assert isinstance(first["cpu_flags"], list) and set(first["cpu_flags"]) <= set(environment.FLAGS_THAT_MATTER)
    assert first["cpu_flags"] == sorted(first["cpu_flags"])
    assert first["cpu_count_logical"] >= 1 and first["memory_gb"] > 0
    assert first["fingerprint"] == second["fingerprint"] == environment.fingerprint_hash(first)
    assert len(first["fingerprint"]) == 16


@pytest.mark.parametrize("field, change", [
    ("cpu_model", lambda v: v + " (other)"),
    ("cpu_flags", lambda v: sorted(set(v) ^ {"avx512f"})),
    ("cpu_count_logical", lambda v: v + 2),
    ("cpu_count_physical", lambda v: (v or 1) + 1),
    ("memory_gb", lambda v: v + 16),
    ("os", lambda v: v + "-other"),
    ("gpus", lambda v: [*v, {"name": "NVIDIA H100"}]),
])
def test_fingerprint_hash_changes_with_hardware(field, change) -> None:
    info = environment.fingerprint()
    assert environment.fingerprint_hash({**info, field: change(info[field])}) != info["fingerprint"]


@pytest.mark.parametrize("field", ["hostname", "python", "harness_version", "onnxruntime_version", "cpu_governor"])
def test_fingerprint_hash_ignores_software_and_names(field) -> None:
    info = environment.fingerprint()
    assert environment.fingerprint_hash({**info, field: "something else"}) == info["fingerprint"]


# --- stability flags ----------------------------------------------------------------------------


def mixture(fraction: float, slowdown: float, n: int = 4000, seed: int = 5) -> np.ndarray:
    """A steady 5 ms model (2 % spread) with `fraction` of its runs slowed `slowdown` times."""
    rng = np.random.default_rng(seed)
    samples = rng.lognormal(np.log(5.0), 0.02, n)
    samples[rng.random(n) < fraction] *= slowdown
    return samples


def test_the_tail_is_shown_not_flagged() -> None:
    """A long tail is a property of the model on this machine (p90/p50 of 1.1-1.3 is common here):
    it is in latency_ms, and flags only what predicts that a rerun will differ."""
    summary = stats.summarize(mixture(0.3, 2.0))
    assert summary["p90"] > 1.5 * summary["p50"]
    spread = stats.repeat_spread([5.0, 5.05, 4.98])
    assert stats.reproducibility_flags(spread, 3) == []


def _hog(deadline: float) -> None:
    """Busy 100 ms, asleep 100 ms, until deadline: a disturbance that hits part of the runs."""
    import time

    while time.monotonic() < deadline:
        start = time.monotonic()
        while time.monotonic() - start < 0.1:
            pass
        time.sleep(0.1)


def test_a_case_disturbed_by_cpu_load_is_flagged(write_suite, tmp_path) -> None:
    """On-and-off busy loops on every core (bounded in time) while a 2-thread case runs: flagged
    as a busy machine (and usually as processes that differ).

    On and off, not constant: a load that slows every run alike leaves the samples as tight as
    a quiet run's (only slower), and no statistic of the samples can tell; a load that comes
    and goes makes some runs slow and others not, which is what a shared machine does.
    """
    import multiprocessing
    import time

    context = multiprocessing.get_context("spawn")
    hogs = [context.Process(target=_hog, args=(time.monotonic() + 30,), daemon=True) for _ in range(CORES)]
    for hog in hogs:
        hog.start()
    try:
        (case,) = run_suite(write_suite, tmp_path, """
            name: disturbed
            models: [{name: squeezenet, source: "builtin:squeezenet"}]
            measure: {warmup_s: 0.2, warmup_iterations: 5, min_iterations: 30, min_s: 1.0, max_s: 3, repeats: 2,
                      placement: false}
            session: {intra_op_num_threads: 2}
            """, "disturbed")
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.join()
    assert case["measurement"]["unstable"], case["latency_ms"]
    # The hogs ran about half the time on every core: the worker saw the machine was not quiet.
    assert case["measurement"]["other_processes_cpu"] > 0.25
    assert any(w.startswith("busy machine") for w in case["measurement"]["unstable"])
