"""GPU targets: CUDA libraries from pip, NVML memory, and the device-resident (IO binding) loop.

Part of the worker: standard library, numpy and onnxruntime only (pynvml where installed).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .loops import run_until, warm_up
from .protocol import DEVICE_OF
from .session import captured_stderr


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
