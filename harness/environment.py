"""Machine and software fingerprint, recorded next to every result.

The fingerprint hash covers what decides whether two results are comparable (CPU model and
the ISA flags that change kernels, core count, memory, OS); software versions are per case,
in its runtime record, since one run mixes several onnxruntime builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from . import __version__

# ISA extensions that select different onnxruntime / OpenVINO kernels.
FLAGS_THAT_MATTER = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                     "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "sve", "asimd", "asimddp")
ENV_PREFIXES = ("ORT_", "OMP_", "OPENBLAS_", "MKL_", "KMP_", "OV_", "CUDA_VISIBLE_DEVICES", "TF_")
HASH_KEYS = ("cpu_model", "cpu_flags", "cpu_count_logical", "cpu_count_physical", "memory_gb", "os", "machine", "gpus")


def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "cpu model") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        if sys.platform == "darwin":
            model = _run(["sysctl", "-n", "machdep.cpu.brand_string"]) or model
    return {"cpu_model": model, "cpu_flags": sorted(f for f in FLAGS_THAT_MATTER if f in flags)}


def governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None


def gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs through NVML when nvidia-ml-py and a driver are present; [] otherwise."""
    try:
        import pynvml  # from nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            out.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_gb": round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30, 1),
                        "driver": driver.decode() if isinstance(driver, bytes) else driver,
                        "cuda_driver": f"{cuda // 1000}.{cuda % 1000 // 10}"})
        return out
    finally:
        pynvml.nvmlShutdown()


def _run(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def fingerprint() -> dict[str, Any]:
    import onnxruntime

    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "os_version": platform.version(),
        "machine": platform.machine(),
        **cpu_info(),
        "cpu_count_logical": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_governor": governor(),
        "gpus": gpus(),
        "python": platform.python_version(),
        "harness_version": __version__,
        "onnxruntime_version": onnxruntime.__version__,
        "environment_variables": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
    }
    info["fingerprint"] = fingerprint_hash(info)
    return info


def fingerprint_hash(info: dict[str, Any]) -> str:
    """Short hash of the hardware-and-OS identity; equal hashes mean results are comparable."""
    identity = {k: info.get(k) for k in HASH_KEYS}
    identity["memory_gb"] = round(float(identity["memory_gb"] or 0))  # the kernel reserves a varying amount
    identity["gpus"] = [g.get("name") for g in identity.get("gpus") or []]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


# (CI, commit variable, branch variable), first match wins: GitHub Actions, GitLab, Buildkite,
# CircleCI, Azure Pipelines, Jenkins (git plugin), Travis.
CI_VARIABLES = (("github", "GITHUB_SHA", "GITHUB_REF_NAME"), ("gitlab", "CI_COMMIT_SHA", "CI_COMMIT_REF_NAME"),
                ("buildkite", "BUILDKITE_COMMIT", "BUILDKITE_BRANCH"), ("circleci", "CIRCLE_SHA1", "CIRCLE_BRANCH"),
                ("azure", "BUILD_SOURCEVERSION", "BUILD_SOURCEBRANCHNAME"), ("jenkins", "GIT_COMMIT", "GIT_BRANCH"),
                ("travis", "TRAVIS_COMMIT", "TRAVIS_BRANCH"))


def provenance(label: str | None = None, env: dict[str, str] | None = None) -> dict[str, str]:
    """The run's label and, when a CI exposes them, the commit and branch it built."""
    env = dict(os.environ) if env is None else env
    out = {"label": label} if label else {}
    for ci, commit, branch in CI_VARIABLES:
        if env.get(commit):
            out.update(ci=ci, commit=env[commit])
            if env.get(branch):
                out["branch"] = env[branch]
            break
    return out
