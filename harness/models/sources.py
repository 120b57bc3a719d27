"""Model sources and input plans.

A model comes from a file (relative to the suite) or ``builtin:NAME`` (real architectures
made offline, see builtin_models). Its inputs are read from the graph; every dim that the
graph leaves open (symbolic, unnamed, -1) is resolved from the suite, and every integer
input gets a range that cannot index out of bounds, or a clear error asking for one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import InputError
from ..files import write_atomic_text
from ..paths import cache_dir
from ..suite import LoadedSuite, ModelSpec, suite_error
from .proto import INTEGER_RANGES, dtype_name, onnx_pb2

if TYPE_CHECKING:
    from onnx import ModelProto, TensorProto, ValueInfoProto

BUILTIN_PREFIX = "builtin:"
# Ops that pass integer ids through unchanged on their way to a Gather.
_PASS_THROUGH = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Expand"}


@dataclass(frozen=True)
class GraphInput:
    name: str
    dtype: str  # numpy dtype name
    dims: tuple[int | str | None, ...]  # int: fixed; str: symbolic name; None: unnamed/-1


@dataclass(frozen=True)
class ModelFile:
    path: Path
    size_bytes: int
    inputs: tuple[GraphInput, ...]
    outputs: tuple[str, ...]
    opset: int
    ir_version: int
    gather_bounds: dict[str, int]  # input name -> exclusive upper bound of safe integer values

    @cached_property
    def sha256(self) -> str:
        """Content hash (variant cache keys); on demand, since validating a suite never needs it."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def resolve_model_file(loaded: LoadedSuite, spec: ModelSpec, index: int) -> Path:
    """Path of the model's .onnx file, building a builtin model into the cache when needed."""
    location = spec.location
    if location.startswith(BUILTIN_PREFIX):
        return builtin_path(location[len(BUILTIN_PREFIX):], spec.seed, loaded, index)
    path = Path(location)
    path = path if path.is_absolute() else loaded.folder / path
    if path.is_dir():
        field = "source" if spec.source is not None else "path"
        raise suite_error(loaded, f"models[{index}].{field}", f"{location} is a folder; name the .onnx file in it")
    if not path.is_file():
        field = "source" if spec.source is not None else "path"
        raise suite_error(loaded, f"models[{index}].{field}",
                          f"model file {location} not found (looked in {path.parent}); paths are relative to the suite file")
    return path


def builtin_path(name: str, seed: int, loaded: LoadedSuite | None = None, index: int = 0) -> Path:
    """The cached file of a builtin model, built on first use. A cached file is only ever written
    for a known name, so finding it skips importing the builders (numpy, onnx: slow to start)."""
    target = cache_dir() / "models" / f"builtin-{name}-seed{seed}-v{__version__}.onnx"
    if name.replace("-", "").replace("_", "").isalnum() and target.is_file():
        return target
    from . import builtin as builtin_models

    if name not in builtin_models.NAMES:
        message = f"unknown builtin model '{name}'; available: {', '.join(builtin_models.NAMES)}"
        raise suite_error(loaded, f"models[{index}].source", message) if loaded else InputError(message)
    if not target.exists():
        import onnx

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            onnx.save(builtin_models.build(name, seed=seed), tmp)
            tmp.replace(target)
        except OSError as exc:
            message = (f"cannot write builtin model {name} to the harness cache {target.parent} "
                       f"({exc.strerror or exc}); point HARNESS_CACHE at a writable folder")
            raise suite_error(loaded, f"models[{index}].source", message) if loaded else InputError(message) from None
    return target


class ModelError(Exception):
    """A model file that cannot be used; the caller adds which suite field named it."""


def read_model(path: Path) -> ModelFile:
    """The graph's interface, from a small cache keyed by the file's path, size and mtime (a
    re-validate then skips protobuf altogether), else parsed; a file that is not ONNX raises
    ModelError."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{__version__}".encode()).hexdigest()
    cached = cache_dir() / "interfaces" / f"{key[:32]}.json"
    try:
        return _from_cache(path, json.loads(cached.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    model = _parse_model(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomic_text(cached, json.dumps(_to_cache(model)))
    except (OSError, InputError):
        pass  # a read-only cache only costs time
    return model


def _to_cache(model: ModelFile) -> dict[str, Any]:
    return {"size_bytes": model.size_bytes, "inputs": [[i.name, i.dtype, list(i.dims)] for i in model.inputs],
            "outputs": list(model.outputs), "opset": model.opset, "ir_version": model.ir_version,
            "gather_bounds": model.gather_bounds}


def _from_cache(path: Path, data: dict[str, Any]) -> ModelFile:
    return ModelFile(path=path, size_bytes=int(data["size_bytes"]),
                     inputs=tuple(GraphInput(str(n), str(d), tuple(dims)) for n, d, dims in data["inputs"]),
                     outputs=tuple(data["outputs"]), opset=int(data["opset"]), ir_version=int(data["ir_version"]),
                     gather_bounds={str(k): int(v) for k, v in data["gather_bounds"].items()})


def _parse_model(path: Path) -> ModelFile:
    """Parse the graph's interface. Reads the protobuf directly (see proto.py): validating a
    suite must not wait for ``import onnx``."""
    try:
        data = path.read_bytes()
        model = onnx_pb2().ModelProto()
        model.ParseFromString(data)
        if not model.graph.node and not model.graph.input:
            raise ValueError("the file holds no graph")
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning, ... on garbage
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} is not a valid ONNX model ({detail}); check that the file was fully "
                         "downloaded or exported") from None
    initializers = {i.name: i for i in model.graph.initializer}
    inputs = tuple(_graph_input(v) for v in model.graph.input if v.name not in initializers)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ModelFile(path=path, size_bytes=len(data), inputs=inputs,
                     outputs=tuple(o.name for o in model.graph.output), opset=opset, ir_version=model.ir_version,
                     gather_bounds=_gather_bounds(model, initializers))


def _graph_input(value: ValueInfoProto) -> GraphInput:
    tensor = value.type.tensor_type
    dtype = dtype_name(tensor.elem_type)
    dims: list[int | str | None] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param not in ("", "?"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return GraphInput(value.name, dtype, tuple(dims))


def _gather_bounds(model: ModelProto, initializers: dict[str, TensorProto]) -> dict[str, int]:
    """For integer inputs that end up as Gather indices into a table, the table's size."""
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    bounds: dict[str, int] = {}
    for value in model.graph.input:
        frontier, seen = [value.name], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node in consumers.get(name, []):
                if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name \
                        and node.input[0] in initializers:
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    size = int(initializers[node.input[0]].dims[axis])
                    bounds[value.name] = min(bounds.get(value.name, size), size)
                elif node.op_type in _PASS_THROUGH:
                    frontier.extend(node.output)
    return bounds


def plan_inputs(loaded: LoadedSuite, spec: ModelSpec, index: int, model: ModelFile,
                params: dict[str, Any]) -> list[dict[str, Any]]:
    """Concrete shape, dtype and fill rule for every graph input of one case."""
    unknown = sorted(set(spec.inputs) - {i.name for i in model.inputs})
    if unknown:
        names = ", ".join(i.name for i in model.inputs)
        raise suite_error(loaded, f"models[{index}].inputs.{unknown[0]}",
                          f"model '{spec.name}' has no input '{unknown[0]}'; its inputs are: {names}")
    data_path = _data_file(loaded, spec, index)
    data_keys = _npz_keys(data_path, loaded, index) if data_path else {}
    if data_path is not None:
        _check_data_covers(loaded, spec, index, model, data_path, data_keys)
    plan = []
    for graph_input in model.inputs:
        user = spec.inputs.get(graph_input.name)
        field = f"models[{index}].inputs.{graph_input.name}"
        shape = _resolve_shape(loaded, spec, index, graph_input, params, field)
        entry: dict[str, Any] = {"name": graph_input.name, "dtype": graph_input.dtype, "shape": shape}
        if user is not None and user.value is not None:
            entry.update(fill="value", value=user.value)
        elif graph_input.name in data_keys:
            entry.update(fill="data", data=str(data_path), key=graph_input.name)
            if tuple(data_keys[graph_input.name][1:]) != tuple(shape[1:]):
                raise suite_error(loaded, f"models[{index}].data",
                                  f"array '{graph_input.name}' in {data_path} has rows of shape "
                                  f"{list(data_keys[graph_input.name][1:])}, the model needs {shape[1:]}")
        elif user is not None and user.range is not None:
            _check_range(loaded, spec, graph_input, model, user.range, f"{field}.range")
            entry.update(fill="range", low=user.range[0], high=user.range[1])
        else:
            entry.update(_default_fill(loaded, spec, index, graph_input, model, field))
        plan.append(entry)
    return plan


def _resolve_shape(loaded: LoadedSuite, spec: ModelSpec, index: int, graph_input: GraphInput,
                   params: dict[str, Any], field: str) -> list[int]:
    user = spec.inputs.get(graph_input.name)
    if user is not None and user.shape is not None:
        if graph_input.dims and len(user.shape) != len(graph_input.dims):
            raise suite_error(loaded, f"{field}.shape", f"has {len(user.shape)} dims, input '{graph_input.name}' of "
                              f"model '{spec.name}' has {len(graph_input.dims)}")
        shape = []
        for position, (entry, graph_dim) in enumerate(zip(user.shape, graph_input.dims or user.shape)):
            value = _param_value(loaded, entry, params, f"{field}.shape[{position}]")
            if isinstance(graph_dim, int) and not isinstance(entry, str) and value != graph_dim:
                raise suite_error(loaded, f"{field}.shape[{position}]",
                                  f"{value} conflicts with the graph, which fixes this dim to {graph_dim}")
            shape.append(value)
        return shape
    shape = []
    for position, dim in enumerate(graph_input.dims):
        if isinstance(dim, int):
            shape.append(dim)
        elif isinstance(dim, str) and dim in spec.dims:
            shape.append(_param_value(loaded, spec.dims[dim], params, f"models[{index}].dims.{dim}"))
        elif isinstance(dim, str) and dim in params:
            shape.append(_positive(loaded, params[dim], f"matrix.{dim}"))
        elif position == 0 and "batch" in params:
            shape.append(int(params["batch"]))
        else:
            label = f"'{dim}'" if dim else "unnamed"
            fix = f"models[{index}].dims.{dim} or " if dim else ""
            raise suite_error(loaded, field, f"dim {position} ({label}) of input '{graph_input.name}' of model "
                              f"'{spec.name}' is unresolved; set {fix}{field}.shape"
                              + (f", or add matrix parameter '{dim}'" if dim else ""))
    return shape


def _param_value(loaded: LoadedSuite, entry: int | str, params: dict[str, Any], field: str) -> int:
    if isinstance(entry, str):
        if entry not in params:
            known = ", ".join(sorted(params)) or "none"
            raise suite_error(loaded, field, f"'{entry}' is not a matrix parameter (known: {known})")
        return _positive(loaded, params[entry], field)
    return _positive(loaded, entry, field)


def _positive(loaded: LoadedSuite, value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise suite_error(loaded, field, f"a dim must be a positive integer, got {value!r}")
    return value


def _default_fill(loaded: LoadedSuite, spec: ModelSpec, index: int, graph_input: GraphInput,
                  model: ModelFile, field: str) -> dict[str, Any]:
    if graph_input.dtype not in INTEGER_RANGES:  # floats, bool, strings
        return {"fill": "random"}
    if graph_input.name in model.gather_bounds:  # embedding ids: stay inside the table
        return {"fill": "range", "low": 0, "high": model.gather_bounds[graph_input.name]}
    lowered = graph_input.name.lower()
    if "mask" in lowered:
        return {"fill": "value", "value": 1}
    if "token_type" in lowered or "segment" in lowered:
        return {"fill": "value", "value": 0}
    if graph_input.dtype in ("int8", "uint8"):  # uint8 images, int8 data: the full range is safe
        low, high = INTEGER_RANGES[graph_input.dtype]
        return {"fill": "range", "low": low, "high": high + 1}
    raise suite_error(loaded, f"{field}.range",
                      f"integer input '{graph_input.name}' ({graph_input.dtype}) of model '{spec.name}' needs a range "
                      "of valid values (e.g. token ids [0, vocab_size)) or a fixed value; set range: [low, high] or value")


def _data_file(loaded: LoadedSuite, spec: ModelSpec, index: int) -> Path | None:
    if spec.data is None:
        return None
    path = Path(spec.data)
    path = path if path.is_absolute() else loaded.folder / path
    if not path.is_file():
        raise suite_error(loaded, f"models[{index}].data", f"data file {spec.data} not found (looked in {path.parent})")
    return path


def _npz_keys(path: Path, loaded: LoadedSuite, index: int) -> dict[str, tuple[int, ...]]:
    """Array name -> shape; arrays the harness cannot feed (strings, objects, no rows) are errors here."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise suite_error(loaded, f"models[{index}].data", f"{path.name} is not a readable .npz file "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise suite_error(loaded, f"models[{index}].data", f"array '{key}' in {path.name} holds {array.dtype} "
                              "values; model inputs are numbers or booleans")
        if array.ndim == 0 or array.shape[0] == 0:
            raise suite_error(loaded, f"models[{index}].data", f"array '{key}' in {path.name} has no rows "
                              f"(shape {list(array.shape)}); rows run along the first dimension")
    return {key: array.shape for key, array in arrays.items()}


def _check_data_covers(loaded: LoadedSuite, spec: ModelSpec, index: int, model: ModelFile, path: Path,
                       keys: dict[str, tuple[int, ...]]) -> None:
    """Real data must feed the model: never fall back to random values without a word."""
    names = [i.name for i in model.inputs]
    if not set(keys) & set(names):
        raise suite_error(loaded, f"models[{index}].data", f"{path.name} feeds no input of model '{spec.name}': its "
                          f"arrays are {', '.join(sorted(keys)) or 'none'}, the inputs are {', '.join(names)}")
    lacking = [n for n in names if n not in keys and (spec.inputs.get(n) is None
                                                      or (spec.inputs[n].value is None and spec.inputs[n].range is None))]
    if lacking:
        raise suite_error(loaded, f"models[{index}].data", f"{path.name} lacks arrays for input(s) {', '.join(lacking)} "
                          f"of model '{spec.name}'; add them, or give those inputs a value or range")


def _check_range(loaded: LoadedSuite, spec: ModelSpec, graph_input: GraphInput, model: ModelFile,
                 bounds: list[float], field: str) -> None:
    """An integer range must fit the input's type and, for embedding ids, the table it indexes."""
    if graph_input.dtype not in INTEGER_RANGES:
        return
    low, high = bounds
    smallest, largest = INTEGER_RANGES[graph_input.dtype]
    if low < smallest or high - 1 > largest:
        raise suite_error(loaded, field, f"[{low:g}, {high:g}) does not fit input '{graph_input.name}' "
                          f"({graph_input.dtype}: {smallest} to {largest})")
    table = model.gather_bounds.get(graph_input.name)
    if table is not None and (low < 0 or high > table):
        raise suite_error(loaded, field, f"[{low:g}, {high:g}) indexes outside the {table}-row table that input "
                          f"'{graph_input.name}' of model '{spec.name}' looks up; use a range within [0, {table})")
