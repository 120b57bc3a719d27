"""ONNX cross-hardware benchmarking harness.

Kept import-free on purpose: the worker runs ``python -m harness.worker`` inside
other runtimes' environments, where only numpy and onnxruntime exist.
"""

__version__ = "0.1.0"
