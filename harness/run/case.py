"""One case: prepare its model and inputs, run its worker processes, assemble its record.

A case that crashes, hangs or cannot be prepared fails alone, with the reason; the run goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import stats
from ..files import write_atomic_text
from ..models.inputs import make_feeds
from ..plan import Case, Plan
from ..results import (
    Accuracy,
    CaseRecord,
    DeviceResident,
    Latency,
    Measurement,
    Memory,
    ModelFile,
    Placement,
    Precision,
    Profile,
    RecordError,
    Runtime,
    Throughput,
    Timings,
    case_notes,
    utc_now,
)
from ..runtimes import Runtime as RuntimeEnv
from ..runtimes import RuntimeUnavailable, ensure_runtime, loadgen_problem
from ..suite import AccuracySpec, Suite
from ..variants import VariantError, VariantStore
from ..worker.protocol import OPENVINO
from .local import WorkerOutcome, run_worker
from .serving import assemble_serving, is_loadgen, safe_name, serving_budget_s, serving_job
from .signals import reraise_interrupt


@dataclass
class RuntimeCache:
    """Runtimes resolved once per target; an unavailable one is remembered with its reason."""

    say: Callable[[str], None]
    found: dict[str, RuntimeEnv | str] = field(default_factory=dict)

    def get(self, case: Case) -> RuntimeEnv | str:
        if case.target.name not in self.found:
            try:
                self.found[case.target.name] = ensure_runtime(case.target, self.say)
            except RuntimeUnavailable as exc:
                self.found[case.target.name] = f"runtime {case.target.package} unavailable: {exc}"
            except Exception as exc:  # a broken interpreter must fail its target's cases, not the run
                reraise_interrupt(exc)
                self.found[case.target.name] = (f"runtime {case.target.package} unavailable: "
                                                f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return self.found[case.target.name]


def base_record(case: Case) -> CaseRecord:
    return CaseRecord(case_id=case.case_id, model=case.model.name, variant=case.variant.name,
                      variant_kind=case.variant.kind, target=case.target.name, params=dict(case.params),
                      status="failed", price_per_hour=case.target.price_per_hour,
                      runtime=Runtime(package=case.target.package, providers_requested=[case.target.provider],
                                      provider_options=dict(case.target.options),
                                      session_options=case.target.session.model_dump(exclude_none=True),
                                      plugin=case.target.plugin))


@dataclass
class CaseRun:
    """One case on its way through a run: prepared once, measured by ``repeats`` fresh worker
    processes (which a run may interleave with other cases' processes), then finished into its
    record. Whatever one case needs and fails at fails that case alone, with the reason."""

    case: Case
    plan: Plan
    workdir: Path
    record: CaseRecord = field(init=False)
    started: str = field(init=False, default_factory=utc_now)
    runtime: RuntimeEnv | None = None
    job: dict[str, Any] = field(default_factory=dict)
    reference_error: str | None = None
    outcomes: list[WorkerOutcome] = field(default_factory=list)
    ended: CaseRecord | None = None  # set when the case stopped early (unavailable, failed)
    logs_home: Path | None = None  # where LoadGen logs are kept (next to the results file)
    profiles_home: Path | None = None  # where each case's every-node profile table is kept
    run_sigma: float | None = None  # the run's pooled process spread, for the interval (set before finish)

    def __post_init__(self) -> None:
        self.record = base_record(self.case)

    @property
    def pending(self) -> bool:
        """More worker processes to run."""
        suite = self.plan.loaded.suite
        repeats = suite.serving.repeats if is_loadgen(self.case) else suite.measure.repeats
        return self.ended is None and len(self.outcomes) < repeats

    def prepare(self, runtimes: RuntimeCache, variants: VariantStore) -> None:
        try:
            self._prepare(runtimes, variants)
        except (Exception, MemoryError) as exc:
            reraise_interrupt(exc)
            self.ended = self._cannot("prepare", exc)

    @property
    def process_sigma(self) -> float | None:
        """This case's process-to-process spread so far (None: too few ok processes, or LoadGen)."""
        if self.ended is not None or is_loadgen(self.case):
            return None
        medians = [float(np.median(o.result["samples_ms"])) for o in self.outcomes
                   if o.result is not None and o.result.get("samples_ms")]
        return stats.process_sigma(medians)

    @property
    def timeout_s(self) -> float:
        """Per worker process; a LoadGen case gets at least what its LoadGen runs may take."""
        budget = serving_budget_s(self.job) if is_loadgen(self.case) and self.job else 0.0
        return max(self.plan.loaded.suite.measure.timeout_s, budget)

    def measure_one(self) -> None:
        """One more timed worker process; a failing one ends the case."""
        m = self.plan.loaded.suite.measure
        assert self.runtime is not None
        try:
            outcome = run_worker(self.runtime.python, {**self.job, "reference": None, "process": len(self.outcomes)},
                                 self.workdir, self.timeout_s,
                                 m.memory_limit_mb)
        except (Exception, MemoryError) as exc:
            reraise_interrupt(exc)
            self.ended = self._cannot("measure", exc)
            return
        self.outcomes.append(outcome)
        if outcome.result is None:
            self.ended = replace(self.record, reason=outcome.failure_reason(self.timeout_s))
        elif outcome.result.get("status") != "ok":
            self.ended = worker_failure(self.record, outcome.result)

    def finish(self) -> CaseRecord:
        """The case's record, with its start and end times and its notes."""
        record = self.ended
        if record is None:
            try:
                record = self._finish()
            except (Exception, MemoryError) as exc:
                reraise_interrupt(exc)
                record = self._cannot("finish", exc)
        record.started_at, record.finished_at = self.started, utc_now()
        record.notes = case_notes(record)
        return record

    def _cannot(self, what: str, exc: BaseException) -> CaseRecord:
        return replace(self.record, status="failed",
                       reason=f"could not {what} the case: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")

    def _prepare(self, runtimes: RuntimeCache, variants: VariantStore) -> None:
        case, record = self.case, self.record
        runtime = runtimes.get(case)
        if isinstance(runtime, str):
            self.ended = replace(record, status="unavailable", reason=runtime)
            return
        self.runtime = runtime
        record.runtime = replace(record.runtime, package=runtime.package, python=runtime.python,
                                 managed=runtime.managed, onnxruntime_version=runtime.onnxruntime_version,
                                 build_info=runtime.info.get("build_info"), ep_versions=runtime.info.get("ep_versions"))
        try:
            model_path = variants.path(case)
        except VariantError as exc:
            self.ended = replace(record, reason=f"variant {case.variant.name} could not be built: {exc}")
            return
        record.model_file = ModelFile(path=str(model_path), size_bytes=model_path.stat().st_size,
                                      inputs=[{k: i[k] for k in ("name", "dtype", "shape", "fill")}
                                              for i in case.inputs])
        too_big = inputs_too_big(case)
        if too_big:
            self.ended = replace(record, reason=too_big)
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        np.savez(self.workdir / "inputs.npz", **make_feeds(case.inputs, case.model.seed))  # type: ignore[arg-type]
        self.job = {
            "case_id": case.case_id, "model_path": str(model_path), "provider": case.target.provider,
            "provider_options": case.target.options, "session": case.target.session.model_dump(exclude_none=True),
            "inputs": str(self.workdir / "inputs.npz"), "measure": self.plan.loaded.suite.measure.model_dump(),
            "streams": case.params.get("streams", 1), "placement": False, "workdir": str(self.workdir),
            "reference": None, "precision": case.target.precision, "plugin": case.target.plugin,
        }
        self.job.update(serving_job(case, self.plan.loaded.suite))
        if is_loadgen(case):
            problem = loadgen_problem(runtime, runtimes.say)
            if problem:
                self.ended = replace(record, reason=problem)
                return
        try:
            self.job["reference"] = variants.reference(case, self.workdir)
        except Exception as exc:  # the reference model itself failed to build or run: speed is still worth having
            reraise_interrupt(exc)
            self.reference_error = (f"reference outputs could not be computed: {type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())[:300]}")

    def _finish(self) -> CaseRecord:
        suite = self.plan.loaded.suite
        m = suite.measure
        assert self.runtime is not None
        try:
            if is_loadgen(self.case):
                done = [(o.result, o) for o in self.outcomes if o.result is not None]
                record = assemble_serving(self.record, self.job, [r for r, _ in done],
                                          float(np.median([o.wall_s for _, o in done])) * 1e3,
                                          max((p for p in (peak_rss(r, o) for r, o in done) if p is not None),
                                              default=None), self.logs_home)
                record.runtime = merged_runtime(record.runtime, done[0][0]["runtime"])
            else:
                record = assemble(self.record, self.case, [o.result for o in self.outcomes if o.result is not None],
                                  self.outcomes, suite, self.run_sigma)
        except (RecordError, KeyError, TypeError) as exc:
            return replace(self.record, reason=f"the worker's result is malformed: {exc}")
        extras = untimed(self.runtime, {**self.job, "mode": "extras", "placement": m.placement},
                         self.workdir, self.timeout_s, m.memory_limit_mb)
        accuracy = extras.accuracy
        record.placement = extras.placement
        record.precision = extras.precision or Precision(
            requested=self.case.target.precision, source="not reported: the untimed pass did not run")
        if extras.profile is not None:
            profile = extras.profile
            if self.profiles_home is not None and extras.profile_nodes:
                profile.table = str(write_atomic_text(self.profiles_home / f"{safe_name(record.case_id)}.json",
                                                      json.dumps({"case_id": record.case_id,
                                                                  "nodes": extras.profile_nodes})))
            record.profile = profile
        if self.reference_error:
            record.accuracy = Accuracy(error=self.reference_error, verdict="error")
        elif accuracy is not None:
            record.accuracy = check_accuracy(accuracy, suite.accuracy)
        return record


def inputs_too_big(case: Case) -> str | None:
    """Declared input shapes are checked against free memory before anything is allocated: the
    parent builds the inputs, so a [100000, 3, 1024, 1024] tensor would take the harness down."""
    need = sum(int(np.prod(i["shape"], dtype=np.float64)) * np.dtype(i["dtype"]).itemsize for i in case.inputs)
    try:
        import psutil

        available = psutil.virtual_memory().available
    except Exception:
        return None
    if need * 3 > available:  # the parent's copy, the file, the worker's copy
        names = ", ".join(f"{i['name']} {list(i['shape'])}" for i in case.inputs)
        return (f"inputs need {need / 2**30:,.1f} GiB ({names}), more than a third of the "
                f"{available / 2**30:,.1f} GiB of memory available; reduce the shape or batch")
    return None


def worker_failure(record: CaseRecord, result: dict[str, Any]) -> CaseRecord:
    """A worker that said why it could not measure (unavailable provider, session error)."""
    status = result.get("status")
    out = replace(record, status=status if status in ("failed", "unavailable") else "failed",
                  reason=str(result.get("reason") or "the worker gave no reason"))
    try:
        out.runtime = merged_runtime(record.runtime, result.get("runtime"))
        if isinstance(result.get("timings_ms"), dict):
            out.timings_ms = Timings.from_json(result["timings_ms"], "worker.timings_ms")
    except RecordError:
        pass  # the reason above is what matters
    return out


def merged_runtime(asked: Runtime, reported: Any) -> Runtime:
    if not isinstance(reported, dict):
        return asked
    return Runtime.from_json({**asked.to_json(), **reported}, "worker.runtime")


@dataclass
class Untimed:
    """What the untimed pass found; any part may be missing without voiding the speed figures."""

    accuracy: Accuracy | None = None
    placement: Placement | None = None
    profile: Profile | None = None
    profile_nodes: list[dict[str, Any]] = field(default_factory=list)
    precision: Precision | None = None


def untimed(runtime: RuntimeEnv, job: dict[str, Any], workdir: Path, timeout_s: float,
            memory_limit_mb: float | None) -> Untimed:
    """Accuracy, placement, the per-operator profile (with its every-node table) and the effective
    precision, from a worker of their own; a problem there never voids the speed figures."""
    if not job["placement"] and not job["reference"] and not job.get("precision") and job["provider"] != OPENVINO:
        return Untimed()
    outcome = run_worker(runtime.python, job, workdir, timeout_s, memory_limit_mb)
    result = outcome.result or {}
    if result.get("status") != "ok":
        error = f"untimed pass failed: {result.get('reason') or outcome.failure_reason(timeout_s)}"
        return Untimed(accuracy=Accuracy(error=error, verdict="error") if job["reference"] else None,
                       placement=Placement(error=error) if job["placement"] else None,
                       precision=Precision(requested=job.get("precision"), source=f"not reported: {error}"))

    def part(kind: Any, key: str) -> Any:
        return kind.from_json(result[key], f"worker.{key}") if result.get(key) else None

    nodes = result["profile_nodes"] if isinstance(result.get("profile_nodes"), list) else []
    return Untimed(accuracy=part(Accuracy, "accuracy"), placement=part(Placement, "placement"),
                   profile=part(Profile, "profile"), profile_nodes=nodes, precision=part(Precision, "precision"))


def thread_warnings(case: Case) -> list[str]:
    """Intra-op threads x concurrent streams beyond the cores wrecks latency: say so next to the number."""
    cores = os.cpu_count() or 1
    threads = case.target.options.get("num_of_threads") or case.target.session.intra_op_num_threads or cores
    streams = int(case.params.get("streams", 1))
    if int(threads) * streams > cores:
        return [f"oversubscribed: {threads} threads x {streams} streams > {cores} cores"]
    return []


def assemble(record: CaseRecord, case: Case, results: list[dict[str, Any]], outcomes: list[WorkerOutcome],
             suite: Suite, run_sigma: float | None = None) -> CaseRecord:
    """Merge the repeats of a case: pooled samples, per-repeat medians and spread, validity flags."""
    m = suite.measure
    first = results[0]
    samples = [s for r in results for s in r["samples_ms"]]
    summary = stats.summarize(samples)
    medians = [float(np.median(r["samples_ms"])) for r in results]
    spread = stats.repeat_spread(medians)
    interval = stats.between_process_interval(medians, float(summary["p50"]), run_sigma)
    loops = [r["loop"] for r in results]
    iterations = sum(loop["iterations"] for loop in loops)
    wall = sum(loop["wall_s"] for loop in loops)
    batch = int(case.params.get("batch", 1))
    stop_reasons = sorted({loop["stop_reason"] for loop in loops})
    busy = max((loop["other_processes_cpu"] for loop in loops if loop.get("other_processes_cpu") is not None),
               default=None)
    memory = {k: float(np.median([r["memory_mb"][k] for r in results]))
              for k in ("rss_start", "rss_after_session", "rss_after_warmup", "rss_end")
              if all(r["memory_mb"].get(k) is not None for r in results)}
    out = replace(
        record,
        status="ok",
        reason=None,
        runtime=merged_runtime(record.runtime, first["runtime"]),
        latency_ms=Latency.from_json(summary, "latency_ms"),
        throughput=Throughput(inferences_per_s=iterations / wall, samples_per_s=iterations * batch / wall,
                              streams=loops[0]["streams"], batch=batch, wall_s=wall),
        memory_mb=Memory(peak_rss=max((p for p in (peak_rss(r, o) for r, o in zip(results, outcomes)) if p is not None),
                                      default=None),
                         arena=case.target.session.enable_cpu_mem_arena is not False, **memory),  # type: ignore[arg-type]
        timings_ms=Timings(session_create=first["timings_ms"]["session_create"],
                           first_inference=first["timings_ms"]["first_inference"],
                           import_onnxruntime=first["timings_ms"]["import_onnxruntime"],
                           session_create_median=float(np.median([r["timings_ms"]["session_create"] for r in results])),
                           first_inference_median=float(np.median([r["timings_ms"]["first_inference"]
                                                                   for r in results])),
                           worker_process=float(np.median([o.wall_s for o in outcomes]) * 1e3)),
        measurement=Measurement(
            iterations=iterations, warmup_iterations=loops[0]["warmup_iterations"], duration_s=wall,
            stop_reason=stop_reasons[0] if len(stop_reasons) == 1 else stop_reasons,
            minimums_met=all(loop["minimums_met"] for loop in loops),
            other_processes_cpu=busy,
            precision=m.precision,
            precision_met=all(loop["precision_met"] for loop in loops) if m.precision else None,
            median_ci_reached=stats.median_ci_reached(int(summary["n"])), repeats=len(results),
            repeat_medians_ms=medians, repeat_iterations=[loop["iterations"] for loop in loops],
            repeat_spread=spread, p50_interval_ms=list(interval[:2]) if interval else None,
            p50_interval_coverage=interval[2] if interval else None,
            p50_interval_sigma=run_sigma if interval and run_sigma is not None else stats.process_sigma(medians),
            unstable=stats.reproducibility_flags(spread, len(results), m.precision, busy, m.unstable_spread),
            warnings=thread_warnings(case), paired_with=loops[0].get("paired_with")),
        samples_ms=samples,
    )
    if first.get("gpu_memory_mb") is not None:
        out.gpu_memory_mb = first["gpu_memory_mb"]
    out.device_resident = device_resident(results, batch)
    return out


def device_resident(results: list[dict[str, Any]], batch: int) -> DeviceResident | None:
    resident = [r["device_resident"] for r in results if r.get("device_resident")]
    if not resident:
        return None
    if "error" in resident[0]:
        return DeviceResident(error=str(resident[0]["error"]))
    pooled = [s for r in resident for s in r["samples_ms"]]
    wall = sum(r["loop"]["wall_s"] for r in resident)
    return DeviceResident(device=resident[0]["device"], latency_ms=Latency.from_json(stats.summarize(pooled)),
                          throughput={"inferences_per_s": len(pooled) / wall,
                                      "samples_per_s": len(pooled) * batch / wall},
                          samples_ms=pooled)


def peak_rss(result: dict[str, Any], outcome: WorkerOutcome) -> float | None:
    """The worker's own high-water mark where it could read one (Linux), else the kernel's
    rusage from wait4, which on Linux also carries the spawning parent's mark (see worker.loops.peak_rss_mb)."""
    own = (result.get("memory_mb") or {}).get("peak_rss")
    return own if own is not None else outcome.peak_rss_mb


def check_accuracy(accuracy: Accuracy, limits: AccuracySpec) -> Accuracy:
    """Apply the suite's thresholds: a failing case keeps its speed numbers, marked accuracy fail."""
    if accuracy.error is not None:
        return replace(accuracy, verdict="error")
    problems = []
    if limits.min_cosine is not None and accuracy.cosine is not None and accuracy.cosine < limits.min_cosine:
        problems.append(f"cosine {accuracy.cosine:.4f} < {limits.min_cosine}")
    if limits.min_top1 is not None and accuracy.top1 is not None and accuracy.top1 < limits.min_top1:
        problems.append(f"top1 {accuracy.top1:.3f} < {limits.min_top1}")
    if limits.max_abs is not None and accuracy.max_abs is not None and accuracy.max_abs > limits.max_abs:
        problems.append(f"max_abs {accuracy.max_abs:.3g} > {limits.max_abs}")
    unchecked = []
    if limits.min_top1 is not None and accuracy.top1 is None:
        unchecked.append("accuracy.min_top1 not applied: no output looks like class scores (a float "
                         "[batch, classes] output with at least 10 classes)")
    return replace(accuracy, verdict="fail" if problems else "pass", problems=problems, unchecked=unchecked)
