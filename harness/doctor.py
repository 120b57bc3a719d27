"""``harness doctor``: which targets can run on this machine, in which runtime, and why not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .paths import runtimes_dir
from .run.local import PACKAGE_PARENT
from .runtimes import RuntimeUnavailable, create_runtime, ensure_runtime, runtime_name
from .suite import SessionSpec, TargetSpec
from .targets import REGISTRY, Target, resolve_target


def probe_provider(python: str, target: Target, timeout: float = 300) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": PACKAGE_PARENT}
    try:
        proc = subprocess.run([python, "-m", "harness.worker", "--probe", target.provider, json.dumps(target.options),
                               json.dumps(target.plugin)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"provider probe timed out after {timeout:g} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"available": False, "reason": f"provider probe crashed: {tail}"}
    return json.loads(lines[-1])


def check_target(name: str, create: bool, say: Callable[[str], None]) -> dict[str, Any]:
    target = resolve_target(TargetSpec(name=name), SessionSpec(), 0)
    row = {"target": name, "provider": target.provider, "runtime": target.package, "onnxruntime": None,
           "available": False, "reason": None, "loadgen": None}
    problem = target.platform_problem()
    if problem:
        return {**row, "reason": problem}
    managed = target.package != "onnxruntime" or bool(target.plugin)
    folder = runtimes_dir() / runtime_name(target.package, target.version, target.plugin)
    if managed and not (folder / "runtime.json").exists() and not create:
        plugin = f" --plugin {target.plugin['package']}" if target.plugin and target.plugin.get("package") else ""
        return {**row, "reason": f"runtime not created yet: run 'harness runtimes create {target.package}{plugin}' "
                                 "or 'harness doctor --create'"}
    try:
        runtime = ensure_runtime(target, say) if not managed else create_runtime(target.package, target.version, say,
                                                                                 plugin=target.plugin)
    except RuntimeUnavailable as exc:
        return {**row, "reason": str(exc)}
    row["onnxruntime"] = runtime.onnxruntime_version
    row["loadgen"] = ("yes" if runtime.info.get("loadgen") else "on first serving case" if runtime.managed
                      else "no: pip install 'onnx-harness[serving]'")
    row["runtime"] = f"{target.package} ({'managed' if runtime.managed else 'harness env' if runtime.python == sys.executable else runtime.python})"
    return {**row, **{k: v for k, v in probe_provider(runtime.python, target).items() if k != "onnxruntime_version"}}


def doctor(names: list[str] | None, create: bool, say: Callable[[str], None]) -> list[dict[str, Any]]:
    return [check_target(name, create, say) for name in (names or sorted(REGISTRY))]
