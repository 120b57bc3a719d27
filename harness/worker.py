"""Measure one case in a fresh process, inside the target's runtime.

Run as ``<runtime python> -m harness.worker CASE.json RESULT.json``. This module imports
only the standard library, numpy, onnxruntime and harness.stats (itself numpy-only),
because it runs in environments that hold some other onnxruntime build and nothing else.

Honesty rule: a number is written only when the session really runs on the requested
provider. If onnxruntime fell back (it does so silently), the case is ``unavailable`` with
onnxruntime's own words for why, and no latency, throughput or memory figures.
"""

from __future__ import annotations

import base64
import json
import gc
import os
import re
import sys
import tempfile
import threading
import time
import traceback
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

try:  # run by file path as well as with -m
    from harness import stats
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from harness import stats

CPU = "CPUExecutionProvider"
# y = x + x on float32[1, 4], IR 8 / opset 13: loads in every runtime we support. Used to tell
# "this provider cannot run here" (unavailable) from "this model breaks this provider" (failed).
PROBE_MODEL = base64.b64decode("CAg6QQoOCgF4CgF4EgF5IgNBZGQSBXByb2JlWhMKAXgSDgoMCAESCAoCCAEKAggEYhMKAXkSDgoMCAESCAoCCAEKAggEQgQKABAN")
# Where IO binding puts tensors for the device-resident mode, by provider.
DEVICE_OF = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda", "DmlExecutionProvider": "dml"}
GRAPH_OPT = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
             "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}


def rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        try:
            import psutil  # optional in runtimes

            return psutil.Process().memory_info().rss / 2**20
        except Exception:
            return None


def peak_rss_mb() -> float | None:
    """This process's own peak RSS (VmHWM), or None off Linux.

    Not ru_maxrss: Linux starts a spawned child's ru_maxrss at its PARENT's high-water mark
    (the vfork'd copy's mm is recorded at exec), so a 500 MB harness parent would make every
    worker look at least 500 MB big. VmHWM belongs to the mm created by exec: the worker's alone.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what onnxruntime's C++ logger and Python warnings print while creating a session."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            sys.stderr.write(text)
            lines.extend(line.strip() for line in text.splitlines() if line.strip())
            lines.extend(str(w.message) for w in caught)


def session_options(ort: Any, spec: dict[str, Any], profile_prefix: str | None = None) -> Any:
    options = ort.SessionOptions()
    for key in ("intra_op_num_threads", "inter_op_num_threads", "enable_cpu_mem_arena", "enable_mem_pattern",
                "log_severity_level"):
        if spec.get(key) is not None:
            setattr(options, key, spec[key])
    if spec.get("graph_optimization_level"):
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT[spec["graph_optimization_level"]])
    if spec.get("execution_mode"):
        options.execution_mode = getattr(ort.ExecutionMode, f"ORT_{spec['execution_mode'].upper()}")
    if spec.get("allow_spinning") is not None:
        flag = "1" if spec["allow_spinning"] else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", flag)
        options.add_session_config_entry("session.inter_op.allow_spinning", flag)
    if spec.get("affinity"):
        options.add_session_config_entry("session.intra_op_thread_affinities", spec["affinity"])
    for key, value in (spec.get("config") or {}).items():
        options.add_session_config_entry(key, str(value))
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def create_session(ort: Any, model: str | bytes, case: dict[str, Any], profile_prefix: str | None = None) -> Any:
    providers: list[Any] = [(case["provider"], case.get("provider_options") or {})]
    return ort.InferenceSession(model, sess_options=session_options(ort, case.get("session") or {}, profile_prefix),
                                providers=providers)


def provider_problem(ort: Any, case: dict[str, Any]) -> str | None:
    """Why the requested provider cannot run at all here (tried on a trivial model), or None."""
    provider = case["provider"]
    available = ort.get_available_providers()
    if provider not in available:
        return (f"{provider} is not in this onnxruntime build (onnxruntime {ort.__version__} "
                f"provides {', '.join(available)})")
    with captured_stderr() as lines:
        try:
            session = create_session(ort, PROBE_MODEL, {**case, "session": {}})
            assigned = session.get_providers()
            session.run(None, {"x": np.ones((1, 4), np.float32)})
            error = None
        except Exception as exc:
            assigned, error = [], f"{type(exc).__name__}: {exc}"
    if error:
        return f"{provider} failed to start: {first_line(clean(error))}"
    if provider not in assigned:
        return f"onnxruntime fell back to {', '.join(assigned)}: {explain(lines) or 'no reason given'}"
    return None


def first_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


ANSI = re.compile(r"\x1b\[[0-9;]*m|\[[0-9;]*m")
# "2026-11-26 20:47:17.39 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \[[EWIV]:onnxruntime:[^\]]*\]\s*")
SOURCE_PREFIX = re.compile(r"^/\S+\.(cc|cpp|h):\d+ .*?\[(ONNXRuntimeError\] : \d+ : \w+ :|ERROR\]) ")
ORT_ERROR = re.compile(r"^(\w+: )?\[ONNXRuntimeError\] : \d+ : \w+ : ")
LIBRARY_PATH = re.compile(r"/\S+/(lib[\w.+-]+\.(so|dylib|dll)[\w.]*)")


def clean(line: str) -> str:
    """One log line without colour codes, timestamps and source paths: just what went wrong."""
    line = LOG_PREFIX.sub("", ANSI.sub("", line).strip())
    line = ORT_ERROR.sub("", SOURCE_PREFIX.sub("", line))
    return LIBRARY_PATH.sub(r"\1", line)


def explain(lines: list[str]) -> str:
    """The lines of onnxruntime's output that say what went wrong, newest first."""
    keys = ("error", "fail", "not ", "unable", "cannot", "missing", "unsupported", "no such", "require")
    lines = [clean(l) for l in lines if clean(l)]
    picked = [l for l in lines if any(k in l.lower() for k in keys)] or lines
    unique = list(dict.fromkeys(picked))
    return first_line(" | ".join(unique[-3:]))


def run_until(run: Any, m: dict[str, Any]) -> tuple[list[int], int, int, str, bool]:
    """Single-stream loop: time only ``run``; stop on min count AND min time, or precision, or max time."""
    samples: list[int] = []
    append = samples.append
    clock = time.perf_counter_ns
    min_n, precision = m["min_iterations"], m.get("precision")
    start = clock()
    min_end, max_end = start + int(m["min_s"] * 1e9), start + int(m["max_s"] * 1e9)
    next_check, precision_met, reason = 0, False, "max_s"
    while True:
        t0 = clock()
        run()
        t1 = clock()
        append(t1 - t0)
        if t1 >= max_end:
            break
        if t1 >= min_end and len(samples) >= min_n:
            if precision is None:
                reason = "minimums"
                break
            if len(samples) >= next_check:
                next_check = len(samples) + max(50, len(samples) // 10)
                if stats.relative_precision_reached(np.asarray(samples, dtype=np.float64), precision):
                    precision_met, reason = True, "precision"
                    break
    end = clock()
    return samples, start, end, reason, precision_met


def run_streams(run: Any, m: dict[str, Any], streams: int) -> tuple[list[int], int, int, str, bool]:
    """N closed-loop streams sharing one session, like perf_test -c / benchmark_app infer requests."""
    clock = time.perf_counter_ns
    per_stream: list[list[tuple[int, int]]] = [[] for _ in range(streams)]
    stop = threading.Event()
    gate = threading.Barrier(streams + 1)

    def loop(out: list[tuple[int, int]]) -> None:
        gate.wait()
        while not stop.is_set():
            t0 = clock()
            run()
            out.append((t0, clock()))

    threads = [threading.Thread(target=loop, args=(out,), daemon=True) for out in per_stream]
    for thread in threads:
        thread.start()
    gate.wait()
    start = clock()
    reason = "max_s"
    while True:
        time.sleep(0.005)
        now = clock()
        if now - start >= m["max_s"] * 1e9:
            break
        if now - start >= m["min_s"] * 1e9 and sum(map(len, per_stream)) >= m["min_iterations"]:
            reason = "minimums"
            break
    stop.set()
    for thread in threads:
        thread.join()
    pairs = sorted(p for out in per_stream for p in out)
    samples = [t1 - t0 for t0, t1 in pairs]
    return samples, pairs[0][0], max(t1 for _, t1 in pairs), reason, False


def warm_up(run: Any, m: dict[str, Any]) -> int:
    count, end = 0, time.perf_counter() + m["warmup_s"]
    while count < m["warmup_iterations"] or time.perf_counter() < end:
        run()
        count += 1
    return count


def accuracy(session: Any, case: dict[str, Any]) -> dict[str, Any] | None:
    """Outputs of this case against reference outputs computed on the CPU provider for the same inputs."""
    ref = case.get("reference")
    if not ref:
        return None
    with np.load(ref["inputs"]) as archive:
        feeds_by_sample: dict[int, dict[str, np.ndarray]] = {}
        for key in archive.files:
            sample, name = key.split("/", 1)
            feeds_by_sample.setdefault(int(sample), {})[name] = archive[key]
    names = [o.name for o in session.get_outputs()]
    got = {sample: dict(zip(names, session.run(None, feeds))) for sample, feeds in sorted(feeds_by_sample.items())}
    result = compare_with(got, ref["outputs"])
    if ref.get("cpu_outputs"):
        result["vs_cpu_same_variant"] = compare_with(got, ref["cpu_outputs"])
    return result


def compare_with(got: dict[int, dict[str, np.ndarray]], path: str) -> dict[str, Any]:
    mine: dict[str, list[np.ndarray]] = {}
    want: dict[str, list[np.ndarray]] = {}
    with np.load(path) as outputs:
        for sample, values in got.items():
            for name, value in values.items():
                if f"{sample}/{name}" in outputs.files:
                    mine.setdefault(name, []).append(np.asarray(value))
                    want.setdefault(name, []).append(outputs[f"{sample}/{name}"])
    return compare_outputs(mine, want)


def compare_outputs(got: dict[str, list[np.ndarray]], want: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    per_output = {}
    for name in want:
        a = np.concatenate([np.asarray(x, np.float64).reshape(len(x) if np.ndim(x) else 1, -1) for x in got[name]])
        b = np.concatenate([np.asarray(x, np.float64).reshape(len(x) if np.ndim(x) else 1, -1) for x in want[name]])
        diff = np.abs(a - b)
        norm_b = float(np.linalg.norm(b))
        denom = float(np.linalg.norm(a) * norm_b)
        metrics = {
            "max_abs": float(diff.max()) if diff.size else 0.0,
            "mean_abs": float(diff.mean()) if diff.size else 0.0,
            "rel_l2": float(np.linalg.norm(a - b) / norm_b) if norm_b else float(np.linalg.norm(a - b)),
            "cosine": float(np.sum(a * b) / denom) if denom else (1.0 if not np.any(a - b) else 0.0),
            "rows": int(a.shape[0]),
        }
        if looks_like_class_scores(want[name]):
            top_a, top_b = np.argsort(-a, axis=1), np.argsort(-b, axis=1)
            metrics["top1"] = float(np.mean(top_a[:, 0] == top_b[:, 0]))
            k = min(5, a.shape[1])
            metrics["top5"] = float(np.mean([top_b[i, 0] in top_a[i, :k] for i in range(a.shape[0])]))
        per_output[name] = metrics
    worst = {
        "max_abs": max(m["max_abs"] for m in per_output.values()),
        "mean_abs": max(m["mean_abs"] for m in per_output.values()),
        "rel_l2": max(m["rel_l2"] for m in per_output.values()),
        "cosine": min(m["cosine"] for m in per_output.values()),
    }
    tops = [m for m in per_output.values() if "top1" in m]
    if tops:
        worst["top1"] = min(m["top1"] for m in tops)
        worst["top5"] = min(m["top5"] for m in tops)
    return {**worst, "outputs": per_output}


def looks_like_class_scores(arrays: list[np.ndarray]) -> bool:
    """A float [batch, classes] output with many classes: top-k agreement means something."""
    first = arrays[0]
    inner = [d for d in first.shape[1:] if d != 1]  # [batch, 1000, 1, 1] from a conv head counts too
    return first.ndim >= 2 and len(inner) == 1 and inner[0] >= 10 and np.issubdtype(first.dtype, np.floating)


def placement(ort: Any, model: str, case: dict[str, Any], feeds: dict[str, np.ndarray], workdir: str) -> dict[str, Any]:
    """Which provider ran each node, from onnxruntime's profiler, in a separate untimed session."""
    session = create_session(ort, model, case, profile_prefix=os.path.join(workdir, "profile"))
    session.run(None, feeds)
    profile = session.end_profiling()
    try:
        with open(profile) as f:
            events = json.load(f)
    finally:
        os.unlink(profile)
    nodes: dict[str, str] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") == "Node" and "provider" in args:
            nodes[event["name"].removesuffix("_kernel_time").removesuffix("_fence_before").removesuffix("_fence_after")] = args["provider"]
    counts: dict[str, int] = {}
    for provider in nodes.values():
        counts[provider] = counts.get(provider, 0) + 1
    total = sum(counts.values())
    on_requested = counts.get(case["provider"], 0)
    return {"nodes": counts, "total": total, "on_requested": on_requested,
            "fraction_on_requested": on_requested / total if total else None,
            "partial_fallback": bool(total) and on_requested < total}


def preload_gpu_libraries(ort: Any, provider: str) -> None:
    """CUDA/cuDNN installed from pip (nvidia-* wheels) are only found after preload_dlls()."""
    import importlib.util

    if DEVICE_OF.get(provider) == "cuda" and hasattr(ort, "preload_dlls") and importlib.util.find_spec("nvidia"):
        with captured_stderr():
            try:
                ort.preload_dlls()
            except Exception:
                pass


def gpu_memory_mb(device_id: int) -> dict[str, float | None] | None:
    """This process's GPU memory from NVML, and the device total in use (for a baseline difference)."""
    try:
        import pynvml  # nvidia-ml-py, installed into GPU runtimes

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_id)
        mine = [p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                if p.pid == os.getpid() and p.usedGpuMemory]
        return {"process": mine[0] / 2**20 if mine else None,
                "device_used": pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20}
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def device_resident(ort: Any, session: Any, feeds: dict[str, np.ndarray], case: dict[str, Any]) -> dict[str, Any]:
    """The same loop with inputs and outputs kept on the device (IO binding): no host copies timed."""
    device = DEVICE_OF[case["provider"]]
    device_id = int((case.get("provider_options") or {}).get("device_id", 0))
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, device, device_id))
    for output in session.get_outputs():
        binding.bind_output(output.name, device, device_id)

    def run() -> None:
        session.run_with_iobinding(binding)

    m = case["measure"]
    warm_up(run, m)
    samples, start, end, reason, precision_met = run_until(run, m)
    wall_s = (end - start) / 1e9
    return {"samples_ms": [round(s / 1e6, 6) for s in samples], "device": device,
            "loop": {"iterations": len(samples), "wall_s": wall_s, "stop_reason": reason,
                     "precision_met": precision_met, "inferences_per_s": len(samples) / wall_s if wall_s else None}}


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - values[3] - values[4]) / ticks, sum(values) / ticks


def others_cpu_share(before: tuple, after: tuple) -> float | None:
    """Share of the machine's CPU time that OTHER processes used while we measured.

    A load that slows every run alike leaves no trace in the samples; this is how it shows.
    """
    (m0, t0), (m1, t1) = before, after
    if m0 is None or m1 is None or m1[1] <= m0[1]:
        return None
    own = (t1.user + t1.system) - (t0.user + t0.system)
    return max(0.0, min(1.0, ((m1[0] - m0[0]) - own) / (m1[1] - m0[1])))


def measure(case: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"status": "failed"}
    rss_start = rss_mb()
    t = time.perf_counter()
    import onnxruntime as ort

    result["timings_ms"] = {"import_onnxruntime": (time.perf_counter() - t) * 1e3}
    result["runtime"] = {
        "onnxruntime_version": ort.__version__, "device": ort.get_device(), "python": sys.executable,
        "available_providers": ort.get_available_providers(),
        "providers_requested": [case["provider"]], "provider_options": case.get("provider_options") or {},
        "session_options": case.get("session") or {},
    }
    preload_gpu_libraries(ort, case["provider"])
    device_id = int((case.get("provider_options") or {}).get("device_id", 0))
    gpu_before = gpu_memory_mb(device_id) if case["provider"] in DEVICE_OF else None
    problem = provider_problem(ort, case) if case["provider"] != CPU else None
    if problem:
        return {**result, "status": "unavailable", "reason": problem}
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
    if gpu_after is not None:
        result["gpu_memory_mb"] = {"process": gpu_after["process"],
                                   "device_used_minus_baseline": gpu_after["device_used"] - gpu_before["device_used"]}
    if case["provider"] in DEVICE_OF and case.get("device_resident", True):
        try:
            result["device_resident"] = device_resident(ort, session, feeds, case)
        except Exception as exc:
            result["device_resident"] = {"error": first_line(clean(f"{type(exc).__name__}: {exc}"))}
    return result


def untimed_passes(ort: Any, session: Any, feeds: dict[str, np.ndarray], case: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and node placement. Run in a worker of their own (mode "extras") so that the
    extra sessions and outputs they hold never inflate the measuring worker's peak memory."""
    out: dict[str, Any] = {"status": "ok"}
    try:
        out["accuracy"] = accuracy(session, case)
    except Exception as exc:
        out["accuracy"] = {"error": first_line(clean(f"{type(exc).__name__}: {exc}"))}
    if case.get("placement"):
        try:
            out["placement"] = placement(ort, case["model_path"], case, feeds, case["workdir"])
        except Exception as exc:
            out["placement"] = {"error": first_line(clean(f"{type(exc).__name__}: {exc}"))}
    return out


def probe_main(provider: str, options_json: str) -> int:
    """``--probe PROVIDER OPTIONS``: can this runtime run the provider at all? (harness doctor)"""
    import onnxruntime as ort

    problem = provider_problem(ort, {"provider": provider, "provider_options": json.loads(options_json)})
    print(json.dumps({"onnxruntime_version": ort.__version__, "available": problem is None, "reason": problem}))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--probe":
        return probe_main(argv[2], argv[3])
    if len(argv) != 3:
        print("usage: python -m harness.worker CASE.json RESULT.json", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        case = json.load(f)
    try:
        result = measure(case)
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "failed", "reason": first_line(f"{type(exc).__name__}: {exc}")}
    tmp = argv[2] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
