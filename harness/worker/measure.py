"""Measure one case in a fresh process, inside the target's runtime.

Honesty rule: a number is written only when the session really runs on the requested
provider. If onnxruntime fell back (it does so silently), the case is ``unavailable`` with
onnxruntime's own words for why, and no latency, throughput or memory figures.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

import numpy as np

from . import plugin
from .checks import accuracy, placement
from .gpu import device_resident, gpu_memory_mb, preload_gpu_libraries
from .loops import machine_cpu_seconds, others_cpu_share, peak_rss_mb, rss_mb, run_streams, run_until, warm_up
from .precision import effective_precision, precision_problem
from .protocol import CPU, DEVICE_OF, LOADGEN_SCENARIOS
from .session import captured_stderr, clean, create_session, explain, first_line, provider_problem


def measure(case: dict[str, Any]) -> dict[str, Any]:
    if case.get("mode") == "paired":
        from .paired import measure_paired

        return measure_paired(case)
    result: dict[str, Any] = {"status": "failed"}
    rss_start = rss_mb()
    ort = import_onnxruntime(case, result)
    device_id = int((case.get("provider_options") or {}).get("device_id", 0))
    gpu_before = gpu_memory_mb(device_id) if case["provider"] in DEVICE_OF else None
    scenario = case.get("scenario", "single-stream")
    opened = open_session(ort, case, result)
    if isinstance(opened, dict):
        return opened
    session, feeds, session_ms = opened
    rss_session = rss_mb()
    if case.get("mode") == "extras":
        return {**result, **untimed_passes(ort, session, feeds, case)}

    def run() -> Any:
        return session.run(None, feeds)

    t = time.perf_counter()
    run()
    first_ms = (time.perf_counter() - t) * 1e3
    m = case["measure"]
    warmup_n = warm_up(run, m)
    rss_warm = rss_mb()
    if scenario in LOADGEN_SCENARIOS:
        case["_timings"] = result["timings_ms"]
        return {**result, **served(session, run, feeds, case, session_ms, first_ms, warmup_n,
                                   [rss_start, rss_session, rss_warm])}
    streams = int(case.get("streams", 1))
    gc.collect()
    load_before = machine_cpu_seconds(), os.times()
    gc.disable()  # a collection inside the timed loop is the harness's noise, not the model's
    try:
        if streams > 1:
            samples, start, end, reason, precision_met = run_streams(run, m, streams)
        else:
            samples, start, end, reason, precision_met = run_until(run, m)
    finally:
        gc.enable()
    other_load = others_cpu_share(load_before, (machine_cpu_seconds(), os.times()))
    rss_end = rss_mb()
    gpu_after = gpu_memory_mb(device_id) if gpu_before is not None else None
    wall_s = (end - start) / 1e9
    result.update(
        status="ok",
        samples_ms=[round(s / 1e6, 6) for s in samples],  # ns resolution, short JSON
        timings_ms={**result["timings_ms"], "session_create": session_ms, "first_inference": first_ms},
        memory_mb={"rss_start": rss_start, "rss_after_session": rss_session, "rss_after_warmup": rss_warm,
                   "rss_end": rss_end, "peak_rss": peak_rss_mb()},
        loop={"iterations": len(samples), "warmup_iterations": warmup_n, "wall_s": wall_s, "stop_reason": reason,
              "precision_met": precision_met, "streams": streams,
              "minimums_met": len(samples) >= m["min_iterations"] and wall_s >= m["min_s"],
              "other_processes_cpu": other_load,
              "inferences_per_s": len(samples) / wall_s if wall_s > 0 else None},
    )
    if gpu_after is not None and gpu_before is not None:
        used, baseline = gpu_after["device_used"], gpu_before["device_used"]
        result["gpu_memory_mb"] = {"process": gpu_after["process"],
                                   "device_used_minus_baseline": used - baseline if used is not None and baseline is not None
                                   else None}
    if case["provider"] in DEVICE_OF and case.get("device_resident", True):
        try:
            result["device_resident"] = device_resident(ort, session, feeds, case)
        except Exception as exc:
            result["device_resident"] = {"error": first_line(clean(f"{type(exc).__name__}: {exc}"))}
    return result


def import_onnxruntime(case: dict[str, Any], result: dict[str, Any]) -> Any:
    """Import onnxruntime (timed), make the case's GPU libraries findable, and describe the runtime
    in ``result``: every path that opens a session (plain, paired) starts here."""
    t = time.perf_counter()
    import onnxruntime as ort

    result["timings_ms"] = {"import_onnxruntime": (time.perf_counter() - t) * 1e3}
    preload_gpu_libraries(ort, case["provider"])
    result["runtime"] = {
        "onnxruntime_version": ort.__version__, "device": ort.get_device(), "python": sys.executable,
        "available_providers": ort.get_available_providers(),
        "providers_requested": [case["provider"]], "provider_options": case.get("provider_options") or {},
        "session_options": case.get("session") or {},
    }
    return ort


def open_session(ort: Any, case: dict[str, Any], result: dict[str, Any]) -> tuple[Any, dict[str, np.ndarray], float] | dict[str, Any]:
    """The case's session and inputs, and how long the session took to create; or the finished
    result (unavailable, failed) when the provider cannot run it or onnxruntime fell back."""
    problem = precision_problem(case) or (provider_problem(ort, case) if case["provider"] != CPU else None)
    if problem:
        return {**result, "status": problem[0], "reason": problem[1]}
    if case.get("plugin"):
        result["runtime"]["plugin"] = {**case["plugin"], "library": plugin.register(ort, case["provider"], case["plugin"]),
                                       "device": plugin.describe(plugin.devices(ort, case["provider"], case["plugin"])[0])}
    scenario = case.get("scenario", "single-stream")
    if scenario in LOADGEN_SCENARIOS and case.get("mode") != "extras":
        try:
            import mlperf_loadgen  # noqa: F401
        except ImportError:
            return {**result, "reason": f"scenario {scenario} needs MLPerf LoadGen, which {sys.executable} lacks: "
                                        f"{case['serving']['install_hint']}"}
    with np.load(case["inputs"]) as archive:
        feeds = {key: archive[key] for key in archive.files}
    with captured_stderr() as lines:
        t = time.perf_counter()
        try:
            session = create_session(ort, case["model_path"], case)
        except Exception as exc:
            return {**result, "reason": f"session creation failed on {case['provider']}: {first_line(clean(str(exc)))}"}
        session_ms = (time.perf_counter() - t) * 1e3
    assigned = session.get_providers()
    result["runtime"]["providers_assigned"] = assigned
    if case["provider"] not in assigned:
        reason = explain(lines) or "no reason given"
        return {**result, "status": "unavailable", "reason": f"onnxruntime fell back to {', '.join(assigned)}: {reason}"}
    return session, feeds, session_ms


def served(session: Any, run: Any, feeds: dict[str, np.ndarray], case: dict[str, Any], session_ms: float,
           first_ms: float, warmup_n: int, rss: list[float | None]) -> dict[str, Any]:
    """A LoadGen scenario instead of the timed loop; memory and cold start are kept as for the loop."""
    from .serving import serve, single_latency_ms

    out = serve(session, feeds, case, single_latency_ms(run))
    return {
        "status": "ok", "serving": out,
        "timings_ms": {**case.get("_timings", {}), "session_create": session_ms, "first_inference": first_ms},
        "memory_mb": {"rss_start": rss[0], "rss_after_session": rss[1], "rss_after_warmup": rss[2],
                      "rss_end": rss_mb(), "peak_rss": peak_rss_mb()},
        "loop": {"warmup_iterations": warmup_n},
    }


def untimed_passes(ort: Any, session: Any, feeds: dict[str, np.ndarray], case: dict[str, Any]) -> dict[str, Any]:
    """Accuracy, node placement and the per-operator profile. Run in a worker of their own (mode "extras") so that the
    extra sessions and outputs they hold never inflate the measuring worker's peak memory."""
    out: dict[str, Any] = {"status": "ok", "precision": effective_precision(ort, case)}
    try:
        out["accuracy"] = accuracy(session, case)
    except Exception as exc:
        out["accuracy"] = {"error": first_line(clean(f"{type(exc).__name__}: {exc}"))}
    if case.get("placement"):
        try:
            found = placement(ort, case["model_path"], case, feeds, case["workdir"])
            out["profile"], out["profile_nodes"] = found.pop("profile"), found.pop("profile_nodes")
            out["placement"] = found
        except Exception as exc:
            out["placement"] = {"error": first_line(clean(f"{type(exc).__name__}: {exc}"))}
    return out
