"""Serving scenarios through MLPerf LoadGen: the SUT side, inside the target's runtime.

LoadGen owns the load: it schedules the queries (Poisson arrivals at a target QPS for
``server``, everything at once for ``offline``), counts each query's latency from its
*scheduled* arrival (so queueing shows and coordinated omission cannot hide it), and gives
the verdict (VALID or INVALID, with early stopping). This module only answers queries: a
pool of threads sharing the one session the worker already checked is on the requested
provider. The peak search is a bisection over real LoadGen server runs, every point kept.

Part of the worker: standard library, numpy, onnxruntime, and mlperf_loadgen (imported only
for these scenarios).
"""

from __future__ import annotations

import json
import math
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any

PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
SAMPLE_COUNT = 64  # the QSL's size: every sample feeds the same inputs, so this only sizes LoadGen's index draws


class Pool:
    """Threads that run queued query samples on one session and tell LoadGen when each is done."""

    def __init__(self, lg: Any, run: Any, threads: int) -> None:
        self.lg, self.run = lg, run
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._serve, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _serve(self) -> None:
        lg = self.lg
        while True:
            sample = self.jobs.get()
            if sample is None:
                return
            try:
                self.run()
            except Exception as exc:  # answered all the same, or LoadGen would wait for it forever
                if len(self.errors) < 3:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            lg.QuerySamplesComplete([lg.QuerySampleResponse(sample.id, 0, 0)])

    def issue(self, samples: list[Any]) -> None:
        for sample in samples:
            self.jobs.put(sample)

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=30)


def read_detail_log(path: Path) -> dict[str, Any]:
    """LoadGen's detail log: one ``:::MLLOG {json}`` line per fact; the last value of a key wins."""
    facts: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            try:
                entry = json.loads(line[len(":::MLLOG "):])
            except ValueError:
                continue
            facts[entry.get("key")] = entry.get("value")
    return facts


def point_from_log(facts: dict[str, Any], summary: str, scenario: str, target_qps: float | None,
                   batch: int) -> dict[str, Any]:
    """One LoadGen run as the results record keeps it: LoadGen's own figures and words."""
    ns = 1e-6
    latency = {f"p{p.rstrip('0').rstrip('.')}": facts[f"result_{p}_percentile_latency_ns"] * ns
               for p in PERCENTILES if isinstance(facts.get(f"result_{p}_percentile_latency_ns"), (int, float))}
    for key in ("min", "max", "mean"):
        if isinstance(facts.get(f"result_{key}_latency_ns"), (int, float)):
            latency[key] = facts[f"result_{key}_latency_ns"] * ns
    completed = facts.get("result_completed_samples_per_sec", facts.get("result_samples_per_second"))
    point: dict[str, Any] = {
        "scenario": scenario,
        "target_qps": target_qps,
        "validity": facts.get("result_validity", "INVALID"),
        "scheduled_qps": facts.get("result_scheduled_samples_per_sec"),
        "completed_qps": completed,
        "samples_per_s": completed * batch if isinstance(completed, (int, float)) else None,
        "latency_ms": latency,
        "query_count": facts.get("result_query_count"),
        "overlatency_count": facts.get("result_overlatency_query_count"),
        "early_stopping_met": facts.get("early_stopping_met"),
        "early_stopping": " ".join(str(facts.get("early_stopping_result") or "").replace("*", " ").split()) or None,
        "reasons": invalid_reasons(facts, summary),
    }
    return {k: v for k, v in point.items() if v is not None}


def invalid_reasons(facts: dict[str, Any], summary: str) -> list[str]:
    """Why LoadGen said INVALID, in its words: the unmet constraints, its recommendations, early stopping."""
    if facts.get("result_validity") == "VALID":
        return []
    reasons = [label for key, label in (("result_perf_constraints_met", "performance constraints not satisfied"),
                                        ("result_min_duration_met", "min duration not satisfied"),
                                        ("result_min_queries_met", "min queries not satisfied"),
                                        ("early_stopping_met", "early stopping not satisfied"))
               if facts.get(key) is False]
    recommending = False
    for line in summary.splitlines():
        if line.startswith("Recommendations:"):
            recommending = True
        elif recommending and line.strip().startswith("*"):
            reasons.append(line.strip().lstrip("* ").strip())
        elif recommending:
            recommending = False
    if facts.get("early_stopping_met") is False and facts.get("early_stopping_result"):
        reasons.append(" ".join(str(facts["early_stopping_result"]).replace("*", " ").split()))
    return reasons or ["LoadGen gave no reason"]


class LoadGenRunner:
    """Runs LoadGen tests against one pool; each test's logs go to a folder of their own."""

    def __init__(self, lg: Any, pool: Pool, spec: dict[str, Any], batch: int, logs: Path) -> None:
        self.lg, self.pool, self.spec, self.batch, self.logs = lg, pool, spec, batch, logs
        self.count = 0

    def test(self, scenario: str, qps: float) -> dict[str, Any]:
        lg, spec = self.lg, self.spec
        settings = lg.TestSettings()
        settings.mode = lg.TestMode.PerformanceOnly
        if scenario == "server":
            settings.scenario = lg.TestScenario.Server
            settings.server_target_qps = qps
            settings.server_target_latency_ns = int(spec["latency_ms"] * 1e6)
            settings.server_target_latency_percentile = spec["percentile"] / 100
        else:
            settings.scenario = lg.TestScenario.Offline
            settings.offline_expected_qps = qps
        settings.min_duration_ms = int(spec["min_duration_s"] * 1000)
        settings.max_duration_ms = int(spec["max_duration_s"] * 1000)
        settings.min_query_count = spec["min_queries"]
        settings.qsl_rng_seed = settings.sample_index_rng_seed = settings.schedule_rng_seed = spec["seed"]
        self.count += 1
        folder = self.logs / f"{self.count:02d}-{scenario}-{qps:.6g}"
        folder.mkdir(parents=True, exist_ok=True)
        log_settings = lg.LogSettings()
        log_settings.log_output.outdir = str(folder)
        log_settings.log_output.copy_summary_to_stdout = False
        sut = lg.ConstructSUT(self.pool.issue, lambda: None)
        qsl = lg.ConstructQSL(SAMPLE_COUNT, SAMPLE_COUNT, lambda indices: None, lambda indices: None)
        started = time.perf_counter()
        try:
            lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
        finally:
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
        for name in ("mlperf_log_trace.json", "mlperf_log_accuracy.json"):  # empty in performance mode
            (folder / name).unlink(missing_ok=True)
        summary_path = folder / "mlperf_log_summary.txt"
        summary = summary_path.read_text(errors="replace") if summary_path.exists() else ""
        point = point_from_log(read_detail_log(folder / "mlperf_log_detail.txt"), summary, scenario,
                               qps if scenario == "server" else None, self.batch)
        if scenario == "offline":
            point["expected_qps"] = qps  # what offline was told to expect; it has no target rate
        point["wall_s"] = round(time.perf_counter() - started, 3)
        point["logs"] = folder.name
        return point


def serve(session: Any, feeds: dict[str, Any], case: dict[str, Any], single_ms: float) -> dict[str, Any]:
    """Run the case's LoadGen scenario; ``single_ms`` is one inference's warm latency (for first guesses)."""
    import mlperf_loadgen as lg

    spec = case["serving"]
    scenario = case["scenario"]
    batch = int(case.get("batch", 1))
    logs = Path(case["workdir"]) / f"loadgen-{case.get('process', 0)}"
    if logs.exists():
        shutil.rmtree(logs)
    pool = Pool(lg, lambda: session.run(None, feeds), spec["threads"])
    runner = LoadGenRunner(lg, pool, spec, batch, logs)
    # A low first guess: Python's per-query overhead and imperfect thread scaling make the naive
    # rate (threads / one inference) several times too high, and an offline run sized by a high
    # guess runs for as long as that many samples take; a low one costs one short extra run.
    guess = 0.3 * spec["threads"] * 1000.0 / max(single_ms, 1e-3)
    try:
        if scenario == "offline":
            closed = lambda: closed_loop_qps(lambda: session.run(None, feeds), spec)  # noqa: E731
            before = closed()
            out = offline(runner, guess)
            out["closed_loop_qps"] = bracketed(before, closed())
        elif spec.get("find_peak"):
            out = find_peak(runner, spec["find_peak"], guess)
        else:
            point = runner.test("server", float(case["qps"]))
            out = {"points": [point], "result": point}
    finally:
        pool.close()
    if pool.errors:
        out["sut_errors"] = pool.errors
    out.update(scenario=scenario, threads=spec["threads"], logs_dir=str(logs),
               loadgen_version=loadgen_version(logs), batch=batch)
    return out


def offline(runner: LoadGenRunner, guess: float) -> dict[str, Any]:
    """All samples at once. LoadGen sizes the query from the expected QPS; when the guess was too
    low to fill the minimum duration, it says so, and the run is repeated at the measured rate."""
    points = [runner.test("offline", guess)]
    for _ in range(2):
        last = points[-1]
        if last["validity"] == "VALID" or not last.get("completed_qps"):
            break
        points.append(runner.test("offline", float(last["completed_qps"]) * 1.25))
    return {"points": points, "result": points[-1]}


def find_peak(runner: LoadGenRunner, search: dict[str, Any], guess: float) -> dict[str, Any]:
    """The highest target QPS whose server run is VALID. An offline run bounds the capacity; then
    bisection between the best VALID rate and the lowest INVALID rate above it, until they are
    within ``tolerance`` or ``max_runs`` server runs were made. Going down, it stops where a run
    would need more than ``max_duration_s`` to reach ``min_queries``.

    Then, optionally, a run at ``confirm`` times the peak, which should be INVALID. Near the edge,
    LoadGen's early stopping fails a run now and then on a few slow queries, and one such INVALID
    run can stop the bisection well below the real edge: a VALID confirm run says so, becomes the
    new best, and the search climbs from there (at most twice) before confirming again."""
    spec = runner.spec
    capacity = offline(runner, guess)
    ceiling = float(capacity["result"].get("completed_qps") or guess) * 1.1  # no server sustains more
    points: list[dict[str, Any]] = []
    floor = spec["min_queries"] / spec["max_duration_s"]  # below this, LoadGen's minimum query count takes too long
    stopped = ""

    def best() -> float | None:
        return max((p["target_qps"] for p in points if p["validity"] == "VALID"), default=None)

    def above(rate: float) -> float:
        return min([p["target_qps"] for p in points if p["validity"] != "VALID" and p["target_qps"] > rate]
                   + [ceiling])

    def climb(runs: int) -> None:
        """Bisect between the best VALID rate and the lowest INVALID one above it."""
        for _ in range(runs):
            valid = best()
            if valid is None or above(valid) / valid - 1 <= search["tolerance"]:
                return
            points.append(runner.test("server", (valid + above(valid)) / 2))

    qps = ceiling * 0.8 / 1.1
    for used in range(search["max_runs"]):
        points.append(runner.test("server", qps))
        if best() is not None:
            climb(search["max_runs"] - used - 1)
            break
        if qps / 2 < floor:
            stopped = (f"; lower rates were not tried: {spec['min_queries']} queries at under {floor:.3g} QPS "
                       f"take longer than max_duration_s ({spec['max_duration_s']:g} s)")
            break
        qps = qps / 2
    out: dict[str, Any] = {"points": points, "capacity": capacity["points"]}
    for _ in range(3 if search.get("confirm") else 0):
        peak = best()
        if peak is None:
            break
        out["confirm"] = runner.test("server", peak * search["confirm"])
        if out["confirm"]["validity"] != "VALID":
            break
        points.append(out["confirm"])  # a VALID rate above the peak: the search stopped too low
        climb(3)
    peak = best()
    if peak is not None and peak > ceiling:
        # A server sustained more than the offline capacity allows: the machine ran faster than
        # while capacity was measured (a host whose neighbours come and go). Measure it again, now,
        # so the record's last capacity and its peak describe the same machine.
        out["capacity"] = capacity["points"] + offline(runner, peak)["points"]
    top = max((p for p in points if p["validity"] == "VALID"), key=lambda p: p["target_qps"], default=None)
    out.update(peak_qps=peak, result=top or points[-1])
    if top is None:
        lowest = min(points, key=lambda p: p["target_qps"])
        out["peak_reason"] = (f"no target QPS tried down to {lowest['target_qps']:.3g} was VALID at "
                              f"p{spec['percentile']:g} <= {spec['latency_ms']:g} ms (there: "
                              f"{'; '.join(lowest.get('reasons', [])[:2])}){stopped}")
    return out


def closed_loop_qps(run: Any, spec: dict[str, Any]) -> float | None:
    """The same threads as closed-loop streams on the same session, for ``min_duration_s``: what
    offline throughput is judged against, side by side in one process (a VM's processes differ by
    up to 40%, so a figure from another process would not do)."""
    from .loops import run_streams

    seconds = spec["min_duration_s"]
    samples, start, end, _, _ = run_streams(run, {"max_s": seconds, "min_s": seconds, "min_iterations": 1},
                                            spec["threads"])
    return len(samples) / ((end - start) / 1e9) if end > start else None


def bracketed(before: float | None, after: float | None) -> float | None:
    """The mean of the closed-loop rates right before and right after the offline run: a drift of
    the machine's speed during the three (a neighbour arriving, a frequency change) cancels to
    first order, as in an ABBA design; one figure taken after only would carry it whole."""
    known = [q for q in (before, after) if q]
    return sum(known) / len(known) if known else None


def loadgen_version(logs: Path) -> str | None:
    for detail in sorted(logs.glob("*/mlperf_log_detail.txt")):
        version = read_detail_log(detail).get("loadgen_version")
        if version:
            return str(version)
    return None


def single_latency_ms(run: Any, n: int = 5) -> float:
    """A quick median of a few warm runs, only to seed LoadGen's expected rates."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2] if times else math.nan
