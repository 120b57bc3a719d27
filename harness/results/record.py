"""The results record: the one definition of what a results file holds.

Standard library only, so that any process (the worker in a foreign runtime included) can
import it. Each part is a dataclass whose attribute names are the JSON keys; ``from_json``
checks types on the way in (a results file is user input: a report of a hand-edited or
truncated file must say which field is wrong, not crash) and ``to_json`` writes the same
shape back. Keys this version does not know are kept in ``extra`` and written back, so an
older harness can rewrite a newer file without dropping what it does not understand
(pyperf's ``_as_json``/``_json_load`` pairs are the model).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar, Union

SCHEMA_VERSION = 2
STATUSES = ("ok", "failed", "unavailable")
RUN_STATUSES = ("running", "complete", "interrupted", "aborted")

P = TypeVar("P", bound="Part")


class RecordError(ValueError):
    """A field of a results record has the wrong type or is missing; ``where`` is its dotted path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


@dataclass(kw_only=True)
class Part:
    """Base of every record part: typed JSON in and out, unknown keys carried along."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    NOT_SAVED: ClassVar[frozenset[str]] = frozenset({"extra"})
    WRITE_NULLS: ClassVar[bool] = False  # True: a None field is written as null (version 1 did so here)

    @classmethod
    def from_json(cls: type[P], data: Any, where: str = "") -> P:
        if not isinstance(data, dict):
            raise RecordError(where, f"expected an object, got {_kind(data)}")
        values: dict[str, Any] = {}
        for name, hint, required in _schema(cls):
            at = _at(where, name)
            if name not in data or data[name] is None:
                if required:
                    raise RecordError(at, "is missing")
                continue
            values[name] = _convert(data[name], hint, at)
        known = {name for name, _, _ in _schema(cls)}
        values["extra"] = {k: v for k, v in data.items() if k not in known and k != "extra"}
        part = cls(**values)
        part.check(where)
        return part

    def check(self, where: str) -> None:
        """Cross-field rules; subclasses raise RecordError."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object; a None field is left out (absent and null read the same) unless the
        part writes nulls, as ``measurement`` does so that every key of it is always there."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in self.NOT_SAVED and (value is not None or self.WRITE_NULLS):
                out[f.name] = _dump(value)
        out.update(self.extra)
        return out


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _dump(value: Any) -> Any:
    if isinstance(value, Part):
        return value.to_json()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


_SCHEMAS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def _schema(cls: type[Part]) -> tuple[tuple[str, Any, bool], ...]:
    """(field, type hint, required) per saved field of a part; computed once per class."""
    if cls not in _SCHEMAS:
        hints = typing.get_type_hints(cls)
        _SCHEMAS[cls] = tuple((f.name, hints[f.name], f.default is MISSING and f.default_factory is MISSING)
                              for f in fields(cls) if f.name not in cls.NOT_SAVED)
    return _SCHEMAS[cls]




def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    return f"an {'array' if isinstance(value, list) else 'object'}"


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(where, f"expected a number, got {_kind(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(where, f"expected a finite number, got {value}")
    return value


def _numbers(value: Any, where: str) -> list[float]:
    """Raw samples: up to 10^5 per case, so one pass of cheap checks, not one call per value."""
    if not isinstance(value, list):
        raise RecordError(where, f"expected an array of numbers, got {_kind(value)}")
    if not all(type(v) is float or type(v) is int for v in value) or not math.isfinite(math.fsum(value)):
        for i, v in enumerate(value):
            _number(v, f"{where}[{i}]")
        raise RecordError(where, "the sum of the values overflows")
    return value


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in typing.get_args(hint):
            return None
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _convert(value, options[0], where)
        errors = []
        for option in options:
            try:
                return _convert(value, option, where)
            except RecordError as exc:
                errors.append(exc.message)
        raise RecordError(where, errors[0])
    if hint is Any:
        return value
    if hint is float:
        return float(_number(value, where))
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(where, f"expected a whole number, got {_kind(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise RecordError(where, f"expected a string, got {_kind(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise RecordError(where, f"expected true or false, got {_kind(value)}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if item is float:
            return _numbers(value, where)
        if not isinstance(value, list):
            raise RecordError(where, f"expected an array, got {_kind(value)}")
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise RecordError(where, f"expected an object, got {_kind(value)}")
        return {str(k): _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, Part):
        return hint.from_json(value, where)
    raise TypeError(f"record field type {hint!r} is not supported")  # a bug in this module


# --- the parts of a case ---------------------------------------------------------------------


@dataclass(kw_only=True)
class Latency(Part):
    """``latency_ms``: statistics of the raw samples (see harness.stats.summarize)."""

    n: int
    mean: float
    std: float | None = None
    cv: float | None = None
    min: float
    p50: float
    p90: float
    p95: float | None = None
    p99: float
    p999: float | None = None
    max: float
    iqr: float | None = None
    mad: float | None = None
    mad_scaled: float | None = None
    cv_robust: float | None = None
    outliers: int | None = None
    median_ci_low: float | None = None
    median_ci_high: float | None = None
    median_ci_rel: float | None = None


@dataclass(kw_only=True)
class Throughput(Part):
    """Measured, not derived: completed inferences (x batch) over the loop's wall time."""

    inferences_per_s: float
    samples_per_s: float
    streams: int = 1
    batch: int = 1
    wall_s: float | None = None


@dataclass(kw_only=True)
class Memory(Part):
    """``memory_mb``: the worker's own peak RSS and RSS at the loop's milestones."""

    peak_rss: float | None = None
    rss_start: float | None = None
    rss_after_session: float | None = None
    rss_after_warmup: float | None = None
    rss_end: float | None = None
    arena: bool | None = None


@dataclass(kw_only=True)
class Timings(Part):
    """``timings_ms``: cold start, never averaged into latency."""

    session_create: float | None = None
    first_inference: float | None = None
    import_onnxruntime: float | None = None
    session_create_median: float | None = None
    first_inference_median: float | None = None
    worker_process: float | None = None


@dataclass(kw_only=True)
class Measurement(Part):
    """How the numbers were obtained, and what says they may not be trusted."""

    WRITE_NULLS: ClassVar[bool] = True
    iterations: int
    warmup_iterations: int | None = None
    duration_s: float | None = None
    stop_reason: str | list[str] | None = None
    minimums_met: bool = True
    other_processes_cpu: float | None = None
    precision: float | None = None
    precision_met: bool | None = None
    median_ci_reached: bool | None = None
    repeats: int = 1
    repeat_medians_ms: list[float] = field(default_factory=list)
    repeat_iterations: list[int] = field(default_factory=list)
    repeat_spread: dict[str, Any] | None = None
    p50_interval_ms: list[float] | None = None  # [low, high] of the process medians: what a rerun will see
    p50_interval_coverage: float | None = None  # share of reruns it aims to hold (0.9); None below 3 processes
    p50_interval_sigma: float | None = None  # the run's pooled process spread (robust sd, log) that sized it
    unstable: list[str] = field(default_factory=list)  # may not reproduce: process spread, busy machine, ...
    warnings: list[str] = field(default_factory=list)
    paired_with: str | None = None  # harness ab: the case measured in the same processes, blocks alternating


@dataclass(kw_only=True)
class Placement(Part):
    """Nodes per provider (or why that pass failed). ``unit`` is "graph nodes" (the graph as
    onnxruntime partitioned it, the same count on every EP) or, from onnxruntime before 1.23,
    "profiled kernels" (a fused subgraph counts as one). ``fell_back``: the nodes that did not
    land on the requested provider (the first 50), each {name, op_type, provider}."""

    unit: str | None = None
    nodes: dict[str, int] = field(default_factory=dict)
    total: int | None = None
    on_requested: int | None = None
    fraction_on_requested: float | None = None
    partial_fallback: bool = False
    fell_back: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass(kw_only=True)
class MeasuredOn(Part):
    """The machine that measured a case of a fleet run (harness run --cluster): its node name, Ray
    node id and full environment fingerprint. Absent in a local run: the run's environment is it."""

    node: str
    node_id: str | None = None
    hostname: str | None = None
    fingerprint: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Precision(Part):
    """Execution precision: the target's ``precision`` (None: the provider's default) and the one
    the runtime reports it used, with how that was found. ``effective`` is None where the runtime
    does not say; only OpenVINO does (its compiled model's INFERENCE_PRECISION_HINT)."""

    requested: str | None = None
    effective: str | None = None
    source: str | None = None
    device_capabilities: dict[str, str] = field(default_factory=dict)  # OpenVINO OPTIMIZATION_CAPABILITIES


@dataclass(kw_only=True)
class Profile(Part):
    """Where the time goes: onnxruntime's profiler in the untimed pass (never in the timed loop),
    mean kernel time per node over ``runs`` warm runs. Shares are of ``kernel_ms``."""

    runs: int
    kernel_ms: float  # the sum of every node's mean kernel time
    model_run_ms: float | None = None  # the profiled runs' mean wall time, profiler overhead included
    by_op_type: dict[str, dict[str, Any]] = field(default_factory=dict)  # op -> {ms, nodes, share}
    top_nodes: list[dict[str, Any]] = field(default_factory=list)  # {name, op_type, provider, ms, share}
    fallback_nodes: list[dict[str, Any]] = field(default_factory=list)  # nodes off the requested provider
    table: str | None = None  # every node, in a JSON file next to the results


@dataclass(kw_only=True)
class Accuracy(Part):
    """Outputs against the reference variant on the CPU provider, same inputs."""

    max_abs: float | None = None
    mean_abs: float | None = None
    rel_l2: float | None = None
    cosine: float | None = None
    top1: float | None = None
    top5: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    vs_cpu_same_variant: dict[str, Any] | None = None
    verdict: str | None = None  # pass | fail | error
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # thresholds that could not apply, and why
    error: str | None = None


@dataclass(kw_only=True)
class Runtime(Part):
    """What was asked for and what onnxruntime actually gave."""

    package: str | None = None
    providers_requested: list[str] = field(default_factory=list)
    providers_assigned: list[str] | None = None
    provider_options: dict[str, Any] = field(default_factory=dict)
    session_options: dict[str, Any] = field(default_factory=dict)
    python: str | None = None
    managed: bool | None = None
    onnxruntime_version: str | None = None
    build_info: str | None = None
    ep_versions: dict[str, Any] | None = None
    device: str | None = None
    available_providers: list[str] | None = None
    plugin: dict[str, Any] | None = None  # a plugin EP: package, library, the device it was bound to

    @property
    def provider(self) -> str | None:
        return self.providers_requested[0] if self.providers_requested else None


@dataclass(kw_only=True)
class ModelFile(Part):
    path: str
    size_bytes: int | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class DeviceResident(Part):
    """GPU targets: the same loop with inputs and outputs bound on the device (IO binding)."""

    device: str | None = None
    latency_ms: Latency | None = None
    throughput: dict[str, float] | None = None
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass(kw_only=True)
class ServingPoint(Part):
    """One MLPerf LoadGen run, in LoadGen's own figures and words."""

    scenario: str
    validity: str  # VALID | INVALID, LoadGen's verdict
    target_qps: float | None = None  # server: the offered rate
    expected_qps: float | None = None  # offline: the rate LoadGen sized its one query by
    scheduled_qps: float | None = None
    completed_qps: float | None = None
    samples_per_s: float | None = None  # completed queries x batch
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50 .. p99.9, min, mean, max
    query_count: int | None = None
    overlatency_count: int | None = None
    early_stopping_met: bool | None = None
    early_stopping: str | None = None
    reasons: list[str] = field(default_factory=list)  # why INVALID
    wall_s: float | None = None
    logs: str | None = None  # its folder of LoadGen logs, under Serving.logs_dir


@dataclass(kw_only=True)
class Serving(Part):
    """A serving scenario (server, offline) run by MLPerf LoadGen: the verdict, the headline
    figures, and every LoadGen run behind them (a peak search tries several rates)."""

    scenario: str
    validity: str  # of the headline run; a peak search is VALID when some rate was
    threads: int | None = None
    batch: int = 1
    latency_bound_ms: float | None = None  # server
    percentile: float | None = None  # server: the percentile the bound applies to
    target_qps: float | None = None  # server at a fixed rate
    peak_qps: float | None = None  # server with find_peak: the highest VALID rate tried
    peak_reason: str | None = None
    completed_qps: float | None = None
    closed_loop_qps: float | None = None  # offline: closed-loop streams, same threads and process, before+after
    latency_at_bound_ms: float | None = None  # the headline run's latency at the bound's percentile
    reasons: list[str] = field(default_factory=list)
    points: list[ServingPoint] = field(default_factory=list)
    capacity: list[ServingPoint] = field(default_factory=list)  # a peak search's offline runs
    confirm: ServingPoint | None = None  # a peak search's run at find_peak.confirm x the peak: should be INVALID
    settings: dict[str, Any] = field(default_factory=dict)
    loadgen_version: str | None = None
    logs_dir: str | None = None
    summary: str | None = None  # LoadGen's summary log of the headline run
    repeat_figures: list[float | None] | None = None  # per process: peak QPS, offline QPS or latency at the bound
    sut_errors: list[str] = field(default_factory=list)

    def check(self, where: str) -> None:
        if self.validity not in ("VALID", "INVALID"):
            raise RecordError(_at(where, "validity"), f"must be VALID or INVALID, got {self.validity!r}")


@dataclass(kw_only=True)
class CaseRecord(Part):
    """One case of a run: what ran, where, how it went, and every raw sample."""

    case_id: str
    model: str
    variant: str
    variant_kind: str | None = None
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    runtime: Runtime = field(default_factory=Runtime)
    price_per_hour: float | None = None
    model_file: ModelFile | None = None
    latency_ms: Latency | None = None
    throughput: Throughput | None = None
    memory_mb: Memory | None = None
    timings_ms: Timings | None = None
    measurement: Measurement | None = None
    accuracy: Accuracy | None = None
    placement: Placement | None = None
    profile: Profile | None = None
    precision: Precision | None = None
    measured_on: MeasuredOn | None = None
    gpu_memory_mb: dict[str, float | None] | None = None
    device_resident: DeviceResident | None = None
    serving: Serving | None = None
    notes: list[str] = field(default_factory=list)  # what must travel with the numbers, computed once
    samples_ms: list[float] = field(default_factory=list)

    def check(self, where: str) -> None:
        if self.status not in STATUSES:
            raise RecordError(_at(where, "status"), f"must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.status == "ok":
            for name in ("latency_ms", "throughput", "measurement"):
                if getattr(self, name) is None:
                    raise RecordError(_at(where, name), "is missing for an ok case")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if not self.samples_ms:
            out.pop("samples_ms", None)  # failed and unavailable cases carry no measurement keys at all
        return out

    @property
    def batch(self) -> int:
        return int(self.params.get("batch", 1) or 1)

    @property
    def streams(self) -> int:
        return int(self.params.get("streams", 1) or 1)

    @property
    def scenario(self) -> str:
        return self.serving.scenario if self.serving else str(self.params.get("scenario", "single-stream"))


# --- the run ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class SuiteInfo(Part):
    name: str
    path: str | None = None
    sha256: str | None = None
    description: str | None = None


@dataclass(kw_only=True)
class Environment(Part):
    """The machine fingerprint; many more keys (cpu flags, governor, ORT_* variables) ride in extra."""

    hostname: str | None = None
    fingerprint: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    os: str | None = None
    python: str | None = None
    harness_version: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """By JSON key, typed or not (report tables show arbitrary environment keys)."""
        value = getattr(self, key, None) if key in _ENVIRONMENT_FIELDS else self.extra.get(key)
        return default if value is None else value


_ENVIRONMENT_FIELDS = frozenset(f.name for f in fields(Environment))


@dataclass(kw_only=True)
class Provenance(Part):
    """What the run measured the code of: a label given to ``harness run`` and what CI said."""

    label: str | None = None
    commit: str | None = None
    branch: str | None = None
    ci: str | None = None  # which CI's variables the commit and branch came from

    @property
    def short(self) -> str:
        """The run's name on a history axis: the label, else the short commit, else ''."""
        return self.label or (self.commit[:8] if self.commit else "")


@dataclass(kw_only=True)
class Run(Part):
    """A results file: one run of one suite on one machine."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    started_at: str | None = None
    finished_at: str | None = None
    status: str = "running"
    suite: SuiteInfo
    environment: Environment = field(default_factory=Environment)
    provenance: Provenance | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cases: list[CaseRecord] = field(default_factory=list)
    source: str | None = field(default=None, compare=False)  # the file it was read from; never saved
    NOT_SAVED: ClassVar[frozenset[str]] = frozenset({"extra", "source"})

    def check(self, where: str) -> None:
        if self.status not in RUN_STATUSES:
            raise RecordError(_at(where, "status"), f"must be one of {', '.join(RUN_STATUSES)}, got {self.status!r}")

    def header_json(self) -> dict[str, Any]:
        """Everything but the cases and the end-of-run fields: the first line of a results file."""
        out = self.to_json()
        for key in ("cases", "finished_at", "status"):
            out.pop(key, None)
        return out
