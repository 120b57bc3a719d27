"""Execution-provider registry: short target names, default options, and which runtime holds them.

A target the registry does not know is still accepted when it names its provider: the
registry is convenience, never a gate.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .paths import cache_dir
from .precision import apply_precision
from .suite import SessionSpec, TargetSpec
from .worker.protocol import CPU


@dataclass(frozen=True)
class ProviderInfo:
    provider: str
    package: str  # the onnxruntime build that carries this provider
    options: dict[str, Any] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()  # sys.platform prefixes the package is published for; () = any
    gpu: bool = False
    note: str = ""
    plugin: str | None = None  # a plugin EP's package, installed next to the stock onnxruntime


# Keyed by target alias. Options are onnxruntime's provider option names.
REGISTRY: dict[str, ProviderInfo] = {
    "cpu": ProviderInfo(CPU, "onnxruntime"),
    "openvino": ProviderInfo("OpenVINOExecutionProvider", "onnxruntime-openvino", {"device_type": "CPU"},
                             ("linux", "win32")),
    "openvino-cpu": ProviderInfo("OpenVINOExecutionProvider", "onnxruntime-openvino", {"device_type": "CPU"},
                                 ("linux", "win32")),
    "openvino-gpu": ProviderInfo("OpenVINOExecutionProvider", "onnxruntime-openvino", {"device_type": "GPU"},
                                 ("linux", "win32")),
    "openvino-npu": ProviderInfo("OpenVINOExecutionProvider", "onnxruntime-openvino", {"device_type": "NPU"},
                                 ("linux", "win32")),
    "openvino-plugin": ProviderInfo("OpenVINOExecutionProvider", "onnxruntime", {}, ("linux", "win32"),
                                    plugin="onnxruntime-ep-openvino",
                                    note="the OpenVINO EP as a plugin library (newer OpenVINO than onnxruntime-openvino)"),
    "openvino-auto": ProviderInfo("OpenVINOExecutionProvider", "onnxruntime-openvino", {"device_type": "AUTO:GPU,CPU"},
                                  ("linux", "win32")),
    "cuda": ProviderInfo("CUDAExecutionProvider", "onnxruntime-gpu", {"device_id": 0}, ("linux", "win32"), gpu=True),
    "tensorrt": ProviderInfo("TensorrtExecutionProvider", "onnxruntime-gpu",
                             {"device_id": 0, "trt_engine_cache_enable": True}, ("linux", "win32"), gpu=True),
    "directml": ProviderInfo("DmlExecutionProvider", "onnxruntime-directml", {"device_id": 0}, ("win32",), gpu=True),
    "rocm": ProviderInfo("ROCMExecutionProvider", "onnxruntime-rocm", {"device_id": 0}, ("linux",), gpu=True,
                         note="AMD publishes onnxruntime-rocm wheels on its own index; name it with runtime.python"),
    "migraphx": ProviderInfo("MIGraphXExecutionProvider", "onnxruntime-migraphx", {"device_id": 0}, ("linux",), gpu=True),
    "coreml": ProviderInfo("CoreMLExecutionProvider", "onnxruntime", {}, ("darwin",)),
    "qnn": ProviderInfo("QNNExecutionProvider", "onnxruntime-qnn", {"backend_path": "QnnHtp.dll"}, ("win32",)),
    "xnnpack": ProviderInfo("XnnpackExecutionProvider", "onnxruntime", {}),
}

_BY_PROVIDER = {info.provider: info for info in REGISTRY.values() if info.plugin is None}

@dataclass(frozen=True)
class Target:
    """A target as the runner needs it: provider, merged options and where it runs."""

    name: str
    provider: str
    options: dict[str, Any]
    package: str
    version: str | None
    python: str | None
    platforms: tuple[str, ...]
    gpu: bool
    session: SessionSpec
    price_per_hour: float | None
    precision: str | None = None
    plugin: dict[str, Any] | None = None  # PluginSpec as plain data: it travels to the worker

    def platform_problem(self) -> str | None:
        """Why this target's runtime cannot exist on this OS, or None."""
        if self.python or not self.platforms or any(sys.platform.startswith(p) for p in self.platforms):
            return None
        where = ", ".join({"win32": "Windows", "linux": "Linux", "darwin": "macOS"}.get(p, p) for p in self.platforms)
        return f"{self.package} is published for {where} only, not {sys.platform}"


def resolve_target(spec: TargetSpec, suite_session: SessionSpec, index: int) -> Target:
    info = REGISTRY.get(spec.name)
    if spec.provider is None and info is None:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"targets[{index}].name: unknown target '{spec.name}'; use one of {known} "
                         "or give 'provider' (e.g. provider: CUDAExecutionProvider)")
    by_alias = REGISTRY.get(spec.provider) if spec.provider else None  # provider: cpu, as a target name says it
    provider = by_alias.provider if by_alias else spec.provider or info.provider  # type: ignore[union-attr]
    if info is None or info.provider != provider:
        info = by_alias or _BY_PROVIDER.get(provider, ProviderInfo(provider, "onnxruntime"))
    runtime = spec.runtime
    plugin = spec.plugin.model_dump(exclude_none=True) if spec.plugin else (
        {"package": info.plugin} if info.plugin else None)
    # A plugin EP sits next to the stock onnxruntime, never next to another build of the same EP.
    package = (runtime.package if runtime and runtime.package else "onnxruntime" if plugin else info.package)
    options = {**info.options, **spec.options}
    if provider == "TensorrtExecutionProvider" and options.get("trt_engine_cache_enable"):
        # Engines live under the harness cache: building one is cold start, reusing it is steady state.
        options.setdefault("trt_engine_cache_path", str(cache_dir() / "tensorrt-engines"))
        options.setdefault("trt_timing_cache_enable", True)
        options.setdefault("trt_timing_cache_path", str(cache_dir() / "tensorrt-engines"))
    options, config = apply_precision(provider, options, spec.precision, f"targets[{index}].precision")
    session = suite_session.merged(spec.session)
    if config:
        session = session.model_copy(update={"config": {**(session.config or {}), **config}})
    return Target(
        name=spec.name,
        provider=provider,
        options=options,
        package=package,
        version=runtime.version if runtime else None,
        python=runtime.python if runtime else None,
        platforms=info.platforms,
        gpu=info.gpu,
        session=session,
        price_per_hour=spec.price_per_hour,
        precision=spec.precision,
        plugin=plugin,
    )
