"""Names the parent and the worker share. Standard library only."""

from __future__ import annotations

CPU = "CPUExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
# Where IO binding puts tensors for the device-resident mode, by provider.
DEVICE_OF = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda", "DmlExecutionProvider": "dml"}
GRAPH_OPT = {"disabled": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
             "layout": "ORT_ENABLE_LAYOUT", "all": "ORT_ENABLE_ALL"}
# Scenarios that LoadGen drives (the worker imports mlperf_loadgen only for these).
LOADGEN_SCENARIOS = ("server", "offline")
SCENARIOS = ("single-stream", "multi-stream", *LOADGEN_SCENARIOS)


def openvino_devices(device_type: str) -> list[str]:
    """The concrete devices behind an OpenVINO device_type: AUTO:GPU,CPU -> [GPU, CPU]."""
    head, _, rest = device_type.partition(":")
    if head.upper() in ("AUTO", "HETERO", "MULTI") and rest:
        return [d.strip().split(".")[0] for d in rest.split(",") if d.strip()]
    if head.upper() in ("AUTO", "HETERO", "MULTI"):
        return ["CPU"]
    return [device_type.split(".")[0]]
