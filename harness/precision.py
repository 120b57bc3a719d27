"""Execution precision as a target setting, separate from the model variant.

A variant changes the model file (fp16 weights, int8 quantization); ``precision`` asks the
execution provider to compute at a precision, on the same file. Each provider offers its own
control; a provider with none refuses the setting instead of silently ignoring it.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InputError
from .worker.protocol import CPU, OPENVINO, openvino_devices

PRECISIONS = ("f32", "bf16", "f16")
# OpenVINO's own names for its hint, as its compiled model reports them.
OPENVINO_HINT = {"f32": "f32", "bf16": "bf16", "f16": "f16"}


def apply_precision(provider: str, options: dict[str, Any], precision: str | None,
                    where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The provider options and session config entries that ask ``provider`` for ``precision``.

    ``where`` names the suite field for errors (``targets[2].precision``)."""
    if precision is None:
        return options, {}
    if provider == OPENVINO:
        return openvino_options(options, precision, where), {}
    if provider == CPU:
        if precision == "f32":
            return options, {}  # the CPU provider computes in the model's own types
        if precision == "bf16":
            # MLAS's bf16 fast-math GEMM; ARM64 only. Elsewhere the worker calls the case unavailable.
            return options, {"mlas.enable_gemm_fastmath_arm64_bfloat16": "1"}
        raise InputError(f"{where}: the CPU provider has no f16 mode; use an fp16 variant "
                         "(variants: [fp16]) to run f16 weights, or precision f32 or bf16")
    if provider == "CUDAExecutionProvider":
        if precision == "f32":
            return {**options, "use_tf32": 0}, {}  # strict f32: no TF32 tensor-core math on Ampere and newer
        raise InputError(f"{where}: the CUDA provider computes in the model's own types; use an fp16 variant "
                         "(variants: [fp16]) or the tensorrt target for reduced precision")
    if provider == "TensorrtExecutionProvider":
        flags = {"f32": {}, "f16": {"trt_fp16_enable": True}, "bf16": {"trt_bf16_enable": True}}[precision]
        return {**options, **flags}, {}
    if provider == "QNNExecutionProvider" and precision in ("f16", "f32"):
        return {**options, "enable_htp_fp16_precision": 1 if precision == "f16" else 0}, {}
    raise InputError(f"{where}: {provider} offers no execution-precision control the harness knows; "
                     "remove 'precision' and compare variants (fp16, int8) instead")


def openvino_options(options: dict[str, Any], precision: str, where: str) -> dict[str, Any]:
    """OpenVINO takes the hint per device through ``load_config`` (a JSON string)."""
    config: dict[str, Any] = {}
    if options.get("load_config"):
        try:
            config = json.loads(str(options["load_config"]))
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: options.load_config is not JSON ({exc.msg}); give it as a JSON string "
                             """such as '{"CPU": {"NUM_STREAMS": "1"}}'""") from None
        if not isinstance(config, dict):
            raise InputError(f"{where}: options.load_config must be a JSON object keyed by device")
    if "precision" in options:
        raise InputError(f"{where}: set either precision (the harness's, through load_config) or the "
                         "OpenVINO option 'precision', not both")
    for device in openvino_devices(str(options.get("device_type", "CPU"))):
        entry = config.setdefault(device, {})
        asked = entry.get("INFERENCE_PRECISION_HINT")
        if asked is not None and str(asked).lower() != OPENVINO_HINT[precision]:
            raise InputError(f"{where}: precision {precision} contradicts load_config's "
                             f"{device}.INFERENCE_PRECISION_HINT {asked}; keep one of them")
        entry["INFERENCE_PRECISION_HINT"] = OPENVINO_HINT[precision]
    return {**options, "load_config": json.dumps(config, sort_keys=True)}
