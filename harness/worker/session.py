"""Sessions as the suite asks for them, the provider probe, and onnxruntime's messages cleaned up.

Part of the worker: standard library, numpy and onnxruntime only.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import plugin
from .protocol import CPU as CPU
from .protocol import GRAPH_OPT

# y = x + x on float32[1, 4], IR 8 / opset 13: loads in every runtime we support. Used to tell
# "this provider cannot run here" (unavailable) from "this model breaks this provider" (failed).
PROBE_MODEL = base64.b64decode("CAg6QQoOCgF4CgF4EgF5IgNBZGQSBXByb2JlWhMKAXgSDgoMCAESCAoCCAEKAggEYhMKAXkSDgoMCAESCAoCCAEKAggEQgQKABAN")


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what onnxruntime's C++ logger, its providers and Python warnings print while creating
    a session: stderr and stdout both (some providers report unknown options on stdout)."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            sys.stderr.write(text)
            lines.extend(line.strip() for line in text.splitlines() if line.strip())
            lines.extend(str(w.message) for w in caught)


def session_options(ort: Any, spec: dict[str, Any], profile_prefix: str | None = None) -> Any:
    options = ort.SessionOptions()
    for key in ("intra_op_num_threads", "inter_op_num_threads", "enable_cpu_mem_arena", "enable_mem_pattern",
                "log_severity_level"):
        if spec.get(key) is not None:
            setattr(options, key, spec[key])
    if spec.get("graph_optimization_level"):
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT[spec["graph_optimization_level"]])
    if spec.get("execution_mode"):
        options.execution_mode = getattr(ort.ExecutionMode, f"ORT_{spec['execution_mode'].upper()}")
    if spec.get("allow_spinning") is not None:
        flag = "1" if spec["allow_spinning"] else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", flag)
        options.add_session_config_entry("session.inter_op.allow_spinning", flag)
    if spec.get("affinity"):
        options.add_session_config_entry("session.intra_op_thread_affinities", spec["affinity"])
    for key, value in (spec.get("config") or {}).items():
        options.add_session_config_entry(key, str(value))
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
        # Which provider each node of the partitioned graph went to (onnxruntime 1.23+; older
        # builds ignore the key and placement falls back to counting profiled kernels).
        options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    return options


def create_session(ort: Any, model: str | bytes, case: dict[str, Any], profile_prefix: str | None = None) -> Any:
    options = session_options(ort, case.get("session") or {}, profile_prefix)
    if case.get("plugin"):  # a plugin EP is bound to one of its devices, not named in providers=
        device = plugin.devices(ort, case["provider"], case["plugin"])[0]
        options.add_provider_for_devices([device], {k: str(v) for k, v in (case.get("provider_options") or {}).items()})
        return ort.InferenceSession(model, sess_options=options)
    providers: list[Any] = [(case["provider"], case.get("provider_options") or {})]
    return ort.InferenceSession(model, sess_options=options, providers=providers)


# Options that pick the hardware: a provider that cannot start with these is missing from the
# machine (unavailable); one that starts with them but not with the rest was given bad options.
DEVICE_OPTIONS = frozenset({"device_type", "device_id", "gpu_device_id", "device", "backend_path"})


def provider_problem(ort: Any, case: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) when the provider cannot run the case here, tried on a trivial model, or None.

    ``unavailable``: not in this build, or it cannot start on this machine's device. ``failed``:
    it starts, but refuses the suite's other provider options (the suite is wrong, not the machine).
    """
    provider = case["provider"]
    available = ort.get_available_providers()
    if case.get("plugin"):
        try:
            plugin.devices(ort, provider, case["plugin"])
        except plugin.PluginUnavailable as exc:
            return "unavailable", str(exc)
    elif provider not in available:
        return "unavailable", (f"{provider} is not in this onnxruntime build (onnxruntime {ort.__version__} "
                               f"provides {', '.join(available)})")
    options = case.get("provider_options") or {}
    device = {k: v for k, v in options.items() if k in DEVICE_OPTIONS}
    problem = _probe(ort, {**case, "provider_options": device})
    if problem:
        return "unavailable", problem
    if options != device:
        problem = _probe(ort, case, every_line=True)
        if problem:
            return "failed", f"{provider} refused the provider options {options}: {problem}"
    return None


def _probe(ort: Any, case: dict[str, Any], every_line: bool = False) -> str | None:
    provider = case["provider"]
    with captured_stderr() as lines:
        try:
            session = create_session(ort, PROBE_MODEL, {**case, "session": {}})
            assigned = session.get_providers()
            session.run(None, {"x": np.ones((1, 4), np.float32)})
            error = None
        except Exception as exc:
            assigned, error = [], f"{type(exc).__name__}: {exc}"
    if error:
        return f"{provider} failed to start: {first_line(clean(error))}"
    if provider not in assigned:
        return f"onnxruntime fell back to {', '.join(assigned)}: {explain(lines, every_line) or 'no reason given'}"
    return None


def first_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


ANSI = re.compile(r"\x1b\[[0-9;]*m|\[[0-9;]*m")
# "2026-11-26 20:47:17.39 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \[[EWIV]:onnxruntime:[^\]]*\]\s*")
SOURCE_PREFIX = re.compile(r"^/\S+\.(cc|cpp|h):\d+ .*?\[(ONNXRuntimeError\] : \d+ : \w+ :|ERROR\]) ")
ORT_ERROR = re.compile(r"^(\w+: )?\[ONNXRuntimeError\] : \d+ : \w+ : ")
LIBRARY_PATH = re.compile(r"/\S+/(lib[\w.+-]+\.(so|dylib|dll)[\w.]*)")
# "EP Error /onnxruntime/.../onnxruntime_pybind_state.cc:1053 std::shared_ptr<...> Foo(const A&, ...) Invalid option: x"
EP_ERROR = re.compile(r"^EP Error \S+\.(cc|cpp|h):\d+ .*?\(.*?\) ")
# onnxruntime's fallback banner: the reason is elsewhere
NOISE = re.compile(r"^(\*+( EP Error \*+)?|when using \[.*|Falling back to \[.*)$")


def clean(line: str) -> str:
    """One log line without colour codes, timestamps and source paths: just what went wrong."""
    line = LOG_PREFIX.sub("", ANSI.sub("", line).strip())
    line = ORT_ERROR.sub("", SOURCE_PREFIX.sub("", EP_ERROR.sub("", line)))
    return "" if NOISE.match(line) else LIBRARY_PATH.sub(r"\1", line)


def explain(lines: list[str], every_line: bool = False) -> str:
    """The lines of onnxruntime's output that say what went wrong, newest first (all of them with
    ``every_line``: a provider's complaint about an option rarely says "error")."""
    keys = ("error", "fail", "not ", "unable", "cannot", "missing", "unsupported", "no such", "require")
    lines = [clean(line) for line in lines if clean(line)]
    picked = lines if every_line else [line for line in lines if any(k in line.lower() for k in keys)] or lines
    unique = list(dict.fromkeys(picked))
    return first_line(" | ".join(unique[-3:]))
