"""Targets and runtimes: the registry, runtime creation and reuse, and honest availability."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest

from harness.errors import InputError
from harness.suite import SessionSpec, TargetSpec
from harness.targets import REGISTRY, resolve_target

from .conftest import FAST_MEASURE, only_results, run_cli


def target(name: str, **fields):
    return resolve_target(TargetSpec(name=name, **fields), SessionSpec(intra_op_num_threads=2), 0)


def test_registry_aliases_and_defaults() -> None:
    assert target("cpu").provider == "CPUExecutionProvider" and target("cpu").package == "onnxruntime"
    openvino = target("openvino")
    assert (openvino.provider, openvino.package, openvino.options) == (
        "OpenVINOExecutionProvider", "onnxruntime-openvino", {"device_type": "CPU"})
    assert target("openvino-gpu").options["device_type"] == "GPU"
    assert target("cuda").package == target("tensorrt").package == "onnxruntime-gpu"
    assert target("directml").package == "onnxruntime-directml"
    for name in ("coreml", "rocm", "migraphx", "qnn", "xnnpack"):
        assert name in REGISTRY


def test_options_merge_and_session_inherits() -> None:
    t = target("openvino", options={"num_of_threads": 2}, session=SessionSpec(intra_op_num_threads=1))
    assert t.options == {"device_type": "CPU", "num_of_threads": 2}
    assert t.session.intra_op_num_threads == 1
    assert target("cpu").session.intra_op_num_threads == 2


def test_tensorrt_engine_cache_lives_under_the_harness_cache() -> None:
    options = target("tensorrt").options
    assert options["trt_engine_cache_enable"] is True
    assert options["trt_engine_cache_path"].endswith("tensorrt-engines")


def test_any_provider_is_accepted_by_name_and_unknown_alias_is_an_error() -> None:
    custom = target("acl", provider="ACLExecutionProvider", options={"x": 1})
    assert (custom.provider, custom.package, custom.options) == ("ACLExecutionProvider", "onnxruntime", {"x": 1})
    with pytest.raises(InputError, match="unknown target 'gpu0'"):
        target("gpu0")
    # provider: given as a target name takes that target's provider, options and build
    ov = target("my-ov", provider="openvino")
    assert (ov.provider, ov.package) == (REGISTRY["openvino"].provider, REGISTRY["openvino"].package)
    assert target("plain", provider="cpu").provider == "CPUExecutionProvider"


def test_directml_is_unavailable_off_windows() -> None:
    problem = target("directml").platform_problem()
    if sys.platform == "win32":
        assert problem is None
    else:
        assert problem == f"onnxruntime-directml is published for Windows only, not {sys.platform}"


def test_harness_environment_keeps_plain_onnxruntime() -> None:
    installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert "onnxruntime" in installed
    assert not installed & {"onnxruntime-openvino", "onnxruntime-gpu", "onnxruntime-directml"}


@pytest.mark.slow
def test_every_target_in_one_suite_is_ok_or_honestly_unavailable(write_suite, tmp_path) -> None:
    """cpu and openvino run; openvino-gpu, cuda, tensorrt and directml say why not, with no numbers."""
    suite = write_suite(f"""
        name: targets
        models: [{{name: squeezenet, source: "builtin:squeezenet"}}]
        variants: [fp32, int8-dynamic]
        targets: [cpu, openvino, openvino-gpu, cuda, tensorrt, directml]
        {FAST_MEASURE}
        session: {{intra_op_num_threads: 1}}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "results")
    cases = {c["case_id"]: c for c in only_results(tmp_path / "results")["cases"]}
    # int8-dynamic conv models break OpenVINO EP's graph import: that case fails alone -> exit 1.
    assert out.returncode == 1, out.stdout + out.stderr
    for variant in ("fp32", "int8-dynamic"):
        cpu = cases[f"squeezenet/{variant}/cpu/batch=1"]
        assert cpu["status"] == "ok" and cpu["runtime"]["providers_assigned"][0] == "CPUExecutionProvider"
        assert cpu["placement"]["on_requested"] == cpu["placement"]["total"] > 0
    openvino = cases["squeezenet/fp32/openvino/batch=1"]
    assert openvino["status"] == "ok", openvino.get("reason")
    assert openvino["runtime"]["providers_assigned"][0] == "OpenVINOExecutionProvider"
    assert openvino["runtime"]["package"] == "onnxruntime-openvino" and openvino["runtime"]["managed"]
    assert openvino["placement"]["nodes"].get("OpenVINOExecutionProvider", 0) > 0
    broken = cases["squeezenet/int8-dynamic/openvino/batch=1"]
    assert broken["status"] == "failed" and "graph is not acyclic" in broken["reason"]
    expected = {"openvino-gpu": "Device GPU is not available", "cuda": "CUDA", "tensorrt": "tensorrt",
                "directml": "published for Windows only"}
    for name, words in expected.items():
        case = cases[f"squeezenet/fp32/{name}/batch=1"]
        assert case["status"] == "unavailable", (name, case)
        assert words.lower() in case["reason"].lower(), (name, case["reason"])
        assert not {"latency_ms", "throughput", "memory_mb", "samples_ms"} & set(case), name


@pytest.mark.slow
def test_managed_runtime_is_created_once_then_reused(tmp_path, write_suite) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "HARNESS_CACHE": str(cache)}
    suite = write_suite(f"""
        name: ov
        models: [{{name: tiny, source: "builtin:tiny"}}]
        targets: [{{name: openvino, runtime: {{version: 1.24.1}}}}]
        {FAST_MEASURE}
        """)

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "-o", str(tmp_path / "r")],
                              capture_output=True, text=True, env=env, timeout=900)

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creating venv" in first.stdout and "pip install onnxruntime-openvino==1.24.1" in first.stdout
    assert "ready (onnxruntime 1.24.1" in first.stdout
    second = run()
    assert second.returncode == 0 and "reusing" in second.stdout and "creating venv" not in second.stdout
    listing = subprocess.run([sys.executable, "-m", "harness.cli", "runtimes", "list"], capture_output=True,
                             text=True, env=env)
    assert "onnxruntime-openvino-1.24.1: onnxruntime 1.24.1" in listing.stdout
    removed = subprocess.run([sys.executable, "-m", "harness.cli", "runtimes", "remove", "onnxruntime-openvino-1.24.1"],
                             capture_output=True, text=True, env=env)
    assert removed.returncode == 0 and not (cache / "runtimes" / "onnxruntime-openvino-1.24.1").exists()


def test_runtime_python_that_does_not_exist_is_unavailable(write_suite, tmp_path) -> None:
    suite = write_suite(f"""
        name: py
        models: [{{name: tiny, source: "builtin:tiny"}}]
        targets: [{{name: mine, provider: CPUExecutionProvider, runtime: {{python: /nonexistent/python3}}}}]
        {FAST_MEASURE}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "r")
    assert out.returncode == 0
    (case,) = only_results(tmp_path / "r")["cases"]
    assert case["status"] == "unavailable" and "/nonexistent/python3 does not exist" in case["reason"]


def test_doctor_lists_every_target_with_a_reason() -> None:
    out = run_cli("doctor", "--target", "cpu", "--target", "directml", "--target", "coreml")
    assert out.returncode == 0, out.stderr
    assert "CPUExecutionProvider" in out.stdout and "yes" in out.stdout
    assert "published for Windows only" in out.stdout and "macOS only" in out.stdout


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no NVIDIA GPU here (nvidia-smi not found); "
                    "run scripts/gpu-check.sh on a GPU machine")
def test_cuda_runs_on_the_gpu_with_device_resident_figures(write_suite, tmp_path) -> None:
    suite = write_suite(f"""
        name: cuda
        models: [{{name: squeezenet, source: "builtin:squeezenet"}}]
        targets: [cuda]
        {FAST_MEASURE}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "r")
    (case,) = only_results(tmp_path / "r")["cases"]
    assert out.returncode == 0 and case["status"] == "ok", case.get("reason")
    assert case["runtime"]["providers_assigned"][0] == "CUDAExecutionProvider"
    assert case["device_resident"]["latency_ms"]["p50"] > 0
