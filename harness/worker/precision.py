"""The precision a case really computed at, where the runtime can tell.

OpenVINO can: the worker compiles the same model file for the same device with the same
inference-precision hint through the OpenVINO library that onnxruntime-openvino bundles (its C
API, so nothing else is installed and the very same library decides), and reads back the
compiled model's INFERENCE_PRECISION_HINT. A CPU without bf16 units resolves a bf16 hint to f32
without a word; this is how that shows. Other providers do not report it.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
from typing import Any

from .protocol import CPU, OPENVINO, openvino_devices
from .session import PROBE_MODEL

NOT_REPORTED = "default, not reported"
# What onnxruntime's OpenVINO EP asks for when the suite does not (its 'precision' option default).
OPENVINO_EP_DEFAULT = {"CPU": "f32", "GPU": "f16", "NPU": "f16"}


def precision_problem(case: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) when this machine cannot compute the case at the precision asked for."""
    machine = platform.machine().lower()
    if case["provider"] == CPU and case.get("precision") == "bf16" and machine not in ("arm64", "aarch64"):
        return "unavailable", (f"the CPU provider's bf16 mode (MLAS fast-math GEMM) exists on ARM64 only; this "
                               f"machine is {platform.machine()}: use an OpenVINO target for bf16 on x86")
    return None


def effective_precision(ort: Any, case: dict[str, Any]) -> dict[str, Any]:
    requested = case.get("precision")
    if case["provider"] != OPENVINO:
        why = ("the CPU provider computes in the model's own types" if case["provider"] == CPU
               else f"{case['provider']} does not report it")
        return {"requested": requested, "effective": None, "source": f"{NOT_REPORTED}: {why}"}
    try:
        return {"requested": requested, **openvino_effective(ort, case)}
    except Exception as exc:  # never costs the case its numbers
        return {"requested": requested, "effective": None,
                "source": f"not reported: OpenVINO could not be asked ({type(exc).__name__}: {exc})"[:300]}


def openvino_effective(ort: Any, case: dict[str, Any]) -> dict[str, Any]:
    options = case.get("provider_options") or {}
    devices = openvino_devices(str(options.get("device_type", "CPU")))
    config = json.loads(str(options["load_config"])) if options.get("load_config") else {}
    api = OpenVinoC(os.path.join(os.path.dirname(ort.__file__), "capi"))
    found: dict[str, str] = {}
    capabilities: dict[str, str] = {}
    hints: dict[str, str] = {}
    for device in devices:
        hint = (config.get(device) or {}).get("INFERENCE_PRECISION_HINT") or OPENVINO_EP_DEFAULT.get(device)
        hints[device] = str(hint)
        capabilities[device] = api.device_property(device, "OPTIMIZATION_CAPABILITIES")
        try:
            found[device] = api.compiled_precision(case["model_path"], device, hint)
        except RuntimeError:
            # OpenVINO cannot take this model whole (the EP runs only part of it): the device's
            # resolution of the hint, which does not depend on the model, from the probe model.
            probe = os.path.join(case["workdir"], "precision-probe.onnx")
            with open(probe, "wb") as f:
                f.write(PROBE_MODEL)
            found[device] = api.compiled_precision(probe, device, hint)
            hints[device] += " (on a probe model: OpenVINO cannot read this one whole)"
    effective = ",".join(sorted(set(found.values())))
    how = "; ".join(f"{d}: hint {hints[d]} -> {found[d]} (device offers {capabilities[d]})" for d in devices)
    return {"effective": effective, "source": f"OpenVINO compiled model's INFERENCE_PRECISION_HINT; {how}",
            "device_capabilities": capabilities}


class OpenVinoC:
    """The few calls of OpenVINO's C API this needs, on the library next to onnxruntime's."""

    def __init__(self, capi_dir: str) -> None:
        names = [n for n in os.listdir(capi_dir) if n.startswith(("libopenvino_c.so", "openvino_c.dll"))]
        if not names:
            raise FileNotFoundError(f"no OpenVINO C library in {capi_dir}")
        self.lib = ctypes.CDLL(os.path.join(capi_dir, sorted(names)[0]))
        self.core = ctypes.c_void_p()
        self._check(self.lib.ov_core_create(ctypes.byref(self.core)), "ov_core_create")

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what} returned status {status}")

    def device_property(self, device: str, key: str) -> str:
        out = ctypes.c_char_p()
        self._check(self.lib.ov_core_get_property(self.core, device.encode(), key.encode(), ctypes.byref(out)),
                    f"get_property({device}, {key})")
        return (out.value or b"").decode()

    def compiled_precision(self, model_path: str, device: str, hint: str | None) -> str:
        model, compiled = ctypes.c_void_p(), ctypes.c_void_p()
        self._check(self.lib.ov_core_read_model(self.core, model_path.encode(), None, ctypes.byref(model)),
                    "read_model")
        try:
            if hint:
                status = self.lib.ov_core_compile_model(self.core, model, device.encode(), ctypes.c_size_t(2),
                                                        ctypes.byref(compiled), b"INFERENCE_PRECISION_HINT",
                                                        str(hint).encode())
            else:
                status = self.lib.ov_core_compile_model(self.core, model, device.encode(), ctypes.c_size_t(0),
                                                        ctypes.byref(compiled))
            self._check(status, f"compile_model({device})")
            out = ctypes.c_char_p()
            self._check(self.lib.ov_compiled_model_get_property(compiled, b"INFERENCE_PRECISION_HINT",
                                                                ctypes.byref(out)), "INFERENCE_PRECISION_HINT")
            return (out.value or b"").decode()
        finally:
            if compiled:
                self.lib.ov_compiled_model_free(compiled)
            if model:
                self.lib.ov_model_free(model)
