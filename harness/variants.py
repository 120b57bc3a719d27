"""Precision and quantization variants, built once from the base model and cached.

The cache key is the hash of the model bytes, the variant spec (its name aside) and the
versions of the tools that build it, so a changed model, setting or toolchain rebuilds,
and nothing else does. Reference outputs for accuracy are computed here too: the
reference variant (fp32) on the CPU provider of the harness's own onnxruntime, on the
same seeded inputs the case will see.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from . import __version__
from .models.inputs import make_feeds
from .models.sources import ModelFile
from .paths import cache_dir
from .run.signals import reraise_interrupt
from .suite import LoadedSuite, VariantSpec
from .worker.protocol import CPU

MAX_IR_VERSION = 10  # onnxruntime-openvino 1.24 refuses IR > 13; 10 carries every opset we emit


class VariantError(Exception):
    """A variant that cannot be built; fails only the cases that use it."""


def cache_key(model_sha256: str, spec: VariantSpec) -> str:
    import onnxruntime

    material = {"model": model_sha256, "spec": spec.model_dump(exclude={"name"}), "onnx": onnx.__version__,
                "onnxruntime": onnxruntime.__version__, "harness": __version__}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


class VariantStore:
    """Variant files and reference outputs for one run; builds lazily, reuses the cache."""

    def __init__(self, loaded: LoadedSuite, model_files: dict[str, ModelFile], say: Callable[[str], None],
                 scratch: Path) -> None:
        """``scratch``: a folder the caller owns and removes (reference outputs live there)."""
        self.loaded = loaded
        self.model_files = model_files
        self.say = say
        self.paths: dict[tuple[str, str], Path | VariantError] = {}
        self.references: dict[str, dict] = {}
        self.scratch = scratch

    def path(self, case: Any) -> Path:
        key = (case.model.name, case.variant.name)
        if key not in self.paths:
            try:
                self.paths[key] = self._build(case)
            except VariantError as exc:
                self.paths[key] = exc
            except Exception as exc:  # quantizers raise anything from KeyError to RuntimeError
                reraise_interrupt(exc)
                self.paths[key] = VariantError(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        found = self.paths[key]
        if isinstance(found, VariantError):
            raise found
        return found

    def _build(self, case: Any) -> Path:
        spec: VariantSpec = case.variant
        base = self.model_files[case.model.name]
        if spec.kind == "fp32":
            return base.path
        if spec.kind == "file":
            raw = Path(spec.path.replace("{model}", case.model.name))  # type: ignore[union-attr]
            path = raw if raw.is_absolute() else self.loaded.folder / raw
            if not path.is_file():
                raise VariantError(f"file {raw} not found (looked in {path.parent})")
            return path
        key = cache_key(base.sha256, spec)
        target = cache_dir() / "variants" / f"{case.model.name}-{spec.name}-{key}.onnx"
        digest = target.with_name(target.name + ".sha256")  # written after the build: the file is whole
        if target.exists():
            if digest.exists() and digest.read_text().strip() == _sha256(target):
                self.say(f"variant {case.model.name}/{spec.name}: reusing cached build {target.name}")
                return target
            self.say(f"variant {case.model.name}/{spec.name}: cached build {target} is damaged (its content does "
                     "not match the hash recorded when it was built); rebuilding")
        self.say(f"variant {case.model.name}/{spec.name}: building {spec.kind} (cached afterwards)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.stem + ".partial.onnx")
            BUILDERS[spec.kind](base.path, tmp, spec, case, self.loaded)
            _clamp_ir_version(tmp)
            tmp.replace(target)
            digest.write_text(_sha256(target) + "\n")
        except OSError as exc:
            raise VariantError(f"cannot write the variant cache {target.parent} ({exc.strerror or exc}); point "
                               "HARNESS_CACHE at a writable folder") from None
        return target

    def reference(self, case: Any, workdir: Path) -> dict[str, str] | None:
        """Inputs and reference outputs for the accuracy check, or None for the reference case itself.

        ``outputs``: the reference variant on the CPU provider (the accuracy cost of variant
        and target together). ``cpu_outputs``, for other providers running a non-reference
        variant: the same variant on the CPU provider (what the execution provider alone changes).
        """
        reference = self.loaded.suite.reference_variant()
        if reference is None or (case.variant.name == reference.name and case.target.provider == CPU):
            return None
        found = {"inputs": "", "outputs": self._outputs(case, reference)}
        found["inputs"] = str(Path(found["outputs"]).parent / "inputs.npz")
        if case.target.provider != CPU and case.variant.name != reference.name:
            found["cpu_outputs"] = self._outputs(case, case.variant)
        return found

    def _outputs(self, case: Any, variant: VariantSpec) -> str:
        """Outputs of ``variant`` of the case's model on the CPU provider, for the case's inputs (cached)."""
        inputs_key = json.dumps([case.model.name, case.inputs], sort_keys=True, default=str)
        folder = self.scratch / hashlib.sha256(inputs_key.encode()).hexdigest()[:12]
        target = folder / f"{variant.name}.npz"
        if str(target) not in self.references:
            model = self.path(type("Ref", (), {"model": case.model, "variant": variant, "inputs": case.inputs}))
            folder.mkdir(parents=True, exist_ok=True)
            reference_outputs(model, case.inputs, case.model.seed, self.loaded.suite.measure.accuracy_samples,
                              folder, target)
            self.references[str(target)] = {}
        return str(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reference_outputs(model_path: Path, plan: list[dict], seed: int, samples: int, folder: Path, target: Path) -> None:
    """Run a model on the CPU provider over the accuracy inputs (written once to folder/inputs.npz)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=[CPU])
    names = [o.name for o in session.get_outputs()]
    inputs, outputs = {}, {}
    for sample in range(samples):
        feeds = make_feeds(plan, seed, sample=1000 + sample)  # not the timing input: accuracy on fresh data
        inputs.update({f"{sample}/{k}": v for k, v in feeds.items()})
        outputs.update({f"{sample}/{n}": v for n, v in zip(names, session.run(None, feeds))})
    if not (folder / "inputs.npz").exists():
        np.savez(folder / "inputs.npz", **inputs)  # type: ignore[arg-type]  # numpy stub: arrays as keywords
    np.savez(target, **outputs)


def _clamp_ir_version(path: Path) -> None:
    model = onnx.load(str(path), load_external_data=False)
    if model.ir_version > MAX_IR_VERSION:
        model.ir_version = MAX_IR_VERSION
        onnx.save(model, str(path))


def _fp16(source: Path, target: Path, spec: VariantSpec, case: Any, loaded: LoadedSuite) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    converted = convert_float_to_float16(model, keep_io_types=spec.keep_io_types,
                                         op_block_list=spec.op_block_list or None, disable_shape_infer=False)
    onnx.save(converted, str(target))


def _preprocessed(source: Path, spec: VariantSpec, folder: Path) -> Path:
    if not spec.preprocess:
        return source
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = folder / "preprocessed.onnx"
    try:
        quant_pre_process(str(source), str(out), skip_symbolic_shape=False)
    except Exception:
        quant_pre_process(str(source), str(out), skip_symbolic_shape=True)
    return out


def _int8_dynamic(source: Path, target: Path, spec: VariantSpec, case: Any, loaded: LoadedSuite) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        quantize_dynamic(str(_preprocessed(source, spec, Path(folder))), str(target),
                         weight_type=QuantType.QInt8 if spec.weight_type == "int8" else QuantType.QUInt8,
                         per_channel=spec.per_channel, reduce_range=spec.reduce_range)


def _int8_static(source: Path, target: Path, spec: VariantSpec, case: Any, loaded: LoadedSuite) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    calibration = spec.calibration
    batches = list(_calibration_batches(case.inputs, calibration, loaded))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

        def rewind(self) -> None:
            self.items = iter(batches)

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[calibration.method]
    with tempfile.TemporaryDirectory() as folder:
        quantize_static(str(_preprocessed(source, spec, Path(folder))), str(target), Reader(),
                        quant_format=QuantFormat.QDQ if spec.format == "qdq" else QuantFormat.QOperator,
                        per_channel=spec.per_channel, reduce_range=spec.reduce_range,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8 if spec.weight_type == "int8" else QuantType.QUInt8,
                        calibrate_method=method)


def _calibration_batches(plan: list[dict], calibration: Any, loaded: LoadedSuite):
    """Calibration inputs: real data from an .npz when given, else seeded synthetic data in the declared ranges."""
    if calibration.data:
        path = Path(calibration.data)
        path = path if path.is_absolute() else loaded.folder / path
        if not path.is_file():
            raise VariantError(f"calibration data {calibration.data} not found (looked in {path.parent})")
        with np.load(path) as archive:
            missing = [s["name"] for s in plan if s["name"] not in archive.files]
            if missing:
                raise VariantError(f"calibration data {path.name} has no array '{missing[0]}'")
            rows = {s["name"]: archive[s["name"]] for s in plan}
        count = min(calibration.samples, min(len(r) for r in rows.values()))
        for i in range(count):
            yield {s["name"]: rows[s["name"]][i:i + 1].astype(s["dtype"]) for s in plan}
        return
    for i in range(calibration.samples):  # the case's own shapes: batch is not always dim 0 (RNN state)
        yield make_feeds(plan, calibration.seed, sample=i)


BUILDERS = {"fp16": _fp16, "int8-dynamic": _int8_dynamic, "int8-static": _int8_static}
