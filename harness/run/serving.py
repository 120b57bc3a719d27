"""Serving scenarios on the parent's side: what the worker is asked to run, and the record made
of what LoadGen said (see harness.worker.serving for the SUT).

A LoadGen case runs in ``serving.repeats`` worker processes (default one: LoadGen's verdict is
about one run, as in MLPerf), not ``measure.repeats``; it carries no between-process interval. Its
headline latency is LoadGen's (from each query's scheduled arrival), never the single-stream
loop's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..plan import Case
from ..results import CaseRecord, Latency, Measurement, Memory, Serving, Throughput, Timings
from ..suite import Suite
from ..worker.protocol import LOADGEN_SCENARIOS

INSTALL_HINT = "pip install 'onnx-harness[serving]' (or mlcommons-loadgen) into that interpreter"


def scenario_of(case: Case) -> str:
    return str(case.params.get("scenario", "single-stream"))


def is_loadgen(case: Case) -> bool:
    return scenario_of(case) in LOADGEN_SCENARIOS


def serving_job(case: Case, suite: Suite) -> dict[str, Any]:
    """The worker's share of a case's scenario settings, every default resolved."""
    spec = suite.serving
    scenario = scenario_of(case)
    job: dict[str, Any] = {"scenario": scenario, "batch": int(case.params.get("batch", 1))}
    if scenario == "multi-stream" and "streams" not in case.params:
        job["streams"] = spec.threads or os.cpu_count() or 1
    if scenario not in LOADGEN_SCENARIOS:
        return job
    peak = spec.find_peak if scenario == "server" and "qps" not in case.params else None
    qps = case.params.get("qps", spec.target_qps)
    job["qps"] = float(qps) if scenario == "server" and qps is not None and peak is None else None
    job["serving"] = {
        "threads": spec.threads or os.cpu_count() or 1,
        "latency_ms": (peak.latency_ms if peak and peak.latency_ms else None) or spec.latency_ms,
        "percentile": (peak.percentile if peak and peak.percentile else None) or spec.percentile,
        "min_duration_s": spec.min_duration_s, "max_duration_s": spec.max_duration_s,
        "min_queries": spec.min_queries, "seed": spec.seed, "install_hint": INSTALL_HINT,
        "find_peak": ({"max_runs": peak.max_runs, "tolerance": peak.tolerance, "confirm": peak.confirm}
                      if peak else None),
    }
    return job


def serving_budget_s(job: dict[str, Any]) -> float:
    """The longest a LoadGen worker may rightly take: every LoadGen run at its maximum duration
    (with room to drain a queue), plus start-up. A case past it fails as timed out."""
    spec = job["serving"]
    peak = spec.get("find_peak")
    # A peak search: its server runs, up to 3 offline runs for the capacity (and 3 more when the peak
    # outgrew it), and up to 3 confirm runs each followed by up to 3 more climbing runs.
    runs = (peak["max_runs"] + 18) if peak else 3 if job["scenario"] == "offline" else 1
    return runs * (spec["max_duration_s"] * 1.5 + 10) + 60


def headline_figure(served: dict[str, Any], spec: dict[str, Any]) -> float | None:
    """The one number a LoadGen process is judged on: the peak QPS of a search, the completed QPS
    offline, the latency at the bound's percentile for a server at a fixed rate."""
    result = served["result"]
    if served.get("peak_qps") is not None or spec.get("find_peak"):
        return served.get("peak_qps")
    if served["scenario"] == "offline":
        return result.get("completed_qps")
    return result["latency_ms"].get(f"p{spec['percentile']:g}")


def assemble_serving(record: CaseRecord, job: dict[str, Any], results: list[dict[str, Any]], wall_ms: float,
                     peak_rss: float | None, logs_home: Path | None) -> CaseRecord:
    """The case's record from its LoadGen worker(s): the verdict and LoadGen's figures of the
    headline run as the case's latency and throughput. With several processes (``serving.repeats``,
    or the rounds of ``harness ab``) the headline is the process with the median figure, and
    every process's figure is kept in ``repeat_figures``."""
    spec = job["serving"]
    figures = [headline_figure(r["serving"], spec) for r in results]
    known = sorted((f, i) for i, f in enumerate(figures) if f is not None)
    chosen = known[(len(known) - 1) // 2][1] if known else len(results) - 1
    result = results[chosen]
    served = dict(result["serving"])
    headline = served.pop("result")
    logs = Path(served.pop("logs_dir"))
    kept = keep_logs(logs, logs_home / safe_name(record.case_id)) if logs_home else None
    summary_path = logs / headline.get("logs", "") / "mlperf_log_summary.txt"
    scenario = served["scenario"]
    found_peak = served.get("peak_qps") is not None
    percentile = spec["percentile"] if scenario == "server" else None
    serving = Serving.from_json({
        **served,
        "validity": "VALID" if found_peak else headline["validity"],
        "latency_bound_ms": spec["latency_ms"] if scenario == "server" else None,
        "percentile": percentile,
        "target_qps": job.get("qps"),
        "completed_qps": headline.get("completed_qps"),
        "latency_at_bound_ms": headline["latency_ms"].get(f"p{percentile:g}") if percentile else None,
        "reasons": [] if found_peak else headline.get("reasons", []),
        "settings": {k: v for k, v in spec.items() if k != "install_hint"},
        "logs_dir": str(kept) if kept else None,
        "summary": summary_path.read_text(errors="replace") if summary_path.is_file() else None,
        "repeat_figures": figures if len(results) > 1 else None,
    }, "worker.serving")
    lat = headline["latency_ms"]
    completed = float(headline.get("completed_qps") or 0.0)
    queries = int(headline.get("query_count") or 0)
    wall = float(headline.get("wall_s") or 0.0)
    memory = result.get("memory_mb") or {}
    timings = result.get("timings_ms") or {}
    warnings = []
    if serving.confirm is not None and serving.confirm.validity == "VALID":
        warnings.append(f"peak understated: the run at {serving.confirm.target_qps:,.4g} QPS "
                        f"({spec['find_peak']['confirm']:g}x the peak) was VALID too; raise find_peak.max_runs")
    return replace(
        record, status="ok", reason=None, serving=serving,
        latency_ms=Latency(n=queries, mean=lat.get("mean", lat["p50"]), min=lat.get("min", lat["p50"]), p50=lat["p50"],
                           p90=lat.get("p90", lat["p50"]), p95=lat.get("p95"), p99=lat.get("p99", lat["p50"]),
                           p999=lat.get("p99.9"), max=lat.get("max", lat["p50"])),
        throughput=Throughput(inferences_per_s=completed, samples_per_s=completed * serving.batch,
                              streams=serving.threads or 1, batch=serving.batch, wall_s=wall or None),
        memory_mb=Memory(peak_rss=peak_rss, **{k: memory[k] for k in ("rss_start", "rss_after_session",
                                                                      "rss_after_warmup", "rss_end") if k in memory}),
        timings_ms=Timings(session_create=timings.get("session_create"), first_inference=timings.get("first_inference"),
                           import_onnxruntime=timings.get("import_onnxruntime"), worker_process=wall_ms),
        measurement=Measurement(iterations=queries, warmup_iterations=(result.get("loop") or {}).get("warmup_iterations"),
                                duration_s=wall or None, stop_reason="loadgen", repeats=len(results),
                                warnings=warnings),
    )


def safe_name(case_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in case_id)


def keep_logs(source: Path, dest: Path) -> Path | None:
    """LoadGen's summary and detail logs of every run, next to the results file."""
    if not source.is_dir():
        return None
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    return dest
