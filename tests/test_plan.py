"""Matrix expansion, model files and input plans: everything checked before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import InputError
from harness.models.inputs import make_feeds
from harness.plan import build_plan
from harness.suite import load_suite

from .conftest import matmul_model, token_model


def plan_for(write_suite, text: str, **filters):
    return build_plan(load_suite(write_suite(text)), **filters)


def plan_error(write_suite, text: str) -> str:
    with pytest.raises(InputError) as info:
        plan_for(write_suite, text)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_matrix_expansion_with_include_exclude_and_stable_ids(write_suite, models_dir) -> None:
    matmul_model(models_dir / "a.onnx")
    matmul_model(models_dir / "b.onnx")
    text = """
        name: s
        models: [{name: a, path: models/a.onnx}, {name: b, path: models/b.onnx}]
        variants: [fp32, fp16]
        targets: [cpu, openvino]
        matrix: {batch: [1, 8]}
        exclude: [{model: b, variant: fp16}, {target: openvino, batch: 8}]
        include: [{model: a, variant: fp32, target: cpu, batch: 32}]
        """
    plan = plan_for(write_suite, text)
    ids = [c.case_id for c in plan.cases]
    # 2x2x2x2 = 16, minus b/fp16 (4), minus the openvino batch-8 ones still there (3), plus one include
    assert len(ids) == 16 - 4 - 3 + 1
    assert ids[0] == "a/fp32/cpu/batch=1"
    assert "a/fp32/cpu/batch=32" in ids and "b/fp16/cpu/batch=1" not in ids and "a/fp32/openvino/batch=8" not in ids
    assert ids == [c.case_id for c in plan_for(write_suite, text).cases]  # stable
    only = plan_for(write_suite, text, targets=["openvino"], models=["a"])
    assert {c.target.name for c in only.cases} == {"openvino"} and {c.model.name for c in only.cases} == {"a"}


def test_unknown_filter_is_input_error(write_suite, models_dir) -> None:
    matmul_model(models_dir / "a.onnx")
    with pytest.raises(InputError, match="--target gpu: not in the suite"):
        plan_for(write_suite, "name: s\nmodels: [{name: a, path: models/a.onnx}]\n", targets=["gpu"])


def test_symbolic_dims_and_integer_ranges_resolved(write_suite, models_dir) -> None:
    token_model(models_dir / "tok.onnx", vocab=500)
    plan = plan_for(write_suite, """
        name: s
        models:
          - name: tok
            path: models/tok.onnx
            dims: {p2o.DynamicDimension.1: seq}
        matrix: {batch: [2], seq: [7]}
        """)
    (spec,) = plan.cases[0].inputs
    assert spec["shape"] == [2, 7] and spec["dtype"] == "int64"
    assert (spec["fill"], spec["low"], spec["high"]) == ("range", 0, 500)  # read from the embedding table
    feeds = make_feeds(plan.cases[0].inputs, seed=0)
    assert feeds["input_ids"].shape == (2, 7) and feeds["input_ids"].max() < 500
    assert np.array_equal(feeds["input_ids"], make_feeds(plan.cases[0].inputs, seed=0)["input_ids"])


def test_declared_range_and_value_win(write_suite, models_dir) -> None:
    token_model(models_dir / "tok.onnx")
    plan = plan_for(write_suite, """
        name: s
        models:
          - name: tok
            path: models/tok.onnx
            inputs: {input_ids: {shape: [batch, 5], range: [10, 20]}}
        """)
    feeds = make_feeds(plan.cases[0].inputs, seed=3)
    assert feeds["input_ids"].shape == (1, 5)
    assert feeds["input_ids"].min() >= 10 and feeds["input_ids"].max() < 20


def test_unresolved_dim_names_model_input_and_dim(write_suite, models_dir) -> None:
    token_model(models_dir / "tok.onnx")
    message = plan_error(write_suite, "name: s\nmodels: [{name: tok, path: models/tok.onnx}]\n")
    assert "suite.yaml: models[0].inputs.input_ids: dim 1 ('p2o.DynamicDimension.1') of input 'input_ids' " \
           "of model 'tok' is unresolved" in message
    assert "models[0].dims.p2o.DynamicDimension.1" in message


def test_integer_input_without_any_bound_asks_for_a_range(write_suite, models_dir) -> None:
    from onnx import TensorProto, helper

    from .conftest import save_model

    x = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, [1, 4])
    save_model(models_dir / "ids.onnx", helper.make_graph([helper.make_node("Identity", ["ids"], ["y"])], "g", [x], [y]))
    message = plan_error(write_suite, "name: s\nmodels: [{name: i, path: models/ids.onnx}]\n")
    assert "models[0].inputs.ids.range: integer input 'ids' (int64) of model 'i' needs a range" in message


def test_shape_conflicting_with_graph(write_suite, models_dir) -> None:
    matmul_model(models_dir / "a.onnx", size=32)
    message = plan_error(write_suite, "name: s\nmodels: [{name: a, path: models/a.onnx, inputs: {x: {shape: [1, 64]}}}]\n")
    assert "models[0].inputs.x.shape[1]: 64 conflicts with the graph, which fixes this dim to 32" in message


def test_missing_and_corrupt_model_files(write_suite, models_dir) -> None:
    message = plan_error(write_suite, "name: s\nmodels: [{name: a, path: models/none.onnx}]\n")
    assert "suite.yaml: models[0].path: model file models/none.onnx not found" in message
    (models_dir / "bad.onnx").write_bytes(b"this is not a protobuf at all \x00\xff" * 10)
    message = plan_error(write_suite, "name: s\nmodels: [{name: a, path: models/bad.onnx}]\n")
    assert "suite.yaml: models[0].path: bad.onnx is not a valid ONNX model" in message


def test_unknown_input_name_and_builtin(write_suite, models_dir) -> None:
    matmul_model(models_dir / "a.onnx")
    message = plan_error(write_suite, "name: s\nmodels: [{name: a, path: models/a.onnx, inputs: {z: {value: 1}}}]\n")
    assert "models[0].inputs.z: model 'a' has no input 'z'; its inputs are: x" in message
    message = plan_error(write_suite, "name: s\nmodels: [{name: a, source: 'builtin:nope'}]\n")
    assert "models[0].source: unknown builtin model 'nope'; available:" in message


def test_npz_data_feeds_real_rows(write_suite, models_dir, tmp_path) -> None:
    matmul_model(models_dir / "a.onnx", size=4)
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "data.npz", x=rows)
    plan = plan_for(write_suite, "name: s\nmodels: [{name: a, path: models/a.onnx, data: data.npz}]\n"
                                 "matrix: {batch: [2]}\n")
    feeds = make_feeds(plan.cases[0].inputs, seed=0, sample=1)
    assert np.array_equal(feeds["x"], rows[[2, 0]])  # sample 1 starts at row 2, wraps around
    np.savez(tmp_path / "data.npz", x=np.zeros((3, 5), np.float32))
    assert "has rows of shape [5], the model needs [4]" in plan_error(
        write_suite, "name: s\nmodels: [{name: a, path: models/a.onnx, data: data.npz}]\n")
