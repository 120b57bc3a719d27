"""Real model architectures built fully offline, for ``source: builtin:NAME``.

Benchmarks need realistic graphs, but this harness must run without network
access and without shipping hundreds of megabytes of weights. So:

* the classic vision networks reuse the *graphs* that the ``onnx`` package
  ships as backend test data (``onnx/backend/test/data/light``), whose weights
  are only ``ConstantOfShape`` placeholders; we replace them with seeded random
  weights of a sane scale, make the batch dimension symbolic and upgrade the
  opset;
* ``encoder``, ``mlp`` and ``tiny`` are written directly with ``onnx.helper``.

Weights are random, so outputs are meaningless as predictions, but the compute,
memory traffic and operator mix match the real architectures, which is what a
latency benchmark measures.  Every model uses IR version 8 and opset 17, which
both onnxruntime and onnxruntime-openvino load.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

IR_VERSION = 8
OPSET = 17
_SOURCE_OPSET = 9  # what the light graphs are written in
_BATCH = "batch"
_SEQUENCE = "sequence"

# ---------------------------------------------------------------------------
# Seeded weights
# ---------------------------------------------------------------------------


def _rng(seed: int, key: str) -> np.random.Generator:
    """One generator per tensor, so a tensor's values depend only on the seed
    and its own name - not on build order or on which other tensors exist."""
    return np.random.default_rng([seed % 2**63, zlib.crc32(key.encode("utf-8"))])


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float, mean: float = 0.0) -> np.ndarray:
    values = rng.standard_normal(shape, dtype=np.float32)
    values *= np.float32(std)
    if mean:
        values += np.float32(mean)
    return values


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(np.float32)


# How each kind of weight is initialised.  The aim is activations that stay
# O(1) through 100+ layers: He-normal conv/linear weights preserve the second
# moment through ReLU, and near-identity normalisation parameters neither
# amplify nor shrink it.
_Init = Callable[[np.random.Generator, tuple[int, ...], int], np.ndarray]


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """Kaiming-normal for a layer whose input comes out of a ReLU (gain 2)."""
    return _normal(rng, shape, math.sqrt(2.0 / max(fan_in, 1)))


def _lecun(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """Gain-1 variant for layers fed by a linear value (image data, a
    normalisation without ReLU): gain 2 there would double the variance."""
    return _normal(rng, shape, math.sqrt(1.0 / max(fan_in, 1)))


def _bias(rng: np.random.Generator, shape: tuple[int, ...], _fan_in: int) -> np.ndarray:
    return _normal(rng, shape, 0.01)


def _scale(rng: np.random.Generator, shape: tuple[int, ...], _fan_in: int) -> np.ndarray:
    return _uniform(rng, shape, 0.9, 1.1)


def _residual_scale(rng: np.random.Generator, shape: tuple[int, ...], _fan_in: int) -> np.ndarray:
    """Scale of a normalisation whose output is added to an identity shortcut:
    damped, as in 'zero-init residual' training recipes, so 16 stacked blocks
    do not double the activation variance 16 times."""
    return _uniform(rng, shape, 0.25, 0.35)


def _projection_scale(rng: np.random.Generator, shape: tuple[int, ...], _fan_in: int) -> np.ndarray:
    """Scale of a normalisation summed with another normalised branch (a
    projection shortcut): 1/sqrt(2) each keeps the sum at unit variance."""
    return _uniform(rng, shape, 0.65, 0.76)


def _mean(rng: np.random.Generator, shape: tuple[int, ...], _fan_in: int) -> np.ndarray:
    return _normal(rng, shape, 0.05)


def _variance(rng: np.random.Generator, shape: tuple[int, ...], _fan_in: int) -> np.ndarray:
    return _uniform(rng, shape, 0.9, 1.1)


_INITS: Mapping[str, _Init] = MappingProxyType(
    {
        "he": _he,
        "lecun": _lecun,
        "bias": _bias,
        "scale": _scale,
        "residual_scale": _residual_scale,
        "projection_scale": _projection_scale,
        "mean": _mean,
        "variance": _variance,
    }
)


@dataclass(frozen=True)
class _WeightSpec:
    """A weight to materialise: its shape, how to initialise it and its fan-in."""

    shape: tuple[int, ...]
    role: str
    fan_in: int = 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _add_initializer(graph: onnx.GraphProto, name: str, values: np.ndarray) -> None:
    """Write straight into the graph: ``numpy_helper.from_array`` followed by
    ``extend`` copies every tensor twice more, which for vgg19's 575 MB of
    weights costs seconds."""
    tensor = graph.initializer.add()
    tensor.name = name
    tensor.data_type = helper.np_dtype_to_tensor_dtype(values.dtype)
    tensor.dims.extend(values.shape)
    tensor.raw_data = np.ascontiguousarray(values, values.dtype.newbyteorder("<")).tobytes()


def _materialise(graph: onnx.GraphProto, model_key: str, specs: Mapping[str, _WeightSpec], seed: int) -> None:
    for name, spec in specs.items():
        values = _INITS[spec.role](_rng(seed, f"{model_key}/{name}"), spec.shape, spec.fan_in)
        _add_initializer(graph, name, values)


# ---------------------------------------------------------------------------
# Vision graphs from onnx's backend test data
# ---------------------------------------------------------------------------

_LIGHT_FILES: Mapping[str, str] = MappingProxyType(
    {
        "alexnet": "bvlc_alexnet",
        "densenet121": "densenet121",
        "inception_v1": "inception_v1",
        "inception_v2": "inception_v2",
        "resnet50": "resnet50",
        "shufflenet": "shufflenet",
        "squeezenet": "squeezenet",
        "vgg19": "vgg19",
        "zfnet512": "zfnet512",
    }
)

_LIGHT_SUMMARIES: Mapping[str, str] = MappingProxyType(
    {
        "alexnet": "AlexNet (BVLC) image classifier",
        "densenet121": "DenseNet-121 image classifier",
        "inception_v1": "Inception v1 (GoogLeNet) image classifier",
        "inception_v2": "Inception v2 (BN-Inception) image classifier",
        "resnet50": "ResNet-50 image classifier",
        "shufflenet": "ShuffleNet (v1, g=4) image classifier",
        "squeezenet": "SqueezeNet 1.0 image classifier",
        "vgg19": "VGG-19 image classifier",
        "zfnet512": "ZFNet-512 image classifier",
    }
)


def _light_path(stem: str) -> str:
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"light_{stem}.onnx")


@dataclass(frozen=True)
class _Skeleton:
    """A light graph rewritten to opset 17, with weights still unmaterialised."""

    model: onnx.ModelProto  # no weight initialisers yet
    weights: Mapping[str, _WeightSpec]


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _consumers(nodes: Iterable[onnx.NodeProto]) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    found: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in nodes:
        for index, name in enumerate(node.input):
            found.setdefault(name, []).append((node, index))
    return found


def _reshaped(shape: tuple[int, ...], target: Iterable[int]) -> tuple[int, ...]:
    """Static shape of Reshape(shape -> target), for folding weight reshapes."""
    dims = [shape[i] if d == 0 else int(d) for i, d in enumerate(target)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(shape)) // known
    return tuple(dims)


def _unsqueezed(shape: tuple[int, ...], axes: Iterable[int]) -> tuple[int, ...]:
    dims = list(shape)
    rank = len(dims) + len(list(axes))
    for axis in sorted(a % rank for a in axes):
        dims.insert(axis, 1)
    return tuple(dims)


class _LightRewriter:
    """Turns a light test graph into an ordinary model skeleton.

    Kept as a small class because the rewrite is a sequence of passes over
    shared per-graph tables (constants, weight shapes, node list); instances
    are created per build and never shared.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.graph = graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = list(graph.node)
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name, value in self.constants.items():
            if value.dtype == np.float32:
                self.shapes[name] = tuple(int(d) for d in value.shape)
        for node in self.nodes:
            if node.op_type == "ConstantOfShape":
                self.shapes[node.output[0]] = tuple(int(d) for d in self.constants[node.input[0]])
        self.nodes = [n for n in self.nodes if n.op_type != "ConstantOfShape"]

    def fold_weight_shape_ops(self) -> None:
        """Reshape/Unsqueeze applied to a weight is just a different weight shape."""
        kept = []
        for node in self.nodes:
            source = node.input[0] if node.input else ""
            if source in self.shapes and node.op_type == "Reshape" and node.input[1] in self.constants:
                self.shapes[node.output[0]] = _reshaped(self.shapes[source], self.constants[node.input[1]])
            elif source in self.shapes and node.op_type == "Unsqueeze":
                self.shapes[node.output[0]] = _unsqueezed(self.shapes[source], _attrs(node)["axes"])  # type: ignore[arg-type]
            else:
                kept.append(node)
        self.nodes = kept

    def drop_dropout(self) -> None:
        """Dropout is the identity at inference; removing it keeps the graph
        identical across runtimes (some keep a useless copy)."""
        alias: dict[str, str] = {}
        kept = []
        for node in self.nodes:
            if node.op_type == "Dropout":
                alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            else:
                kept.append(node)
        for node in kept:
            for i, name in enumerate(node.input):
                if name in alias:
                    node.input[i] = alias[name]
        self.nodes = kept

    def free_batch_in_reshapes(self) -> None:
        """Caffe2 exports hard-code batch 1 in Reshape targets; 0 ('copy the
        input dim') keeps the same graph valid for any batch."""
        for node in self.nodes:
            if node.op_type != "Reshape" or node.input[0] in self.shapes:
                continue
            target = self.constants.get(node.input[1])
            if target is not None and target.size and target[0] == 1:
                fixed = node.input[1] + "__batch"
                self.constants[fixed] = np.concatenate([[0], target[1:]]).astype(np.int64)
                node.input[1] = fixed

    def weight_specs(self) -> dict[str, _WeightSpec]:
        consumers = _consumers(self.nodes)
        producers = {out: node for node in self.nodes for out in node.output}
        shortcut = self._shortcut_roles(consumers, producers)
        specs = {}
        for name in sorted(self.shapes):
            uses = consumers.get(name, [])
            if uses:
                specs[name] = self._spec(name, uses[0], shortcut, producers)
        return specs

    def _shortcut_roles(
        self,
        consumers: Mapping[str, list[tuple[onnx.NodeProto, int]]],
        producers: Mapping[str, onnx.NodeProto],
    ) -> dict[str, str]:
        """Scale role for each BatchNormalization output that feeds a residual
        Sum: damped when added to an identity shortcut, 1/sqrt(2) when both
        summands are normalised branches (projection shortcut)."""
        roles = {}
        for node in self.nodes:
            if node.op_type != "BatchNormalization":
                continue
            for user, _ in consumers.get(node.output[0], []):
                if user.op_type in ("Sum", "Add"):
                    all_bn = all(producers[i].op_type == "BatchNormalization" for i in user.input if i in producers)
                    roles[node.output[0]] = "projection_scale" if all_bn else "residual_scale"
        return roles

    def _spec(
        self,
        name: str,
        use: tuple[onnx.NodeProto, int],
        shortcut: Mapping[str, str],
        producers: Mapping[str, onnx.NodeProto],
    ) -> _WeightSpec:
        node, index = use
        shape = self.shapes[name]
        role = _role(node, index, shape)
        if role == "scale" and node.op_type == "BatchNormalization":
            role = shortcut.get(node.output[0], role)
        if role != "he":
            return _WeightSpec(shape, role)
        if not _after_relu(node.input[0], producers):
            role = "lecun"
        return _WeightSpec(shape, role, _fan_in(node, shape))

    def data_inputs(self) -> list[onnx.ValueInfoProto]:
        used = {name for node in self.nodes for name in node.input}
        return [i for i in self.graph.input if i.name in used and i.name not in self.shapes and i.name not in self.constants]


def _role(node: onnx.NodeProto, index: int, shape: tuple[int, ...]) -> str:
    """Which initialiser a weight needs, judged by the op that consumes it."""
    op = node.op_type
    if op in ("Conv", "Gemm", "MatMul"):
        return "he" if index == 1 else "bias"
    if op == "BatchNormalization":
        return ("", "scale", "bias", "mean", "variance")[index]
    if op == "Mul":
        return "scale"
    if op == "Add":
        return "bias"
    raise NotImplementedError(f"no initialiser for input {index} of {op} (shape {shape})")


# Ops that move or pool values without changing their sign: a ReLU before
# them still means the next layer sees non-negative inputs.
_TRANSPARENT = frozenset({"Reshape", "Transpose", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "LRN", "Flatten"})


def _after_relu(name: str, producers: Mapping[str, onnx.NodeProto]) -> bool:
    """Whether a layer's input comes out of a ReLU, which halves its second
    moment and so calls for He's gain of 2 rather than 1."""
    node = producers.get(name)
    while node is not None and node.op_type in _TRANSPARENT:
        node = producers.get(node.input[0])
    return node is not None and node.op_type == "Relu"


def _fan_in(node: onnx.NodeProto, shape: tuple[int, ...]) -> int:
    if node.op_type == "Gemm" and not _attrs(node).get("transB", 0):
        return shape[0]
    return int(np.prod(shape[1:]))


def _with_batch(value: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    """Copy of a 4-D/2-D value info with dim 0 symbolic and a readable name."""
    dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
    return helper.make_tensor_value_info(name, value.type.tensor_type.elem_type, [_BATCH, *dims[1:]])


def _rename(nodes: Iterable[onnx.NodeProto], old: str, new: str) -> None:
    for node in nodes:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new


def _light_skeleton(name: str) -> _Skeleton:
    """Rewrite a light graph into an opset-17 skeleton; weights are declared as
    typed graph inputs so the version converter sees a complete, tiny graph."""
    rewriter = _LightRewriter(onnx.load(_light_path(_LIGHT_FILES[name])))
    rewriter.fold_weight_shape_ops()
    rewriter.drop_dropout()
    rewriter.free_batch_in_reshapes()
    specs = rewriter.weight_specs()
    (data,) = rewriter.data_inputs()
    (output,) = rewriter.graph.output
    producer = next(n for n in rewriter.nodes if output.name in n.output)
    out_name = "prob" if producer.op_type == "Softmax" else "logits"
    _rename(rewriter.nodes, data.name, "data")
    _rename(rewriter.nodes, output.name, out_name)
    used = {i for n in rewriter.nodes for i in n.input}
    constants = [numpy_helper.from_array(v, k) for k, v in rewriter.constants.items() if k in used and v.dtype == np.int64]
    weight_inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, s.shape) for k, s in specs.items()]
    graph = helper.make_graph(
        rewriter.nodes,
        name,
        [_with_batch(data, "data"), *weight_inputs],
        [_with_batch(output, out_name)],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _SOURCE_OPSET)])
    model = version_converter.convert_version(model, OPSET)
    return _Skeleton(model, MappingProxyType(specs))


def _build_light(name: str, seed: int) -> onnx.ModelProto:
    skeleton = _light_skeleton(name)
    model = skeleton.model
    weights = set(skeleton.weights)
    kept_inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept_inputs)
    _materialise(model.graph, name, skeleton.weights, seed)
    return _finish(model, name)


# ---------------------------------------------------------------------------
# Hand-written models
# ---------------------------------------------------------------------------


class _GraphBuilder:
    """Collects nodes and seeded initialisers for a hand-written graph.

    Created per build; ``seed`` and ``key`` make every tensor deterministic.
    """

    def __init__(self, key: str, seed: int) -> None:
        self.key = key
        self.seed = seed
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def weight(self, name: str, shape: tuple[int, ...], std: float) -> str:
        values = _normal(_rng(self.seed, f"{self.key}/{name}"), shape, std)
        return self.tensor(name, values)

    def he(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        return self.tensor(name, _he(_rng(self.seed, f"{self.key}/{name}"), shape, fan_in))

    def tensor(self, name: str, values: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(values), name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs: Any) -> str:
        """Add a node; returns its (first) output name."""
        if isinstance(outputs, int):
            self._count += 1
            outputs = [f"{op_type.lower()}_{self._count}" + (f"_{i}" if i else "") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{len(self.nodes)}", **attrs))
        return outputs[0]

    def model(self, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.key, inputs, outputs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        return _finish(model, self.key)


def _build_tiny(seed: int) -> onnx.ModelProto:
    """Smallest useful float graph: measures harness overhead, not compute."""
    g = _GraphBuilder("tiny", seed)
    h = g.op("MatMul", ["x", g.he("w", (16, 16), 16)])
    h = g.op("Add", [h, g.weight("b", (16,), 0.01)])
    g.op("Relu", [h], ["y"])
    return g.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [_BATCH, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [_BATCH, 16])],
    )


_MLP_WIDTHS = (1024, 2048, 2048, 2048, 1000)


def _build_mlp(seed: int) -> onnx.ModelProto:
    """A GEMV-bound classifier head: a few ms at batch 1 on one core, so it
    sits between 'tiny' (pure overhead) and the conv nets (compute-bound)."""
    g = _GraphBuilder("mlp", seed)
    h = "x"
    layers = list(zip(_MLP_WIDTHS[:-1], _MLP_WIDTHS[1:]))
    for i, (n_in, n_out) in enumerate(layers):
        last = i == len(layers) - 1
        w = g.he(f"fc{i}.weight", (n_out, n_in), n_in)
        b = g.weight(f"fc{i}.bias", (n_out,), 0.01)
        h = g.op("Gemm", [h, w, b], ["logits"] if last else 1, transB=1)
        if not last:
            h = g.op("Relu", [h])
    return g.model(
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [_BATCH, _MLP_WIDTHS[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [_BATCH, _MLP_WIDTHS[-1]])],
    )


@dataclass(frozen=True)
class _EncoderConfig:
    vocab: int = 30522
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    ffn: int = 512
    max_positions: int = 512
    std: float = 0.02
    epsilon: float = 1e-5
    mask_value: float = -10000.0  # BERT's; also representable in float16

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def _linear(g: _GraphBuilder, x: str, name: str, n_in: int, n_out: int, std: float) -> str:
    h = g.op("MatMul", [x, g.weight(f"{name}.weight", (n_in, n_out), std)])
    return g.op("Add", [h, g.weight(f"{name}.bias", (n_out,), std)])


def _layer_norm(g: _GraphBuilder, x: str, name: str, cfg: _EncoderConfig) -> str:
    gamma = g.tensor(f"{name}.weight", np.ones(cfg.hidden, np.float32))
    beta = g.tensor(f"{name}.bias", np.zeros(cfg.hidden, np.float32))
    return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=cfg.epsilon)


def _gelu(g: _GraphBuilder, x: str) -> str:
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)): the form PyTorch exports."""
    scaled = g.op("Div", [x, g.tensor(f"gelu_sqrt2_{len(g.nodes)}", np.array(math.sqrt(2.0), np.float32))])
    erf = g.op("Erf", [scaled])
    one = g.op("Add", [erf, g.tensor(f"gelu_one_{len(g.nodes)}", np.array(1.0, np.float32))])
    half = g.op("Mul", [x, g.tensor(f"gelu_half_{len(g.nodes)}", np.array(0.5, np.float32))])
    return g.op("Mul", [half, one])


def _embeddings(g: _GraphBuilder, cfg: _EncoderConfig) -> str:
    """Token + position embeddings; positions come from Range over the
    runtime sequence length, so any length up to max_positions works."""
    tokens = g.op("Gather", [g.weight("embeddings.word", (cfg.vocab, cfg.hidden), cfg.std), "input_ids"])
    shape = g.op("Shape", ["input_ids"])
    length = g.op("Gather", [shape, g.tensor("const_1", np.array(1, np.int64))], axis=0)
    positions = g.op("Range", [g.tensor("const_0", np.array(0, np.int64)), length, "const_1"], ["position_ids"])
    table = g.weight("embeddings.position", (cfg.max_positions, cfg.hidden), cfg.std)
    pos = g.op("Gather", [table, positions])
    return _layer_norm(g, g.op("Add", [tokens, pos]), "embeddings.norm", cfg)


def _mask_bias(g: _GraphBuilder, cfg: _EncoderConfig) -> str:
    """attention_mask [B,S] (1 = attend) -> additive bias [B,1,1,S]."""
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.tensor("const_one", np.array(1.0, np.float32)), mask])
    bias = g.op("Mul", [inverted, g.tensor("const_mask_value", np.array(cfg.mask_value, np.float32))])
    return g.op("Unsqueeze", [bias, g.tensor("const_axes_1_2", np.array([1, 2], np.int64))])


def _split_heads(g: _GraphBuilder, x: str, perm: list[int], cfg: _EncoderConfig) -> str:
    shape = g.tensor(f"heads_shape_{len(g.nodes)}", np.array([0, 0, cfg.heads, cfg.head_dim], np.int64))
    return g.op("Transpose", [g.op("Reshape", [x, shape])], perm=perm)


def _attention(g: _GraphBuilder, x: str, mask: str, name: str, cfg: _EncoderConfig) -> str:
    h = cfg.hidden
    q = _split_heads(g, _linear(g, x, f"{name}.query", h, h, cfg.std), [0, 2, 1, 3], cfg)
    k = _split_heads(g, _linear(g, x, f"{name}.key", h, h, cfg.std), [0, 2, 3, 1], cfg)
    v = _split_heads(g, _linear(g, x, f"{name}.value", h, h, cfg.std), [0, 2, 1, 3], cfg)
    scores = g.op("MatMul", [q, k])
    scale = g.tensor(f"{name}.scale", np.array(1.0 / math.sqrt(cfg.head_dim), np.float32))
    scores = g.op("Add", [g.op("Mul", [scores, scale]), mask])
    context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    context = g.op("Transpose", [context], perm=[0, 2, 1, 3])
    merged = g.op("Reshape", [context, g.tensor(f"{name}.merge_shape", np.array([0, 0, h], np.int64))])
    return _linear(g, merged, f"{name}.output", h, h, cfg.std)


def _encoder_layer(g: _GraphBuilder, x: str, mask: str, index: int, cfg: _EncoderConfig) -> str:
    """Post-LN BERT block: LN(x + attn(x)), then LN(h + FFN(h))."""
    name = f"layer{index}"
    h = _layer_norm(g, g.op("Add", [x, _attention(g, x, mask, f"{name}.attention", cfg)]), f"{name}.norm1", cfg)
    ffn = _gelu(g, _linear(g, h, f"{name}.ffn.in", cfg.hidden, cfg.ffn, cfg.std))
    ffn = _linear(g, ffn, f"{name}.ffn.out", cfg.ffn, cfg.hidden, cfg.std)
    return _layer_norm(g, g.op("Add", [h, ffn]), f"{name}.norm2", cfg)


def _build_encoder(seed: int) -> onnx.ModelProto:
    """A BERT-style encoder small enough to build in well under a second, but
    with the real operator mix (Gather, LayerNorm, MatMul, Softmax, Erf)."""
    cfg = _EncoderConfig()
    g = _GraphBuilder("encoder", seed)
    mask = _mask_bias(g, cfg)
    h = _embeddings(g, cfg)
    for i in range(cfg.layers):
        h = _encoder_layer(g, h, mask, i, cfg)
    g.op("Identity", [h], ["last_hidden_state"])
    first = g.op("Gather", ["last_hidden_state", "const_0"], axis=1)
    pooled = _linear(g, first, "pooler", cfg.hidden, cfg.hidden, cfg.std)
    g.op("Tanh", [pooled], ["pooled"])
    ids = [_BATCH, _SEQUENCE]
    return g.model(
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ids),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ids),
        ],
        [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*ids, cfg.hidden]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [_BATCH, cfg.hidden]),
        ],
    )


# ---------------------------------------------------------------------------
# Registry and public API
# ---------------------------------------------------------------------------


def _finish(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Pin IR 8: onnx >= 1.19 writes IR 11+, which older runtimes
    (onnxruntime-openvino 1.24) refuse to load."""
    model.ir_version = IR_VERSION
    model.producer_name = "harness.builtin_models"
    model.graph.name = name
    model.doc_string = f"builtin:{name} - seeded random weights, not a trained model"
    return model


_HANDWRITTEN: Mapping[str, tuple[Callable[[int], onnx.ModelProto], str]] = MappingProxyType(
    {
        "encoder": (_build_encoder, "BERT-style transformer encoder (2 layers, hidden 128, 4 heads, FFN 512, vocab 30522, sequence <= 512)"),
        "mlp": (_build_mlp, "MLP classifier (Gemm 1024-2048-2048-2048-1000 with Relu)"),
        "tiny": (_build_tiny, "tiny MLP (MatMul 16x16 + Add + Relu), for overhead measurements"),
    }
)

NAMES: tuple[str, ...] = tuple(sorted([*_LIGHT_FILES, *_HANDWRITTEN]))


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown builtin model {name!r}; available: {', '.join(NAMES)}")


def build(name: str, seed: int = 0) -> onnx.ModelProto:
    """Build builtin model ``name`` with weights drawn from ``seed``.

    Deterministic: the same (name, seed) always serialises to the same bytes.
    """
    _check_name(name)
    if name in _HANDWRITTEN:
        return _HANDWRITTEN[name][0](seed)
    return _build_light(name, seed)


def _signature(values: Iterable[onnx.ValueInfoProto]) -> str:
    parts = []
    for value in values:
        tensor = value.type.tensor_type
        dims = ",".join(d.dim_param or str(d.dim_value) for d in tensor.shape.dim)
        parts.append(f"{value.name} {helper.tensor_dtype_to_np_dtype(tensor.elem_type).name}[{dims}]")
    return ", ".join(parts)


def _format_count(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e5 else f"{count / 1e3:.1f}K" if count >= 1e3 else str(count)


def describe(name: str) -> str:
    """One line for listings: architecture, parameter count and I/O signature.

    Light models are described from their skeleton, so this does not pay for
    generating (for vgg19) half a gigabyte of random weights.
    """
    _check_name(name)
    if name in _HANDWRITTEN:
        builder, summary = _HANDWRITTEN[name]
        model = builder(0)
        weights = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT)
        graph = model.graph
        inputs = list(graph.input)
    else:
        summary = _LIGHT_SUMMARIES[name] + " (ONNX backend-test graph, seeded random weights)"
        skeleton = _light_skeleton(name)
        weights = sum(spec.size for spec in skeleton.weights.values())
        graph = skeleton.model.graph
        inputs = [i for i in graph.input if i.name not in skeleton.weights]
    return f"{name}: {summary}; {_format_count(weights)} params; {_signature(inputs)} -> {_signature(graph.output)}"
