"""Shared fixtures: small real ONNX models built in the test, suites written to tmp_path, the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]

# Short measurement settings: tests check behaviour, not speed.
FAST_MEASURE = ("measure: {warmup_s: 0.05, warmup_iterations: 2, min_iterations: 20, min_s: 0.2, max_s: 2, timeout_s: 60, "
                "repeats: 1}")


def save_model(path: Path, graph: onnx.GraphProto, opset: int = 13) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # loads in every runtime the harness supports
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def matmul_model(path: Path, size: int = 32, batch_dim: str | None = "N", seed: int = 0) -> Path:
    """x[batch, size] @ W -> Relu -> y: a real float model with a symbolic batch dim."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array((rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32), "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, size])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                              "matmul", [x], [y], [weight])
    return save_model(path, graph)


def token_model(path: Path, vocab: int = 1000, dim: int = 16) -> Path:
    """An exporter-style text model: int64 ids with unnamed/generated dims, an embedding Gather."""
    rng = np.random.default_rng(1)
    table = numpy_helper.from_array(rng.standard_normal((vocab, dim)).astype(np.float32), "embedding")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["p2o.DynamicDimension.0", "p2o.DynamicDimension.1"])
    out = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["p2o.DynamicDimension.0", dim])
    nodes = [helper.make_node("Gather", ["embedding", "input_ids"], ["emb"], axis=0),
             helper.make_node("ReduceMean", ["emb"], ["pooled"], axes=[1], keepdims=0)]
    return save_model(path, helper.make_graph(nodes, "tokens", [ids], [out], [table]))


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def write_suite(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def only_results(folder: Path) -> dict:
    """The one results file in a folder, read by the harness's own reader, as JSON (the record's
    on-disk names, so a test reads like the file format it pins)."""
    from harness.results import read

    files = sorted(folder.glob("*.jsonl"))
    assert len(files) == 1, files
    return read(files[0]).to_json()


# --- the browser tests (HTML report, serving chart) ---------------------------------------------


def find_chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium not found but CI is set: install it (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); CI=true turns this into a failure")
    return path
