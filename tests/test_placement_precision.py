"""Placement in one unit on every EP, execution precision as a target setting, plugin EPs.

Real sessions: the CPU provider and OpenVINO (onnxruntime-openvino, a managed runtime), a model
OpenVINO takes only in part (Det has no OpenVINO kernel), and the OpenVINO plugin EP from PyPI.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from harness.errors import InputError
from harness.precision import apply_precision
from harness.suite import SessionSpec, TargetSpec
from harness.targets import resolve_target
from harness.worker.protocol import openvino_devices

from .conftest import only_results, run_cli, save_model

MEASURE = "measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 5, min_s: 0.05, max_s: 1, repeats: 1}"
OV = "OpenVINOExecutionProvider"


def det_model(path: Path) -> Path:
    """Relu -> Det -> Relu: OpenVINO has no Det, so onnxruntime gives it and what follows to the CPU."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="pre"), helper.make_node("Det", ["a"], ["b"], name="det"),
             helper.make_node("Relu", ["b"], ["y"], name="post")]
    return save_model(path, helper.make_graph(nodes, "det", [x], [y]), opset=17)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("precision")
    model = det_model(folder / "det.onnx")
    suite = folder / "s.yaml"
    suite.write_text(f"""
name: precision
models:
  - {{name: squeezenet, source: "builtin:squeezenet"}}
  - {{name: det, path: {model}}}
targets:
  - cpu
  - {{name: cpu-bf16, provider: CPUExecutionProvider, precision: bf16}}
  - {{name: openvino, options: {{device_type: CPU, num_of_threads: 1}}}}
  - {{name: ov-f32, provider: {OV}, precision: f32, options: {{device_type: CPU, num_of_threads: 1}}}}
  - {{name: ov-bf16, provider: {OV}, precision: bf16, options: {{device_type: CPU, num_of_threads: 1}}}}
{MEASURE}
session: {{intra_op_num_threads: 1}}
""")
    out = run_cli("run", suite, "-o", folder / "r")
    assert out.returncode in (0, 1), out.stdout + out.stderr
    return folder / "r"


@pytest.fixture(scope="module")
def measured(results: Path) -> dict[str, dict]:
    return {c["case_id"]: c for c in only_results(results)["cases"]}


def test_placement_is_counted_in_graph_nodes_on_every_provider(measured: dict[str, dict]) -> None:
    cpu, ov = measured["squeezenet/fp32/cpu/batch=1"], measured["squeezenet/fp32/openvino/batch=1"]
    assert ov["status"] == "ok", ov.get("reason")
    # OpenVINO runs SqueezeNet as one fused subgraph; counted in graph nodes it is 68/68, as on the CPU.
    for case, provider in ((cpu, "CPUExecutionProvider"), (ov, OV)):
        p = case["placement"]
        assert (p["unit"], p["total"], p["on_requested"], p["nodes"]) == ("graph nodes", 68, 68, {provider: 68}), p
        assert p["fell_back"] == [] and not p["partial_fallback"]


def test_a_partly_falling_back_case_names_the_nodes(measured: dict[str, dict]) -> None:
    case = measured["det/fp32/openvino/batch=1"]
    assert case["status"] == "ok", case.get("reason")
    p = case["placement"]
    assert p["partial_fallback"] and (p["on_requested"], p["total"]) == (1, 3)
    assert {(n["name"], n["op_type"], n["provider"]) for n in p["fell_back"]} == {
        ("det", "Det", "CPUExecutionProvider"), ("post", "Relu", "CPUExecutionProvider")}
    assert any(n.startswith("partial fallback: 1/3 graph nodes on OpenVINOExecutionProvider; off it: 1 Det, 1 Relu "
                            "on CPUExecutionProvider") for n in case["notes"]), case["notes"]
    # The profile times what fell back, with its share of the kernel time.
    assert {n["op_type"] for n in case["profile"]["fallback_nodes"]} >= {"Det"}


def test_precision_is_asked_for_and_the_effective_one_recorded(measured: dict[str, dict]) -> None:
    f32, bf16 = measured["squeezenet/fp32/ov-f32/batch=1"], measured["squeezenet/fp32/ov-bf16/batch=1"]
    for case, asked in ((f32, "f32"), (bf16, "bf16")):
        assert case["status"] == "ok", case.get("reason")
        hint = case["runtime"]["provider_options"]["load_config"]
        assert hint == f'{{"CPU": {{"INFERENCE_PRECISION_HINT": "{asked}"}}}}'
        q = case["precision"]
        assert q["requested"] == asked and q["effective"] in ("f32", "bf16"), q
        assert "INFERENCE_PRECISION_HINT" in q["source"] and q["device_capabilities"]["CPU"]
    assert f32["precision"]["effective"] == "f32"
    # bf16 costs accuracy against the fp32 reference where the CPU computes it; where it cannot,
    # OpenVINO runs f32 and the record and the notes say so.
    capable = "BF16" in bf16["precision"]["device_capabilities"]["CPU"].split()
    assert bf16["precision"]["effective"] == ("bf16" if capable else "f32")
    assert bf16["accuracy"]["cosine"] is not None
    if capable:
        assert bf16["accuracy"]["max_abs"] > f32["accuracy"]["max_abs"]
    else:
        assert any(n.startswith("precision: asked bf16, ran f32 (CPU offers ") for n in bf16["notes"]), bf16["notes"]
    # Without a precision, OpenVINO still says what it ran at; the CPU provider does not.
    assert measured["squeezenet/fp32/openvino/batch=1"]["precision"]["effective"] == "f32"
    cpu = measured["squeezenet/fp32/cpu/batch=1"]["precision"]
    assert cpu.get("effective") is None and cpu["source"].startswith("default, not reported")


def test_cpu_bf16_is_unavailable_off_arm64(measured: dict[str, dict]) -> None:
    case = measured["squeezenet/fp32/cpu-bf16/batch=1"]
    if platform.machine().lower() in ("arm64", "aarch64"):
        assert case["status"] == "ok"
        return
    assert case["status"] == "unavailable" and "exists on ARM64 only" in case["reason"]
    assert "latency_ms" not in case


def test_the_report_shows_precision_beside_accuracy(results: Path, measured: dict[str, dict], tmp_path: Path) -> None:
    from harness.report.html import write_report

    html = write_report([results], tmp_path / "r.html").read_text()
    ran = measured["squeezenet/fp32/ov-bf16/batch=1"]["precision"]["effective"]
    assert ">precision<" in html and (">bf16<" if ran == "bf16" else ">bf16 asked, f32 ran<") in html


@pytest.mark.parametrize(("provider", "options", "precision", "words"), [
    ("DmlExecutionProvider", {}, "f16", "DmlExecutionProvider offers no execution-precision control"),
    ("CPUExecutionProvider", {}, "f16", "the CPU provider has no f16 mode"),
    ("CUDAExecutionProvider", {}, "bf16", "the CUDA provider computes in the model's own types"),
    (OV, {"load_config": '{"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}'}, "bf16", "contradicts load_config"),
    (OV, {"load_config": "{not json"}, "bf16", "options.load_config is not JSON"),
    (OV, {"precision": "FP16"}, "f16", "not both"),
])
def test_precision_without_a_control_is_refused_in_one_line(provider, options, precision, words) -> None:
    with pytest.raises(InputError) as error:
        apply_precision(provider, options, precision, "targets[1].precision")
    message = str(error.value)
    assert message.startswith("targets[1].precision: ") and words in message and "\n" not in message


def test_precision_maps_onto_each_providers_control() -> None:
    def options(provider: str, precision: str, given: dict | None = None) -> tuple[dict, dict]:
        return apply_precision(provider, given or {}, precision, "t")

    assert options(OV, "bf16", {"device_type": "AUTO:GPU,CPU"})[0]["load_config"] == (
        '{"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}, "GPU": {"INFERENCE_PRECISION_HINT": "bf16"}}')
    kept = options(OV, "f16", {"load_config": '{"CPU": {"NUM_STREAMS": "1"}}'})[0]["load_config"]
    assert kept == '{"CPU": {"INFERENCE_PRECISION_HINT": "f16", "NUM_STREAMS": "1"}}'
    assert options("TensorrtExecutionProvider", "f16")[0] == {"trt_fp16_enable": True}
    assert options("CUDAExecutionProvider", "f32")[0] == {"use_tf32": 0}
    assert options("CPUExecutionProvider", "bf16")[1] == {"mlas.enable_gemm_fastmath_arm64_bfloat16": "1"}
    assert openvino_devices("GPU.1") == ["GPU"] and openvino_devices("HETERO:GPU,CPU") == ["GPU", "CPU"]
    target = resolve_target(TargetSpec(name="cpu", precision="bf16"), SessionSpec(), 0)
    assert target.session.config == {"mlas.enable_gemm_fastmath_arm64_bfloat16": "1"} and target.precision == "bf16"


def test_plugin_spec_takes_a_package_or_a_library() -> None:
    assert TargetSpec.model_validate({"name": "x", "provider": OV, "plugin": "onnxruntime-ep-openvino"}).plugin.package \
        == "onnxruntime-ep-openvino"
    with pytest.raises(Exception, match="exactly one"):
        TargetSpec.model_validate({"name": "x", "provider": OV, "plugin": {"package": "a", "library": "/b.so"}})
    target = resolve_target(TargetSpec(name="openvino-plugin"), SessionSpec(), 0)
    # The plugin sits beside the stock onnxruntime, never beside onnxruntime-openvino.
    assert (target.provider, target.package, target.plugin) == (OV, "onnxruntime", {"package": "onnxruntime-ep-openvino"})


def test_a_plugin_ep_runs_or_says_exactly_why_not(tmp_path: Path) -> None:
    """The OpenVINO plugin from PyPI, installed into a runtime beside the stock onnxruntime. Its
    factory claims Intel devices only: on an Intel machine the case runs on it; elsewhere (this
    project's CI machines are AMD) it is unavailable, naming the machine's devices."""
    suite = tmp_path / "plugin.yaml"
    suite.write_text(f"""
name: plugin
models: [{{name: tiny, source: "builtin:tiny"}}]
targets: [cpu, openvino-plugin, {{name: missing, provider: {OV}, plugin: {{library: {tmp_path}/nope.so}}}}]
{MEASURE}
""")
    out = run_cli("run", suite, "-o", tmp_path / "r")
    assert out.returncode == 0, out.stdout + out.stderr
    cases = {c["target"]: c for c in only_results(tmp_path / "r")["cases"]}
    plugin = cases["openvino-plugin"]
    assert plugin["runtime"]["plugin"]["package"] == "onnxruntime-ep-openvino"
    assert "+onnxruntime-ep-openvino-latest" in plugin["runtime"]["python"]
    if plugin["status"] == "ok":
        assert plugin["runtime"]["providers_assigned"][0] == OV
        assert plugin["runtime"]["plugin"]["device"]["vendor_id"] == "0x8086"
    else:
        assert plugin["status"] == "unavailable", plugin
        assert plugin["reason"].startswith(f"{OV} (plugin onnxruntime-ep-openvino) registered, but claims none of "
                                           "this machine's devices (CPU "), plugin["reason"]
        assert plugin["reason"].endswith("it claims Intel devices only (vendor id 0x8086)")
        assert "latency_ms" not in plugin
    missing = cases["missing"]
    assert missing["status"] == "unavailable" and "nope.so failed" in missing["reason"], missing
