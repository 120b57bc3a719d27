"""Run a plan: for each case, prepare its model and inputs, run worker processes, record.

The results file is rewritten after every case, so a crash or Ctrl-C loses at most the case
in flight. A case that crashes, hangs or cannot be prepared fails alone; the run goes on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import stats
from .environment import fingerprint
from .executors.local import run_worker
from .inputs import make_feeds
from .plan import Case, Plan
from .results import new_document, utc_now, write_atomic
from .runtimes import Runtime, RuntimeUnavailable, ensure_runtime
from .variants import VariantError, VariantStore

CPU = "CPUExecutionProvider"


class Reporter(Protocol):
    def message(self, text: str) -> None: ...
    def start(self, plan: Plan, results_path: Path) -> None: ...
    def case_start(self, index: int, case: Case) -> None: ...
    def case_end(self, index: int, case: Case, record: dict[str, Any]) -> None: ...
    def finish(self, document: dict[str, Any]) -> None: ...


@dataclass
class RunOutcome:
    document: dict[str, Any]
    path: Path
    interrupted: bool = False

    @property
    def any_failed(self) -> bool:
        return any(c["status"] == "failed" for c in self.document["cases"])


@dataclass
class RuntimeCache:
    """Runtimes resolved once per target; an unavailable one is remembered with its reason."""

    say: Any
    found: dict[str, Runtime | str] = field(default_factory=dict)

    def get(self, case: Case) -> Runtime | str:
        if case.target.name not in self.found:
            try:
                self.found[case.target.name] = ensure_runtime(case.target, self.say)
            except RuntimeUnavailable as exc:
                self.found[case.target.name] = f"runtime {case.target.package} unavailable: {exc}"
        return self.found[case.target.name]


def results_path(out_dir: Path, suite_name: str, started: datetime, run_id: str) -> Path:
    """<suite>-<UTC time>.json; two runs started in the same second get the run id's suffix."""
    path = out_dir / f"{suite_name}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    return path if not path.exists() else path.with_name(f"{path.stem}-{run_id[-6:]}.json")


def start_document(plan: Plan, out_dir: Path, runner: str = "harness run") -> tuple[dict[str, Any], Path]:
    """A new results document for a plan, written at once so that even an empty run leaves a file."""
    loaded, suite = plan.loaded, plan.loaded.suite
    started = datetime.now(timezone.utc)
    run_id = f"{suite.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    document = new_document(
        run_id,
        suite={"name": suite.name, "path": str(loaded.path), "sha256": loaded.sha256, "description": suite.description},
        environment=fingerprint(),
        settings={"measure": suite.measure.model_dump(), "session": suite.session.model_dump(exclude_none=True),
                  "accuracy": suite.accuracy.model_dump(exclude_none=True), "runner": runner},
    )
    path = results_path(out_dir, suite.name, started, run_id)
    write_atomic(path, document)
    return document, path


def run_plan(plan: Plan, out_dir: Path, reporter: Reporter) -> RunOutcome:
    document, path = start_document(plan, out_dir)
    reporter.start(plan, path)
    runtimes = RuntimeCache(reporter.message)
    variants = VariantStore(plan.loaded, plan.model_files, reporter.message)
    scratch = Path(tempfile.mkdtemp(prefix="harness-run-"))
    interrupted = False
    try:
        for index, case in enumerate(plan.cases):
            reporter.case_start(index, case)
            workdir = scratch / f"case{index:04d}"
            workdir.mkdir()
            record = run_case(case, runtimes, variants, workdir, plan)
            document["cases"].append(record)
            write_atomic(path, document)
            reporter.case_end(index, case, record)
            shutil.rmtree(workdir, ignore_errors=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        document["finished_at"] = utc_now()
        document["status"] = "interrupted" if interrupted else "complete"
        write_atomic(path, document)
        shutil.rmtree(scratch, ignore_errors=True)
    reporter.finish(document)
    return RunOutcome(document, path, interrupted)


def base_record(case: Case) -> dict[str, Any]:
    return {"case_id": case.case_id, "model": case.model.name, "variant": case.variant.name,
            "variant_kind": case.variant.kind, "target": case.target.name, "params": dict(case.params),
            "status": "failed", "reason": None,
            "runtime": {"package": case.target.package, "providers_requested": [case.target.provider],
                        "provider_options": case.target.options,
                        "session_options": case.target.session.model_dump(exclude_none=True)}}


def thread_warnings(case: Case) -> list[str]:
    """Intra-op threads x concurrent streams beyond the cores wrecks latency: say so next to the number."""
    cores = os.cpu_count() or 1
    threads = case.target.options.get("num_of_threads") or case.target.session.intra_op_num_threads or cores
    streams = int(case.params.get("streams", 1))
    if int(threads) * streams > cores:
        return [f"oversubscribed: {threads} threads x {streams} streams > {cores} cores"]
    return []


BUSY_SHARE = 0.25  # other processes' share of all CPU time above which the machine was not quiet


def busy_warnings(loops: list[dict[str, Any]]) -> list[str]:
    shares = [l["other_processes_cpu"] for l in loops if l.get("other_processes_cpu") is not None]
    if shares and max(shares) > BUSY_SHARE:
        return [f"busy machine: other processes used {max(shares):.0%} of CPU time while measuring"]
    return []


def run_case(case: Case, runtimes: RuntimeCache, variants: VariantStore, workdir: Path, plan: Plan) -> dict[str, Any]:
    record = base_record(case)
    if case.target.price_per_hour is not None:
        record["price_per_hour"] = case.target.price_per_hour
    runtime = runtimes.get(case)
    if isinstance(runtime, str):
        return {**record, "status": "unavailable", "reason": runtime}
    record["runtime"].update(package=runtime.package, python=runtime.python, managed=runtime.managed,
                             onnxruntime_version=runtime.onnxruntime_version,
                             build_info=runtime.info.get("build_info"), ep_versions=runtime.info.get("ep_versions"))
    try:
        model_path = variants.path(case)
    except VariantError as exc:
        return {**record, "reason": f"variant {case.variant.name} could not be built: {exc}"}
    record["model_file"] = {"path": str(model_path), "size_bytes": model_path.stat().st_size,
                            "inputs": [{k: i[k] for k in ("name", "dtype", "shape", "fill")} for i in case.inputs]}
    suite = plan.loaded.suite
    m = suite.measure
    seed = case.model.seed
    np.savez(workdir / "inputs.npz", **make_feeds(case.inputs, seed))
    job: dict[str, Any] = {
        "case_id": case.case_id, "model_path": str(model_path), "provider": case.target.provider,
        "provider_options": case.target.options, "session": case.target.session.model_dump(exclude_none=True),
        "inputs": str(workdir / "inputs.npz"), "measure": m.model_dump(), "streams": case.params.get("streams", 1),
        "placement": False, "workdir": str(workdir), "reference": None,
    }
    try:
        job["reference"] = variants.reference(case, workdir)
        reference_error = None
    except Exception as exc:  # the reference model itself failed to build or run: speed is still worth having
        reference_error = f"reference outputs could not be computed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    outcomes = []
    for repeat in range(m.repeats):
        outcome = run_worker(runtime.python, {**job, "reference": None}, workdir, m.timeout_s)
        outcomes.append(outcome)
        if outcome.result is None:
            return {**record, "reason": outcome.failure_reason(m.timeout_s)}
        if outcome.result.get("status") != "ok":
            merged = {**record, **{k: v for k, v in outcome.result.items() if k != "runtime"}}
            merged["runtime"] = {**record["runtime"], **(outcome.result.get("runtime") or {})}
            return merged
    record = assemble(record, case, [o.result for o in outcomes], outcomes, suite)  # type: ignore[misc]
    record.update(untimed(runtime, {**job, "mode": "extras", "placement": m.placement}, workdir, m.timeout_s))
    if reference_error:
        record["accuracy"] = {"error": reference_error, "verdict": "error"}
    elif record.get("accuracy"):
        record["accuracy"] = check_accuracy(record["accuracy"], suite.accuracy)
    return record


def untimed(runtime: Runtime, job: dict[str, Any], workdir: Path, timeout_s: float) -> dict[str, Any]:
    """Accuracy and placement from a worker of their own; a problem there never voids the speed figures."""
    if not job["placement"] and not job["reference"]:
        return {}
    outcome = run_worker(runtime.python, job, workdir, timeout_s)
    result = outcome.result or {}
    if result.get("status") != "ok":
        reason = result.get("reason") or outcome.failure_reason(timeout_s)
        error = {"error": f"untimed pass failed: {reason}"}
        return {"placement": error} | ({"accuracy": {**error, "verdict": "error"}} if job["reference"] else {})
    return {key: result[key] for key in ("accuracy", "placement") if result.get(key) is not None}


def assemble(record: dict[str, Any], case: Case, results: list[dict[str, Any]], outcomes: list, suite: Any) -> dict:
    """Merge the repeats of a case: pooled samples, per-repeat medians and spread, validity flags."""
    m = suite.measure
    first = results[0]
    samples = [s for r in results for s in r["samples_ms"]]
    summary = stats.summarize(samples)
    medians = [float(np.median(r["samples_ms"])) for r in results]
    spread = stats.repeat_spread(medians)
    unstable = stats.is_unstable(summary, spread, m.unstable_cv, m.unstable_spread)
    loops = [r["loop"] for r in results]
    iterations = sum(l["iterations"] for l in loops)
    wall = sum(l["wall_s"] for l in loops)
    batch = int(case.params.get("batch", 1))
    stop_reasons = sorted({l["stop_reason"] for l in loops})
    record.update(
        status="ok",
        reason=None,
        runtime={**record["runtime"], **first["runtime"]},
        latency_ms=summary,
        throughput={"inferences_per_s": iterations / wall, "samples_per_s": iterations * batch / wall,
                    "streams": loops[0]["streams"], "batch": batch, "wall_s": wall},
        memory_mb={"peak_rss": max(peak_rss(r, o) for r, o in zip(results, outcomes)),
                   **{k: float(np.median([r["memory_mb"][k] for r in results]))
                      for k in ("rss_start", "rss_after_session", "rss_after_warmup", "rss_end")
                      if all(r["memory_mb"].get(k) is not None for r in results)},
                   "arena": case.target.session.enable_cpu_mem_arena is not False},
        timings_ms={"session_create": first["timings_ms"]["session_create"],
                    "first_inference": first["timings_ms"]["first_inference"],
                    "import_onnxruntime": first["timings_ms"]["import_onnxruntime"],
                    "session_create_median": float(np.median([r["timings_ms"]["session_create"] for r in results])),
                    "first_inference_median": float(np.median([r["timings_ms"]["first_inference"] for r in results])),
                    "worker_process": float(np.median([o.wall_s for o in outcomes]) * 1e3)},
        measurement={"iterations": iterations, "warmup_iterations": loops[0]["warmup_iterations"],
                     "duration_s": wall, "stop_reason": stop_reasons[0] if len(stop_reasons) == 1 else stop_reasons,
                     "minimums_met": all(l["minimums_met"] for l in loops),
                     "other_processes_cpu": max((l["other_processes_cpu"] for l in loops
                                                 if l.get("other_processes_cpu") is not None), default=None),
                     "precision": m.precision,
                     "precision_met": all(l["precision_met"] for l in loops) if m.precision else None,
                     "median_ci_reached": stats.median_ci_reached(summary["n"]),
                     "repeats": len(results), "repeat_medians_ms": medians,
                     "repeat_iterations": [l["iterations"] for l in loops],
                     "repeat_spread": spread, "unstable": unstable,
                     "warnings": thread_warnings(case) + busy_warnings(loops)},
        samples_ms=samples,
    )
    if first.get("gpu_memory_mb") is not None:
        record["gpu_memory_mb"] = first["gpu_memory_mb"]
    resident = [r["device_resident"] for r in results if r.get("device_resident")]
    if resident and "error" not in resident[0]:
        pooled = [s for r in resident for s in r["samples_ms"]]
        wall_r = sum(r["loop"]["wall_s"] for r in resident)
        record["device_resident"] = {
            "device": resident[0]["device"], "latency_ms": stats.summarize(pooled),
            "throughput": {"inferences_per_s": len(pooled) / wall_r, "samples_per_s": len(pooled) * batch / wall_r},
            "samples_ms": pooled}
    elif resident:
        record["device_resident"] = resident[0]
    return record


def peak_rss(result: dict[str, Any], outcome: Any) -> float:
    """The worker's own high-water mark where it could read one (Linux), else the kernel's
    rusage from wait4, which on Linux also carries the spawning parent's mark (see worker.peak_rss_mb)."""
    own = (result.get("memory_mb") or {}).get("peak_rss")
    return own if own is not None else outcome.peak_rss_mb


def check_accuracy(accuracy: dict[str, Any], limits: Any) -> dict[str, Any]:
    """Apply the suite's thresholds: a failing case keeps its speed numbers, marked accuracy fail."""
    if "error" in accuracy:
        return {**accuracy, "verdict": "error"}
    problems = []
    if limits.min_cosine is not None and accuracy["cosine"] < limits.min_cosine:
        problems.append(f"cosine {accuracy['cosine']:.4f} < {limits.min_cosine}")
    if limits.min_top1 is not None and accuracy.get("top1") is not None and accuracy["top1"] < limits.min_top1:
        problems.append(f"top1 {accuracy['top1']:.3f} < {limits.min_top1}")
    if limits.max_abs is not None and accuracy["max_abs"] > limits.max_abs:
        problems.append(f"max_abs {accuracy['max_abs']:.3g} > {limits.max_abs}")
    return {**accuracy, "verdict": "fail" if problems else "pass", "problems": problems}
