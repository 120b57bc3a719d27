"""The suite file format: a pydantic schema, and YAML loading whose errors point at a line.

Every model here forbids unknown keys, so a typo such as ``warmpu:`` is an error rather
than a silently ignored setting that makes two runs measure different things.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InputError
from .worker.protocol import SCENARIOS

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
AXES = ("model", "variant", "target")
MAX_THREADS = 1024
Scalar = int | float | str | bool


class Strict(BaseModel):
    # strict: "20" or true where a number is expected is an error, not a silent conversion;
    # no inf/nan: `max_s: .inf` would validate and then break the run (JSON cannot hold it).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False)


class InputSpec(Strict):
    """How to feed one graph input. Anything left out is read from the graph."""

    shape: list[int | str] | None = Field(
        None, description="Concrete shape; a string entry names a matrix parameter, e.g. [batch, 3, 224, 224]."
    )
    range: list[float] | None = Field(
        None, min_length=2, max_length=2,
        description="[low, high): integers are drawn in it (token ids, class indices); floats uniformly.")
    value: float | int | bool | None = Field(None, description="Fill the whole input with this value (e.g. an attention mask of 1).")

    @model_validator(mode="after")
    def _one_way_to_fill(self) -> InputSpec:
        if self.range is not None and self.value is not None:
            raise ValueError("give either 'range' or 'value', not both")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range low must be below high, got {list(self.range)}")
        return self


class ModelSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    source: str | None = Field(None, description="builtin:NAME, or a path to an .onnx file relative to the suite file.")
    path: str | None = Field(None, description="Path to an .onnx file relative to the suite file (same as source).")
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    dims: dict[str, int | str] = Field(
        default_factory=dict,
        description="Symbolic graph dims (e.g. p2o.DynamicDimension.0) set to a number or a matrix parameter name.",
    )
    data: str | None = Field(None, description=".npz file of real inputs keyed by input name (rows along dim 0).")
    seed: int = Field(0, description="Seed for builtin weights and generated inputs.")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.source is None) == (self.path is None):
            raise ValueError("give exactly one of 'source' (builtin:NAME or a file) or 'path'")
        return self

    @property
    def location(self) -> str:
        return self.source if self.source is not None else self.path  # type: ignore[return-value]


class CalibrationSpec(Strict):
    samples: int = Field(32, ge=1)
    seed: int = 0
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    data: str | None = Field(None, description=".npz of real calibration inputs, relative to the suite file.")


class VariantSpec(Strict):
    """A precision or quantization variant, built from the model once and cached."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["fp32", "fp16", "int8-dynamic", "int8-static", "file"]
    path: str | None = Field(None, description="kind: file - a variant made elsewhere, relative to the suite file; "
                             "'{model}' is replaced by the model name.")
    keep_io_types: bool = Field(True, description="fp16: keep float32 inputs and outputs.")
    op_block_list: list[str] = Field(default_factory=list, description="fp16: op types left in float32.")
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: bool = False
    reduce_range: bool = False
    format: Literal["qdq", "qoperator"] = Field("qdq", description="int8-static: QDQ (default) or QOperator.")
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    preprocess: bool = Field(True, description="int8: run quant_pre_process (shape inference, fusion) first.")

    @model_validator(mode="after")
    def _path_for_file(self) -> VariantSpec:
        if self.kind == "file" and not self.path:
            raise ValueError("kind 'file' needs 'path'")
        if self.kind != "file" and self.path:
            raise ValueError(f"'path' is only for kind 'file', not '{self.kind}'")
        return self


class RuntimeSpec(Strict):
    """Which Python environment (and so which onnxruntime build) runs a target."""

    package: str | None = Field(None, description="onnxruntime, onnxruntime-openvino, onnxruntime-gpu, ...")
    version: str | None = Field(None, description="Pin, e.g. 1.24.1; default: the newest the index offers.")
    python: str | None = Field(None, description="Use this interpreter as is (it must hold numpy and onnxruntime).")

    @model_validator(mode="after")
    def _python_alone(self) -> RuntimeSpec:
        if self.python and (self.package or self.version):
            raise ValueError("'python' names a ready interpreter; do not combine it with 'package' or 'version'")
        return self


class SessionSpec(Strict):
    # A ceiling no machine needs: 100,000 threads once took a 24 GB machine to 16.5 GB.
    intra_op_num_threads: int | None = Field(None, ge=0, le=MAX_THREADS)
    inter_op_num_threads: int | None = Field(None, ge=0, le=MAX_THREADS)
    graph_optimization_level: Literal["disabled", "basic", "extended", "layout", "all"] | None = None
    execution_mode: Literal["sequential", "parallel"] | None = None
    enable_cpu_mem_arena: bool | None = None
    enable_mem_pattern: bool | None = None
    allow_spinning: bool | None = Field(None, description="Intra/inter-op thread spinning (ORT default: on).")
    affinity: str | None = Field(None, description="session.intra_op_thread_affinities, e.g. '1;2'.")
    config: dict[str, str] = Field(default_factory=dict, description="Extra session config entries, e.g. session.disable_cpu_ep_fallback: '1'.")
    log_severity_level: int | None = Field(None, ge=0, le=4)

    def merged(self, override: SessionSpec | None) -> SessionSpec:
        if override is None:
            return self
        data = self.model_dump(exclude_unset=True)
        extra = override.model_dump(exclude_unset=True)
        config = {**data.get("config", {}), **extra.pop("config", {})}
        return SessionSpec(**{**data, **extra, "config": config})


class PluginSpec(Strict):
    """An execution provider shipped as a library and registered at run time (onnxruntime 1.23+)."""

    package: str | None = Field(None, description="The PyPI package holding the EP library, e.g. "
                                "onnxruntime-ep-openvino; installed into the target's runtime.")
    version: str | None = Field(None, description="Pin the plugin package; default: the newest.")
    module: str | None = Field(None, description="Its Python module (default: the package name with _ for -), "
                               "whose get_library_path() gives the library.")
    library: str | None = Field(None, description="A library file to register instead of a package.")
    device: Literal["cpu", "gpu", "npu"] | None = Field(None, description="Which of the plugin's devices to use; "
                                                        "default: the first it offers.")

    @model_validator(mode="before")
    @classmethod
    def _package_alone(cls, data: Any) -> Any:
        return {"package": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> PluginSpec:
        if bool(self.package) == bool(self.library):
            raise ValueError("give either 'package' (a pip package) or 'library' (a file), exactly one")
        return self


class TargetSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    provider: str | None = Field(None, description="Execution provider, by its onnxruntime name or a target name (cpu, cuda, openvino, ...); default from the target name.")
    options: dict[str, Any] = Field(default_factory=dict, description="Provider options, merged over the defaults.")
    runtime: RuntimeSpec | None = None
    session: SessionSpec | None = None
    price_per_hour: float | None = Field(None, ge=0, description="USD per hour, for the report's cost view.")
    plugin: PluginSpec | None = Field(None, description="Run a plugin EP (a string is its package name).")
    precision: Literal["f32", "bf16", "f16"] | None = Field(
        None, description="Ask the provider to compute at this precision (OpenVINO: its inference precision "
        "hint; TensorRT: fp16/bf16 flags; CUDA f32: no TF32); refused where the provider has no such control. "
        "Recorded with the precision the runtime reports it used.")

    @field_validator("options")
    @classmethod
    def _scalar_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        """onnxruntime takes provider options as strings; a mapping or list would be dropped or mangled."""
        for key, option in value.items():
            if not isinstance(option, (str, int, float, bool)):
                kind = "a mapping" if isinstance(option, dict) else "a list" if isinstance(option, list) else "null"
                raise ValueError(f"option {key!r} is {kind}; a provider option is a string, number or boolean "
                                 "(onnxruntime passes each one as a string)")
            if isinstance(option, float) and not math.isfinite(option):
                raise ValueError(f"option {key!r} must be a finite number, got {option}")
        return value


class MeasureSpec(Strict):
    # Per worker process. Five short processes beat one long one: a process's speed is partly
    # decided at its start, so only several show what a rerun will see (the interval comes
    # from their medians).
    warmup_s: float = Field(0.2, ge=0)
    warmup_iterations: int = Field(10, ge=0)
    min_iterations: int = Field(20, ge=1)
    min_s: float = Field(0.5, ge=0)
    max_s: float = Field(30.0, gt=0)
    precision: float | None = Field(None, gt=0, lt=1, description="Stop once the 95% CI of the median is within +-precision.")
    repeats: int = Field(5, ge=1, description="Fresh worker processes per case (warm-up, minimums and maximum "
                         "apply to each); 3 or more give an interval a rerun will respect.")
    interleave: int = Field(8, ge=0, description="Cases whose worker processes run interleaved, in rounds of "
                            "shuffled order, so that a slow minute or a process's speed mode lands on many cases a "
                            "little instead of on one; 1 runs one case at a time, 0 the whole run at once (a "
                            "cancelled run then keeps no case).")
    order_seed: int | None = Field(None, description="Seed of the shuffled order (recorded in the results); "
                                   "default: a new one per run.")
    timeout_s: float = Field(600.0, gt=0, description="Per worker process; a case past it fails.")
    accuracy_samples: int = Field(4, ge=1, description="Input sets compared with the reference.")
    # Identical processes on a shared 2-vCPU VM differ by 5-30% (speed modes); the interval carries that.
    unstable_spread: float = Field(0.25, gt=0, description="Flag a case whose worker processes' medians are "
                                   "further apart than this (relative range): a rerun may differ.")
    placement: bool = Field(True, description="Count nodes per provider, and time each node (the per-operator "
                            "profile), in an untimed profiling pass.")
    memory_limit_mb: float | None = Field(None, gt=0, description="Kill a worker whose RSS passes this (the case "
                                          "fails: out of memory); default: 80% of this machine's memory.")

    @model_validator(mode="after")
    def _bounds(self) -> MeasureSpec:
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) is below min_s ({self.min_s})")
        return self


class FindPeakSpec(Strict):
    """server: search the highest target QPS whose LoadGen run is VALID."""

    latency_ms: float | None = Field(None, gt=0, description="Latency bound; default: serving.latency_ms.")
    percentile: float | None = Field(None, gt=0, lt=100, description="Percentile the bound applies to; default: "
                                     "serving.percentile.")
    max_runs: int = Field(8, ge=2, le=30, description="Server runs at most (after one offline run that bounds "
                          "the capacity).")
    tolerance: float = Field(0.05, gt=0, lt=1, description="Stop once the best VALID and the lowest INVALID rate "
                             "are this close (relative).")
    confirm: float | None = Field(1.3, gt=1, description="After the search, a server run at this multiple of the "
                                  "peak, in the same process: it should be INVALID. A VALID one means a noisy run "
                                  "stopped the search too low: it climbs from there (at most twice); if the last is "
                                  "still VALID the case says the peak is understated. null: skip it.")


class ServingSpec(Strict):
    """LoadGen settings for the server and offline scenarios (matrix parameter ``scenario``).

    Defaults are short for a small machine. A submission-grade MLPerf run needs far more: at least
    600 s per run and LoadGen's own query counts (270,336 for server); set min_duration_s and
    min_queries accordingly."""

    target_qps: float | None = Field(None, gt=0, description="server: queries/s offered, when the case has no "
                                     "'qps' matrix parameter.")
    latency_ms: float = Field(100.0, gt=0, description="server: the latency bound (from each query's scheduled "
                              "arrival, so queueing counts).")
    percentile: float = Field(99.0, gt=0, lt=100, description="server: the percentile the bound applies to.")
    find_peak: FindPeakSpec | None = Field(None, description="server cases without 'qps' search their peak QPS.")
    threads: int | None = Field(None, ge=1, le=MAX_THREADS, description="Threads answering queries, sharing one "
                                "session; default: this machine's CPU count.")
    min_duration_s: float = Field(2.0, gt=0, description="Per LoadGen run (MLPerf requires 600).")
    max_duration_s: float = Field(60.0, gt=0, description="Per LoadGen run: a cap, so a low QPS cannot run for hours.")
    min_queries: int = Field(500, ge=1, description="Per LoadGen run. Early stopping at p99 needs about 460 "
                             "queries even when none is over the bound.")
    seed: int = Field(0, ge=0, description="LoadGen's schedule, QSL and sample-index seeds.")
    repeats: int = Field(1, ge=1, description="Fresh worker processes per serving case, each a full LoadGen "
                         "test (a peak search included); the record shows the process with the median figure "
                         "and keeps every figure. 1 is MLPerf's way: one run, one verdict.")

    @model_validator(mode="after")
    def _one_way_to_pick_qps(self) -> ServingSpec:
        if self.target_qps is not None and self.find_peak is not None:
            raise ValueError("give either 'target_qps' (a fixed rate) or 'find_peak' (search it), not both")
        if self.max_duration_s < self.min_duration_s:
            raise ValueError(f"max_duration_s ({self.max_duration_s}) is below min_duration_s ({self.min_duration_s})")
        return self


class AccuracySpec(Strict):
    min_cosine: float | None = Field(None, ge=-1, le=1)
    min_top1: float | None = Field(None, ge=0, le=1)
    max_abs: float | None = Field(None, ge=0)


class FleetSpec(Strict):
    """How a run on a Ray cluster (harness run --cluster) treats a node lost mid-case."""

    retry_lost: bool = Field(False, description="Run a case whose node died mid-case once more, on another "
                             "node that offers its target; otherwise it fails: node lost.")


class Suite(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    models: list[ModelSpec] = Field(min_length=1)
    variants: list[VariantSpec] = Field(default_factory=lambda: [VariantSpec(name="fp32", kind="fp32")])
    targets: list[TargetSpec] = Field(default_factory=lambda: [TargetSpec(name="cpu")])
    matrix: dict[str, list[Scalar]] = Field(default_factory=dict, description="Parameters; batch and streams are known to the runner.")
    include: list[dict[str, Scalar]] = Field(default_factory=list)
    exclude: list[dict[str, Scalar]] = Field(default_factory=list)
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    session: SessionSpec = Field(default_factory=SessionSpec)
    accuracy: AccuracySpec = Field(default_factory=AccuracySpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    fleet: FleetSpec = Field(default_factory=FleetSpec)
    reference: str | None = Field(None, description="Reference variant for accuracy; default: the fp32 one.")

    @field_validator("variants", mode="before")
    @classmethod
    def _variant_shorthand(cls, value: Any) -> Any:
        return [{"name": v, "kind": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    @field_validator("targets", mode="before")
    @classmethod
    def _target_shorthand(cls, value: Any) -> Any:
        return [{"name": t} if isinstance(t, str) else t for t in value] if isinstance(value, list) else value

    @field_validator("matrix")
    @classmethod
    def _matrix_values(cls, value: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for key, values in value.items():
            if key in AXES:
                raise ValueError(f"'{key}' is an axis of its own (models/variants/targets), not a matrix parameter")
            if not values:
                raise ValueError(f"matrix.{key} is empty")
            if len(set(map(str, values))) != len(values):
                raise ValueError(f"matrix.{key} repeats a value")
            if key in ("batch", "streams") and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
                raise ValueError(f"matrix.{key} must be positive integers")
            if key == "scenario" and not all(v in SCENARIOS for v in values):
                wrong = next(v for v in values if v not in SCENARIOS)
                raise ValueError(f"matrix.scenario: {wrong!r} is not a scenario; known: {', '.join(SCENARIOS)}")
            if key == "qps" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                                        and math.isfinite(v) for v in values):
                raise ValueError("matrix.qps must be positive numbers (queries per second)")
        return value

    @model_validator(mode="after")
    def _names_unique_and_rules_known(self) -> Suite:
        for axis, items in (("models", self.models), ("variants", self.variants), ("targets", self.targets)):
            names = [i.name for i in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{axis}: duplicate name {dupes[0]!r}")
        known = set(AXES) | set(self.matrix)
        for rule_kind, rules in (("include", self.include), ("exclude", self.exclude)):
            for rule in rules:
                unknown = sorted(set(rule) - known)
                if unknown:
                    raise ValueError(f"{rule_kind} rule names unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
        scenarios = {*self.matrix.get("scenario", []), *(r["scenario"] for r in self.include if "scenario" in r)}
        if (not scenarios <= set(SCENARIOS)):
            wrong = sorted(map(str, scenarios - set(SCENARIOS)))[0]
            raise ValueError(f"include: {wrong!r} is not a scenario; known: {', '.join(SCENARIOS)}")
        if "server" in scenarios and "qps" not in self.matrix and self.serving.target_qps is None \
                and self.serving.find_peak is None:
            raise ValueError("scenario 'server' needs a rate: a 'qps' matrix parameter, serving.target_qps, or "
                             "serving.find_peak to search the peak")
        if self.reference is not None and self.reference not in {v.name for v in self.variants}:
            raise ValueError(f"reference {self.reference!r} is not a declared variant")
        return self

    def reference_variant(self) -> VariantSpec | None:
        if self.reference:
            return next(v for v in self.variants if v.name == self.reference)
        return next((v for v in self.variants if v.kind == "fp32"), None)


# section key -> its model, for "did you mean" within the section an unknown key sits in
_SECTIONS: dict[str, type[BaseModel]] = dict(
    measure=MeasureSpec, session=SessionSpec, accuracy=AccuracySpec, models=ModelSpec, variants=VariantSpec,
    targets=TargetSpec, calibration=CalibrationSpec, runtime=RuntimeSpec, serving=ServingSpec,
    find_peak=FindPeakSpec)


class LoadedSuite(BaseModel):
    """A validated suite plus where it came from (paths in it are relative to its folder)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    suite: Suite
    path: Path
    sha256: str

    @property
    def folder(self) -> Path:
        return self.path.parent


# --- loading -------------------------------------------------------------------------


def load_suite(path: str | Path) -> LoadedSuite:
    """Read and validate a suite file; any problem raises InputError with file:line: field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: suite file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read suite file: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(root, path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{where}: YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a suite is a YAML mapping with at least 'name' and 'models'")
    lines = _line_index(root, path)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise InputError(_describe_validation_error(exc, data, lines, path)) from None
    return LoadedSuite(suite=suite, path=path.resolve(), sha256=hashlib.sha256(text.encode()).hexdigest())


MAX_NODES = 100_000  # values a suite may expand to; real suites have hundreds


def _check_expansion(root: yaml.Node | None, path: Path) -> None:
    """Refuse a YAML alias bomb before expanding it: aliases share nodes, so the expanded size
    is counted over the node graph with memoisation (linear in the file, not in the expansion)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a cycle counts once (SafeLoader refuses recursive structures anyway)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        sizes[id(node)] = min(total, MAX_NODES + 1)
        return sizes[id(node)]

    if root is not None and size(root) > MAX_NODES:
        raise InputError(f"{path}: YAML aliases expand to more than {MAX_NODES:,} values; write the suite out "
                         "without nested aliases")


def suite_error(loaded: LoadedSuite, field: str, message: str) -> InputError:
    """An InputError for a problem found after validation (missing model file, unresolved dim)."""
    return InputError(f"{_display(loaded.path)}: {field}: {message}")


def json_schema() -> dict[str, Any]:
    schema = Suite.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "onnx-harness suite"
    return schema


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _line_index(node: yaml.Node | None, path: Path) -> dict[tuple, int]:
    """Map each data path (keys and list indices) to its 1-based line; reject duplicate keys."""
    index: dict[tuple, int] = {}

    def walk(n: yaml.Node, at: tuple) -> None:
        index[at] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in n.value:
                key = key_node.value
                if key in seen:
                    raise InputError(f"{path}:{key_node.start_mark.line + 1}: {_dotted(at + (key,))}: key given twice")
                seen.add(key)
                index[at + (key,)] = key_node.start_mark.line + 1
                walk(value_node, at + (key,))
                index[at + (key,)] = key_node.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, at + (i,))

    if node is not None:
        walk(node, ())
    return index


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _data_path(loc: tuple, data: Any) -> tuple[tuple, bool]:
    """Drop pydantic's union/validator tags from loc; say whether the full path exists in data."""
    kept: list = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            kept.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
        elif isinstance(part, str) and i == len(loc) - 1 and isinstance(node, dict):
            kept.append(part)  # a missing field: name it, point at its parent
            return tuple(kept), False
    return tuple(kept), True


def _section_fields(parent: tuple) -> list[str]:
    """Field names of the section an unknown key sits in (measure, targets[i].session, ...)."""
    keys = [p for p in parent if isinstance(p, str)]
    if len(keys) >= 2 and keys[-2] == "inputs":
        return list(InputSpec.model_fields)
    model = _SECTIONS.get(keys[-1]) if keys else Suite
    return list(model.model_fields) if model else []


def _field_names() -> list[str]:
    names: set[str] = set()
    for model in (Suite, ModelSpec, InputSpec, VariantSpec, CalibrationSpec, TargetSpec, RuntimeSpec, SessionSpec, MeasureSpec, AccuracySpec, ServingSpec, FindPeakSpec):
        names.update(model.model_fields)
    return sorted(names)


def _describe_validation_error(exc: ValidationError, data: Any, lines: dict[tuple, int], path: Path) -> str:
    errors = exc.errors()
    first = errors[0]
    loc, exists = _data_path(tuple(first["loc"]), data)
    line = lines.get(loc) if exists else None
    probe = loc
    while line is None and probe:
        probe = probe[:-1]
        line = lines.get(probe)
    where = f"{path}:{line}" if line else str(path)
    kind = first["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        section = _section_fields(loc[:-1])
        close = (difflib.get_close_matches(key, section, n=1, cutoff=0.6)
                 or difflib.get_close_matches(key, _field_names(), n=1, cutoff=0.6))
        hint = f" (did you mean '{close[0]}'?)" if close else "; remove it or see 'harness schema'"
        message = f"unknown field '{key}'{hint}"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "literal_error":
        message = f"{first['msg'].replace('Input should be', 'must be')}, got {first.get('input')!r}"
    elif kind == "string_pattern_mismatch":
        message = (f"{first.get('input')!r} is not a valid name: use letters, digits and _ . + -, "
                   "starting with a letter or digit")
    elif kind.endswith("_type") or kind in ("finite_number", "int_from_float"):
        message = f"{first['msg'].replace('Input should be', 'must be')}, got {first.get('input')!r}"
    else:
        message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {_dotted(loc)}: {message}{more}"
