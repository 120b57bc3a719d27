"""Tests for harness.builtin_models: every builtin builds, is valid ONNX that
older runtimes accept, runs at several batch sizes, and is deterministic."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from harness.models import builtin as builtin_models

# Hundreds of MB of weights each: seconds to build, check and load.
BIG = {"vgg19", "zfnet512", "alexnet"}
LIGHT = {"alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet", "vgg19", "zfnet512"}
HANDWRITTEN = {"encoder", "mlp", "tiny"}


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _feeds(session: ort.InferenceSession, batch: int, rng: np.random.Generator, sequence: int = 8) -> dict[str, np.ndarray]:
    """Random inputs for any builtin, resolving the symbolic dims by name."""
    sizes = {"batch": batch, "sequence": sequence}
    feeds = {}
    for arg in session.get_inputs():
        shape = [sizes[d] if isinstance(d, str) else d for d in arg.shape]
        if arg.name == "input_ids":
            feeds[arg.name] = rng.integers(0, 30522, shape, dtype=np.int64)
        elif arg.name == "attention_mask":
            feeds[arg.name] = np.ones(shape, np.int64)
        else:
            feeds[arg.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _assert_informative(name: str, outputs: list[np.ndarray]) -> None:
    for out in outputs:
        assert np.isfinite(out).all(), f"{name}: non-finite output"
        assert out.std() > 1e-6, f"{name}: constant output"


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}


def _params(names: set[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in sorted(names)]


def test_names_are_sorted_and_complete() -> None:
    assert builtin_models.NAMES == tuple(sorted(builtin_models.NAMES))
    assert set(builtin_models.NAMES) == LIGHT | HANDWRITTEN


@pytest.mark.parametrize("name", _params(LIGHT | HANDWRITTEN))
def test_builds_valid_model_that_runs_at_batch_1_and_2(name: str) -> None:
    model = builtin_models.build(name)
    onnx.checker.check_model(model, full_check=True)
    assert 8 <= model.ir_version <= 9
    assert all(o.version <= 17 for o in model.opset_import if o.domain in ("", "ai.onnx"))
    initializers = {t.name for t in model.graph.initializer}
    assert not initializers & {i.name for i in model.graph.input}, "weights must not be graph inputs"
    for value in model.graph.input:
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"

    session = _session(model)
    rng = np.random.default_rng(123)
    single = _feeds(session, 1, rng)
    other = _feeds(session, 1, rng)
    pair = {k: np.concatenate([single[k], other[k]]) for k in single}
    out1 = session.run(None, single)
    out2 = session.run(None, pair)
    _assert_informative(name, out1)
    _assert_informative(name, out2)
    for a, b in zip(out1, out2):
        assert b.shape[0] == 2 and b.shape[1:] == a.shape[1:]
        # Row 0 of the batch must not depend on row 1: catches reshapes that
        # still hard-code batch 1 (e.g. shufflenet's channel shuffle).
        np.testing.assert_allclose(b[:1], a, rtol=1e-4, atol=1e-5)
        assert not np.allclose(b[0], b[1]), f"{name}: different inputs gave the same output"


@pytest.mark.parametrize("name", sorted(LIGHT - BIG))  # the big three share these graph rewrites
def test_light_models_have_no_placeholders_left(name: str) -> None:
    model = builtin_models.build(name)
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"ConstantOfShape", "Dropout"}
    assert [i.name for i in model.graph.input] == ["data"]
    assert [o.name for o in model.graph.output] in (["prob"], ["logits"])
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            assert (_weights(model)[node.input[4]] > 0).all(), "variances must be positive"


@pytest.mark.parametrize("name", ["tiny", "mlp", "encoder", "squeezenet", "resnet50"])
def test_same_seed_gives_identical_bytes(name: str) -> None:
    assert builtin_models.build(name, seed=7).SerializeToString() == builtin_models.build(name, seed=7).SerializeToString()


@pytest.mark.parametrize("name", ["tiny", "mlp", "encoder", "squeezenet", "densenet121"])
def test_different_seed_changes_weights_not_structure(name: str) -> None:
    a, b = builtin_models.build(name, seed=0), builtin_models.build(name, seed=1)
    assert [n.SerializeToString() for n in a.graph.node] == [n.SerializeToString() for n in b.graph.node]
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    random = [k for k in wa if wa[k].dtype == np.float32 and wa[k].size > 1 and np.unique(wa[k]).size > 1]
    assert random, "expected random weights"
    assert all(not np.array_equal(wa[k], wb[k]) for k in random)


def test_default_seed_is_zero() -> None:
    assert builtin_models.build("tiny").SerializeToString() == builtin_models.build("tiny", seed=0).SerializeToString()


def test_encoder_handles_dynamic_sequence_length() -> None:
    session = _session(builtin_models.build("encoder"))
    rng = np.random.default_rng(0)
    for batch, sequence in [(1, 5), (3, 37)]:
        hidden, pooled = session.run(["last_hidden_state", "pooled"], _feeds(session, batch, rng, sequence))
        assert hidden.shape == (batch, sequence, 128)
        assert pooled.shape == (batch, 128)
        _assert_informative("encoder", [hidden, pooled])


def test_encoder_mask_hides_padding() -> None:
    session = _session(builtin_models.build("encoder"))
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30522, (2, 10), dtype=np.int64)
    full = np.ones_like(ids)
    padded = full.copy()
    padded[:, 6:] = 0
    out_full = session.run(None, {"input_ids": ids, "attention_mask": full})
    out_pad = session.run(None, {"input_ids": ids, "attention_mask": padded})
    assert not np.allclose(out_full[1], out_pad[1]), "mask did not change the pooled output"
    # With the tail masked, the tokens there must not influence the others.
    ids_other_tail = ids.copy()
    ids_other_tail[:, 6:] = rng.integers(0, 30522, (2, 4))
    out_other = session.run(None, {"input_ids": ids_other_tail, "attention_mask": padded})
    np.testing.assert_allclose(out_other[0][:, :6], out_pad[0][:, :6], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out_other[1], out_pad[1], rtol=1e-5, atol=1e-5)


def test_unknown_name_lists_available_models() -> None:
    with pytest.raises(ValueError, match="unknown builtin model 'nope'; available: ") as info:
        builtin_models.build("nope")
    assert ", ".join(builtin_models.NAMES) in str(info.value)
    with pytest.raises(ValueError, match="unknown builtin model"):
        builtin_models.describe("nope")


@pytest.mark.parametrize("name", builtin_models.NAMES)
def test_describe_is_one_informative_line(name: str) -> None:
    text = builtin_models.describe(name)
    assert "\n" not in text
    assert text.startswith(f"{name}: ")
    assert "params" in text and "batch" in text


def test_describe_counts_parameters() -> None:
    assert "1.2M params" in builtin_models.describe("squeezenet")
    assert "25.6M params" in builtin_models.describe("resnet50")
    assert "input_ids int64[batch,sequence]" in builtin_models.describe("encoder")
