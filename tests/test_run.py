"""End to end: the CLI runs real onnxruntime sessions on models built here, in worker processes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.results import load

from .conftest import FAST_MEASURE, matmul_model, only_results, run_cli, save_model, token_model


def test_third_party_models_with_symbolic_dims_and_int_input_run_ok(write_suite, models_dir, tmp_path) -> None:
    token_model(models_dir / "tok.onnx", vocab=1000)
    matmul_model(models_dir / "mm.onnx", size=16)
    suite = write_suite(f"""
        name: e2e
        models:
          - name: tok
            path: models/tok.onnx
            inputs: {{input_ids: {{shape: [batch, seq], range: [0, 1000]}}}}
          - name: mm
            path: models/mm.onnx
        matrix: {{batch: [1, 2], seq: [8]}}
        {FAST_MEASURE}
        session: {{intra_op_num_threads: 1}}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "results")
    assert out.returncode == 0, out.stderr + out.stdout
    document = only_results(tmp_path / "results")
    assert document["schema_version"] == 2 and document["status"] == "complete"
    assert document["environment"]["fingerprint"] and document["suite"]["sha256"]
    cases = document["cases"]
    assert [c["case_id"] for c in cases] == ["tok/fp32/cpu/batch=1,seq=8", "tok/fp32/cpu/batch=2,seq=8",
                                             "mm/fp32/cpu/batch=1,seq=8", "mm/fp32/cpu/batch=2,seq=8"]
    for case in cases:
        assert case["status"] == "ok", case.get("reason")
        assert case["runtime"]["providers_assigned"][0] == "CPUExecutionProvider"
        latency = case["latency_ms"]
        assert latency["n"] == len(case["samples_ms"]) >= 20
        assert latency["min"] <= latency["p50"] <= latency["p99"] <= latency["max"]
        assert case["throughput"]["samples_per_s"] > 0
        assert case["memory_mb"]["peak_rss"] > case["memory_mb"]["rss_start"] > 0
        assert case["timings_ms"]["session_create"] > 0 and case["timings_ms"]["first_inference"] > 0
        assert case["placement"]["on_requested"] == case["placement"]["total"] > 0
    batch2 = cases[1]
    assert batch2["throughput"]["samples_per_s"] == 2 * batch2["throughput"]["inferences_per_s"]
    assert "tok/fp32/cpu/batch=1,seq=8: ok p50" in out.stdout  # plain progress lines when not a terminal
    frame = load(tmp_path / "results")
    assert len(frame) == 4 and set(frame["status"]) == {"ok"} and frame["latency_ms.p50"].gt(0).all()


def slow_model(path: Path) -> Path:
    """A chain of big MatMuls: seconds per inference on one thread, to outlast a short timeout."""
    size = 1536
    weight = numpy_helper.from_array(np.full((size, size), 1e-4, np.float32), "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    nodes, prev = [], "x"
    for i in range(12):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    return save_model(path, helper.make_graph(nodes, "slow", [x], [y], [weight]))


def test_timeout_fails_that_case_and_the_run_goes_on(write_suite, models_dir, tmp_path) -> None:
    slow_model(models_dir / "slow.onnx")
    matmul_model(models_dir / "fast.onnx")
    suite = write_suite("""
        name: timeouts
        models: [{name: slow, path: models/slow.onnx}, {name: fast, path: models/fast.onnx}]
        measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 50, min_s: 0.2, max_s: 30, timeout_s: 4, repeats: 1}
        session: {intra_op_num_threads: 1}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "results")
    assert out.returncode == 1, out.stdout + out.stderr
    slow, fast = only_results(tmp_path / "results")["cases"]
    assert (slow["status"], slow["reason"]) == ("failed", "timeout after 4 s")
    assert "latency_ms" not in slow
    assert fast["status"] == "ok"


# SIGINT and SIGTERM mid-run: tests/test_results.py (finished cases kept, no worker or temp folder left).


def test_bad_inputs_exit_2_with_one_line(write_suite, models_dir) -> None:
    token_model(models_dir / "tok.onnx")
    (models_dir / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 50)
    cases = {
        "name: s\nmodels: [{name: m, path: models/tok.onnx}]\nmeasure: {warmpu: 1}\n": "measure.warmpu",
        "name: s\nmodels: [{name: m, path: models/missing.onnx}]\n": "models[0].path: model file models/missing.onnx not found",
        "name: s\nmodels: [{name: m, path: models/corrupt.onnx}]\n": "models[0].path: corrupt.onnx is not a valid ONNX model",
        "name: s\nmodels: [{name: m, path: models/tok.onnx}]\n": "dim 1 ('p2o.DynamicDimension.1') of input 'input_ids'",
    }
    for i, (text, expected) in enumerate(cases.items()):
        suite = write_suite(text, name=f"bad{i}.yaml")
        for command in ("validate", "run"):
            out = run_cli(command, suite, "-o", models_dir / "out") if command == "run" else run_cli(command, suite)
            assert out.returncode == 2, (command, text, out.stdout, out.stderr)
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1 and f"bad{i}.yaml" in lines[0] and expected in lines[0], lines
    assert not (models_dir / "out").exists()  # nothing was started


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's; elsewhere the wait4 figure is used")
def test_peak_memory_is_the_workers_own_not_the_parents(write_suite, models_dir, tmp_path) -> None:
    """Linux starts a spawned child's ru_maxrss at the parent's high-water mark; a big parent
    must not make a small worker look big."""
    from harness.plan import build_plan
    from harness.run.session import RunSession
    from harness.suite import load_suite

    matmul_model(models_dir / "mm.onnx")
    plan = build_plan(load_suite(write_suite(f"name: mem\nmodels: [{{name: mm, path: models/mm.onnx}}]\n{FAST_MEASURE}\n")))
    ballast = np.ones(100_000_000, dtype=np.float64)  # 800 MB resident in this (the parent) process
    assert ballast.sum() > 0
    session = RunSession(plan, None, "test", print)  # the pytest plugin's path: one case, no results file
    try:
        record = session.measure(plan.cases[0])
    finally:
        session.close("complete")
    assert record.status == "ok", record.reason
    memory = record.memory_mb
    assert memory is not None and memory.rss_end is not None and memory.peak_rss is not None
    assert memory.rss_end <= memory.peak_rss < 400, memory


SILERO = Path(__file__).parent / "data" / "silero_vad_16k_op15.onnx"


def test_real_third_party_model_with_symbolic_dims_and_an_integer_input(write_suite, models_dir, tmp_path) -> None:
    """Silero VAD as published: dims 'batch'/'sequence', batch at dim 1 of 'state', int64 'sr'."""
    matmul_model(models_dir / "mm.onnx")
    suite = write_suite(f"""
        name: third-party
        models:
          - name: silero-vad
            path: {SILERO}
            inputs:
              input: {{shape: [batch, 512], range: [-1, 1]}}
              sr: {{range: [16000, 16001]}}
          - name: mm
            path: models/mm.onnx
        matrix: {{batch: [1, 3]}}
        {FAST_MEASURE}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "r")
    assert out.returncode == 0, out.stdout + out.stderr
    cases = {c["case_id"]: c for c in only_results(tmp_path / "r")["cases"]}
    assert set(cases) == {f"{m}/fp32/cpu/batch={b}" for m in ("silero-vad", "mm") for b in (1, 3)}
    assert all(c["status"] == "ok" for c in cases.values())
    inputs = {i["name"]: i for i in cases["silero-vad/fp32/cpu/batch=3"]["model_file"]["inputs"]}
    assert inputs["input"]["shape"] == [3, 512] and inputs["state"]["shape"] == [2, 3, 128]
    assert inputs["sr"]["shape"] == [] and inputs["sr"]["dtype"] == "int64"
