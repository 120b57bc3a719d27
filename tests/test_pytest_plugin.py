"""The pytest plugin: `pytest --harness-suite SUITE --benchmark-only` in a fresh pytest process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from .conftest import only_results

pytestmark = pytest.mark.slow


def tiny_model(path: Path) -> None:
    w = numpy_helper.from_array(np.eye(16, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def broken_model(path: Path) -> None:
    """Loads fine, fails on every run: 16 values cannot be reshaped to 3."""
    shape = numpy_helper.from_array(np.array([3], dtype=np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "broken",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


SUITE = """name: plugged
models:
{models}
targets:
{targets}
measure: {{min_s: 0.2, min_iterations: 50, warmup_s: 0.05, max_s: 1, repeats: 1}}
session: {{intra_op_num_threads: 1}}
"""


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
                          cwd=folder, capture_output=True, text=True, timeout=300)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    tiny_model(tmp_path / "tiny.onnx")
    broken_model(tmp_path / "broken.onnx")
    return tmp_path


def test_suite_cases_run_as_benchmarks(folder: Path) -> None:
    nowhere = f"  - {{name: nowhere, provider: NoSuchExecutionProvider, runtime: {{python: {sys.executable}}}}}"
    (folder / "suite.yaml").write_text(SUITE.format(models="  - {name: tiny, path: tiny.onnx}",
                                                    targets=f"  - cpu\n{nowhere}"))
    proc = pytest_in(folder, "--harness-suite", "suite.yaml", "--benchmark-only", "--benchmark-json", "bench.json",
                     "--harness-results", "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    assert "unavailable: NoSuchExecutionProvider is not in this onnxruntime build" in proc.stdout
    (bench,) = json.loads((folder / "bench.json").read_text())["benchmarks"]
    assert bench["name"] == "tiny/fp32/cpu/batch=1" and bench["group"] == "plugged/tiny"
    info = bench["extra_info"]
    assert info["memory_mb"]["peak_rss"] > 0 and info["provider"] == "CPUExecutionProvider"
    assert info["placement"]["fraction_on_requested"] == 1.0 and "harness worker" in info["timer"]
    (results,) = (folder / "results").glob("*.jsonl")
    document = only_results(folder / "results")
    assert document["status"] == "complete" and len(document["cases"]) == 2
    ok = next(c for c in document["cases"] if c["status"] == "ok")
    assert bench["stats"]["rounds"] == len(ok["samples_ms"])  # every measured inference, nothing else
    assert bench["stats"]["min"] == pytest.approx(min(ok["samples_ms"]) / 1000.0)
    compared = subprocess.run([str(Path(sys.executable).with_name("harness")), "compare", str(results), str(results)],
                              capture_output=True, text=True, timeout=120)
    assert compared.returncode == 0, compared.stdout + compared.stderr


def test_failed_case_fails_and_bad_suite_is_a_collection_error(folder: Path) -> None:
    (folder / "suite.yaml").write_text(SUITE.format(models="  - {name: broken, path: broken.onnx}\n"
                                                           "  - {name: tiny, path: tiny.onnx}", targets="  - cpu"))
    proc = pytest_in(folder, "--harness-suite", "suite.yaml", "--benchmark-only")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in proc.stdout
    assert "broken/fp32/cpu/batch=1 failed" in proc.stdout
    (folder / "bad.yaml").write_text("name: bad\nmodels: []\n")
    proc = pytest_in(folder, "--harness-suite", "bad.yaml")
    assert proc.returncode != 0
    assert "bad.yaml" in proc.stdout and "models" in proc.stdout
