"""Precision and quantization variants: each kind, the cache, and the accuracy figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.plan import build_plan
from harness.suite import load_suite
from harness.variants import VariantError, VariantStore
from harness.worker.checks import compare_outputs

from .conftest import FAST_MEASURE, only_results, run_cli, save_model, token_model


def conv_model(path: Path) -> Path:
    """A small image classifier with dynamic batch AND image dims: Conv-Relu-Conv-GAP-Gemm."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array((rng.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32), "w1")
    w2 = numpy_helper.from_array((rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32), "w2")
    fc = numpy_helper.from_array((rng.standard_normal((32, 10)) * 0.3).astype(np.float32), "fc")
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 10])
    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("MatMul", ["flat", "fc"], ["scores"])]
    return save_model(path, helper.make_graph(nodes, "convnet", [x], [y], [w1, w2, fc]))


SUITE = """
name: variants
models:
  - name: convnet
    path: models/conv.onnx
    dims: {H: 32, W: 32}
variants:
  - fp32
  - {name: fp16, kind: fp16, keep_io_types: true}
  - {name: dyn, kind: int8-dynamic, per_channel: true}
  - {name: qdq, kind: int8-static, calibration: {samples: 8, method: minmax}}
  - {name: qop, kind: int8-static, format: qoperator, calibration: {samples: 8, method: percentile}}
"""


def store_for(write_suite, models_dir, text: str = SUITE, messages: list | None = None):
    conv_model(models_dir / "conv.onnx")
    plan = build_plan(load_suite(write_suite(text)))
    out = messages if messages is not None else []
    return plan, VariantStore(plan.loaded, plan.model_files, out.append, scratch=models_dir.parent / "refs")


def ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_each_kind_builds_what_it_says(write_suite, models_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    plan, store = store_for(write_suite, models_dir)
    paths = {case.variant.name: store.path(case) for case in plan.cases}
    assert paths["fp32"] == models_dir / "conv.onnx"
    fp16 = onnx.load(str(paths["fp16"]))
    assert any(i.data_type == TensorProto.FLOAT16 for i in fp16.graph.initializer)
    assert fp16.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # keep_io_types
    assert {"DynamicQuantizeLinear", "ConvInteger"} & ops(paths["dyn"]) or "MatMulInteger" in ops(paths["dyn"])
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops(paths["qdq"])
    assert "QLinearConv" in ops(paths["qop"])
    for path in paths.values():
        assert onnx.load(str(path)).ir_version <= 10  # loadable by onnxruntime-openvino too


def test_cache_reuses_and_says_so_and_rebuilds_on_change(write_suite, models_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    messages: list[str] = []
    plan, store = store_for(write_suite, models_dir, messages=messages)
    first = {c.variant.name: store.path(c) for c in plan.cases}
    assert sum("building" in m for m in messages) == 4
    messages.clear()
    plan, store = store_for(write_suite, models_dir, messages=messages)
    assert {c.variant.name: store.path(c) for c in plan.cases} == first
    assert sum("reusing cached build" in m for m in messages) == 4 and not any("building" in m for m in messages)
    changed = SUITE.replace("samples: 8, method: minmax", "samples: 4, method: minmax")
    messages.clear()
    plan, store = store_for(write_suite, models_dir, changed, messages)
    rebuilt = {c.variant.name: store.path(c) for c in plan.cases}
    assert rebuilt["qdq"] != first["qdq"] and rebuilt["qop"] == first["qop"]


def test_broken_variant_is_a_variant_error_naming_the_cause(write_suite, models_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    np.savez(tmp_path / "calib.npz", wrong=np.zeros((4, 3, 32, 32), np.float32))
    text = SUITE + "  - {name: bad, kind: int8-static, calibration: {data: calib.npz}}\n" \
                   "  - {name: theirs, kind: file, path: 'elsewhere/{model}.onnx'}\n"
    plan, store = store_for(write_suite, models_dir, text)
    bad = next(c for c in plan.cases if c.variant.name == "bad")
    with pytest.raises(VariantError, match="calibration data calib.npz has no array 'image'"):
        store.path(bad)
    theirs = next(c for c in plan.cases if c.variant.name == "theirs")
    with pytest.raises(VariantError, match="file elsewhere/convnet.onnx not found"):
        store.path(theirs)


def test_accuracy_metrics_on_known_outputs() -> None:
    want = {"scores": [np.array([[1.0, 2.0, 3.0] + [0.0] * 9, [3.0, 2.0, 1.0] + [0.0] * 9])]}
    same = compare_outputs({"scores": [want["scores"][0].copy()]}, want)
    assert same["max_abs"] == 0 and same["cosine"] == pytest.approx(1.0) and same["top1"] == 1.0
    swapped = want["scores"][0].copy()
    swapped[1, [0, 1]] = [2.0, 3.0]  # second row's argmax moves from 0 to 1; first row unchanged
    result = compare_outputs({"scores": [swapped]}, want)
    assert result["max_abs"] == 1.0
    assert result["mean_abs"] == pytest.approx(2 / 24)
    assert result["rel_l2"] == pytest.approx(np.sqrt(2) / np.sqrt(28))
    assert result["cosine"] == pytest.approx(27 / 28)  # 14 + (6 + 6 + 1) over 28
    assert result["top1"] == 0.5 and result["top5"] == 1.0


@pytest.mark.slow
def test_quantized_third_party_models_report_accuracy_and_thresholds(write_suite, models_dir, tmp_path) -> None:
    conv_model(models_dir / "conv.onnx")
    token_model(models_dir / "tok.onnx", vocab=1000)
    suite = write_suite(f"""
        name: accuracy
        models:
          - {{name: convnet, path: models/conv.onnx, dims: {{H: 32, W: 32}}}}
          - name: tok
            path: models/tok.onnx
            inputs: {{input_ids: {{shape: [batch, 12], range: [0, 1000]}}}}
        variants:
          - fp32
          - fp16
          - {{name: int8, kind: int8-static, calibration: {{samples: 8}}}}
          - {{name: int8-dyn, kind: int8-dynamic}}
          - {{name: broken, kind: file, path: missing.onnx}}
        targets: [cpu, openvino]
        exclude: [{{variant: int8-dyn, model: convnet, target: openvino}}]
        {FAST_MEASURE}
        accuracy: {{min_cosine: 0.9999999}}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "r")
    assert out.returncode == 1, out.stdout + out.stderr  # only the broken variant fails
    cases = {c["case_id"]: c for c in only_results(tmp_path / "r")["cases"]}
    for case_id, case in cases.items():
        if "/broken/" in case_id:
            assert case["status"] == "failed" and "variant broken could not be built: file missing.onnx" in case["reason"]
            continue
        assert case["status"] == "ok", (case_id, case.get("reason"))
        assert case["model_file"]["size_bytes"] > 0
        if case_id.split("/")[1:3] == ["fp32", "cpu"]:
            assert "accuracy" not in case  # the reference itself
            continue
        acc = case["accuracy"]
        assert {"max_abs", "mean_abs", "rel_l2", "cosine"} <= set(acc)
        if "/fp16/" in case_id and "/cpu/" in case_id:
            assert acc["cosine"] > 0.999
        if "/int8" in case_id:
            assert 0.9 < acc["cosine"] < 1.0 and acc["verdict"] == "fail"  # the strict threshold marks it...
            assert case["latency_ms"]["p50"] > 0  # ...without hiding its speed
        if case_id.startswith("convnet"):
            assert "top1" in acc and "top5" in acc
        if "/openvino/" in case_id and "/fp32/" not in case_id:
            assert "cosine" in acc["vs_cpu_same_variant"]
    assert "accuracy FAIL" in out.stdout


@pytest.mark.slow
def test_a_trained_third_party_model_quantizes_and_reports_accuracy(write_suite, tmp_path) -> None:
    """Silero VAD (batch at dim 1 of its state, an int64 sample-rate input): both int8 kinds build,
    run and report accuracy against fp32; OpenVINO EP 1.24 cannot initialise it, which fails only
    the OpenVINO cases."""
    silero = Path(__file__).parent / "data" / "silero_vad_16k_op15.onnx"
    suite = write_suite(f"""
        name: vad
        models:
          - name: vad
            path: {silero}
            inputs: {{input: {{shape: [batch, 512], range: [-1, 1]}}, sr: {{range: [16000, 16001]}}}}
        variants: [fp32, int8-dynamic, {{name: int8, kind: int8-static, calibration: {{samples: 4}}}}]
        targets: [cpu, openvino]
        matrix: {{batch: [2]}}
        {FAST_MEASURE}
        """)
    out = run_cli("run", suite, "-o", tmp_path / "r")
    cases = {c["case_id"]: c for c in only_results(tmp_path / "r")["cases"]}
    for variant in ("int8-dynamic", "int8"):
        case = cases[f"vad/{variant}/cpu/batch=2"]
        assert case["status"] == "ok", case.get("reason")
        assert -1.0 <= case["accuracy"]["cosine"] < 1.0 and case["accuracy"]["max_abs"] > 0
    assert cases["vad/fp32/cpu/batch=2"]["status"] == "ok"
    openvino = [c for c in cases.values() if c["target"] == "openvino"]
    assert all(c["status"] == "failed" and "OpenVINOExecutionProvider" in c["reason"] for c in openvino)
    assert out.returncode == 1
