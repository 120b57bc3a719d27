"""ONNX's protobuf classes without importing the ``onnx`` package.

``import onnx`` costs 0.1 s to 1.5 s (its C++ extension and ml_dtypes); reading a model's
interface for ``harness validate`` needs only the generated protobuf module. It is loaded
under its real name, ``onnx.onnx_ml_pb2``, so a later ``import onnx`` in the same process
reuses it instead of registering the schema a second time. Any surprise (another onnx layout)
falls back to the real import.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PB2 = "onnx.onnx_ml_pb2"

# TensorProto.DataType -> numpy dtype name, for the types a graph input can have in practice.
DTYPE_NAMES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
               8: "object", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
               14: "complex64", 15: "complex128", 16: "bfloat16"}
INTEGER_RANGES = {"int8": (-2**7, 2**7 - 1), "uint8": (0, 2**8 - 1), "int16": (-2**15, 2**15 - 1),
                  "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
                  "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}


def onnx_pb2() -> ModuleType:
    """The module that defines ModelProto, GraphProto, ... (onnx's own generated code)."""
    if PB2 in sys.modules:
        return sys.modules[PB2]
    try:
        spec = importlib.util.find_spec("onnx")  # locates the package without running its __init__
        if spec is None or spec.origin is None:
            raise ImportError("onnx not found")
        path = Path(spec.origin).parent / "onnx_ml_pb2.py"
        module_spec = importlib.util.spec_from_file_location(PB2, path)
        if module_spec is None or module_spec.loader is None or not path.is_file():
            raise ImportError(f"{path} not found")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[PB2] = module
        module_spec.loader.exec_module(module)
        return module
    except Exception:
        sys.modules.pop(PB2, None)
        import onnx

        return onnx.onnx_ml_pb2


def dtype_name(elem_type: int) -> str:
    """The numpy dtype name of a TensorProto element type (float32 when the graph leaves it out)."""
    if not elem_type:
        return "float32"
    if elem_type in DTYPE_NAMES:
        return DTYPE_NAMES[elem_type]
    import numpy as np
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
