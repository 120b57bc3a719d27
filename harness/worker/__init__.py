"""The worker: measures one case in a fresh process, inside the target's runtime.

Run as ``<runtime python> -m harness.worker CASE.json RESULT.json``. Every module of this
package imports only the standard library, numpy, onnxruntime and ``harness.stats`` (itself
numpy-only), because it runs in environments that hold some other onnxruntime build and
nothing else; a test pins that rule. ``serving`` imports ``mlperf_loadgen`` too, inside the
function that runs a LoadGen scenario, so only those cases need it. This file imports nothing, so ``-m`` stays cheap.
"""
