"""Runtimes: Python environments that each hold one onnxruntime build.

onnxruntime, onnxruntime-gpu, onnxruntime-openvino and onnxruntime-directml all install the
module ``onnxruntime``; the last one installed wins. Measuring OpenVINO against CPU in one
venv would measure one build twice, so each target runs in an interpreter whose environment
holds its own build: the harness's own for plain onnxruntime, a managed venv under the
cache folder for the others (created on first use, reused after), or one the user names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .paths import MARKER, runtimes_dir
from .targets import Target

PROBE = r"""
import json, sys
info = {"python": sys.executable, "python_version": sys.version.split()[0]}
try:
    import numpy
    info["numpy_version"] = numpy.__version__
except Exception as exc:
    info["error"] = f"numpy does not import: {exc}"
try:
    import onnxruntime as ort
    info["onnxruntime_version"] = ort.__version__
    info["available_providers"] = ort.get_available_providers()
    info["device"] = ort.get_device()
    info["build_info"] = getattr(ort.capi._pybind_state, "get_build_info", lambda: "")()
    ep = {}
    try:
        from onnxruntime.capi import build_and_package_info as bpi
        ep = {k: v for k, v in vars(bpi).items() if not k.startswith("_") and isinstance(v, str)}
    except Exception:
        pass
    import glob, os, re
    for lib in glob.glob(os.path.join(os.path.dirname(ort.__file__), "capi", "libopenvino.so.*.*")):
        match = re.search(r"libopenvino\.so\.(\d+\.\d+\.\d+)$", lib)
        if match:
            ep["openvino_version"] = match.group(1)
    info["ep_versions"] = ep
    try:
        from importlib.metadata import distributions
        info["onnxruntime_packages"] = sorted({d.metadata["Name"] for d in distributions()
                                               if (d.metadata["Name"] or "").lower().startswith("onnxruntime")})
    except Exception:
        info["onnxruntime_packages"] = []
except Exception as exc:
    info["error"] = f"onnxruntime does not import: {exc}"
try:
    import mlperf_loadgen
    info["loadgen"] = True
except Exception:
    info["loadgen"] = False
print(json.dumps(info))
"""


class RuntimeUnavailable(Exception):
    """This target's runtime cannot be had here; the message is the reason shown to users."""


@dataclass(frozen=True)
class Runtime:
    python: str
    package: str
    managed: bool
    info: dict  # what PROBE printed

    @property
    def onnxruntime_version(self) -> str | None:
        return self.info.get("onnxruntime_version")


def runtime_name(package: str, version: str | None, plugin: dict | None = None) -> str:
    """The managed runtime's folder: the onnxruntime build, and a plugin EP's package beside it."""
    name = f"{package}-{version or 'latest'}"
    if plugin and plugin.get("package"):
        name += f"+{plugin['package']}-{plugin.get('version') or 'latest'}"
    return name


def requirements(package: str, version: str | None, plugin: dict | None = None) -> list[str]:
    """What pip installs into a managed runtime, the onnxruntime build first."""
    out = [f"{package}=={version}" if version else package]
    if plugin and plugin.get("package"):
        out.append(f"{plugin['package']}=={plugin['version']}" if plugin.get("version") else plugin["package"])
    return out


def probe(python: str, timeout: float = 120) -> dict:
    try:
        proc = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"cannot start {python}: {exc}"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{python} failed: {last}"}
    lines = proc.stdout.strip().splitlines()
    try:
        info = json.loads(lines[-1])
        if not isinstance(info, dict):
            raise ValueError("not an object")
    except (IndexError, ValueError):
        shown = repr(lines[-1][:80]) if lines else "nothing"
        return {"error": f"{python} printed {shown} instead of a runtime description; it must be a Python "
                         "interpreter with numpy and onnxruntime"}
    return info


def _own_environment_fits(target: Target) -> bool:
    if target.python or target.package != "onnxruntime" or target.plugin:
        return False
    if target.version is None:
        return True
    import onnxruntime

    return onnxruntime.__version__ == target.version


def ensure_runtime(target: Target, say: Callable[[str], None] = lambda _: None) -> Runtime:
    """The runtime for a target, creating a managed one on first use. Raises RuntimeUnavailable."""
    problem = target.platform_problem()
    if problem:
        raise RuntimeUnavailable(problem)
    if target.python:
        python = shutil.which(target.python) or target.python
        if not Path(python).exists():
            raise RuntimeUnavailable(f"runtime.python {target.python} does not exist")
        return _checked(Runtime(python, target.package, False, probe(python)))
    if _own_environment_fits(target):
        return _checked(Runtime(sys.executable, target.package, False, probe(sys.executable)))
    return _checked(create_runtime(target.package, target.version, say, plugin=target.plugin))


def _checked(runtime: Runtime) -> Runtime:
    if "error" in runtime.info:
        raise RuntimeUnavailable(runtime.info["error"])
    return runtime


def create_runtime(package: str, version: str | None, say: Callable[[str], None] = lambda _: None,
                   force: bool = False, plugin: dict | None = None) -> Runtime:
    """Create (or reuse) the managed venv holding ``package[==version]``, a plugin EP's package if
    the target names one, and numpy."""
    folder = runtimes_dir() / runtime_name(package, version, plugin)
    marker = folder / "runtime.json"
    python = str(folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    if marker.exists() and not force and Path(python).exists():
        info = probe(python)  # fresh: versions and providers as they are now, and a broken venv shows
        if "error" not in info:
            say(f"runtime {folder.name}: reusing {folder}")
            return Runtime(python, package, True, {**json.loads(marker.read_text()), **info})
        say(f"runtime {folder.name}: broken ({info['error']}); recreating")
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    say(f"runtime {folder.name}: creating venv in {folder} (first use; reused afterwards)")
    _step([sys.executable, "-m", "venv", str(folder)], say, "venv creation")
    (folder / MARKER).touch()
    wanted = requirements(package, version, plugin)
    requirement = " ".join(wanted)
    # NVML bindings let GPU workers report their own device memory; tiny, pure Python.
    extras = ["numpy"] + (["nvidia-ml-py"] if "gpu" in package else [])
    say(f"runtime {folder.name}: pip install {requirement} {' '.join(extras)}")
    try:
        _step([python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
               *wanted, *extras], say, f"pip install {requirement}")
    except RuntimeUnavailable:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    info = probe(python)
    if "error" in info:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeUnavailable(info["error"])
    info["requirement"] = requirement
    marker.write_text(json.dumps(info, indent=2))
    say(f"runtime {folder.name}: ready (onnxruntime {info.get('onnxruntime_version')}, "
        f"providers {', '.join(info.get('available_providers', []))})")
    return Runtime(python, package, True, info)


LOADGEN_PACKAGE = "mlcommons-loadgen"


def loadgen_problem(runtime: Runtime, say: Callable[[str], None] = lambda _: None) -> str | None:
    """None when the runtime can run LoadGen scenarios, installing LoadGen into a managed runtime
    on first use; otherwise what the user must do."""
    if runtime.info.get("loadgen"):
        return None
    if runtime.managed:
        say(f"runtime {runtime.package}: pip install {LOADGEN_PACKAGE} (first serving scenario)")
        try:
            _step([runtime.python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
                   LOADGEN_PACKAGE], say, f"pip install {LOADGEN_PACKAGE}")
        except RuntimeUnavailable as exc:
            return f"MLPerf LoadGen could not be installed into the runtime: {exc}"
        if probe(runtime.python).get("loadgen"):
            runtime.info["loadgen"] = True
            return None
        return f"{LOADGEN_PACKAGE} installed into {runtime.python} but mlperf_loadgen does not import"
    if runtime.python == sys.executable:
        return ("MLPerf LoadGen is not installed: pip install 'onnx-harness[serving]' (or pip install "
                f"{LOADGEN_PACKAGE}) to run server and offline scenarios")
    return f"runtime.python {runtime.python} lacks MLPerf LoadGen: run '{runtime.python} -m pip install {LOADGEN_PACKAGE}'"


def _step(command: list[str], say: Callable[[str], None], what: str) -> None:
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-20:]
            if line.startswith(("Collecting", "Downloading", "Installing", "Successfully")):
                say("  " + line)
    if proc.wait() != 0:
        errors = [line for line in tail if "ERROR" in line or "error" in line.lower()] or tail or ["no output"]
        raise RuntimeUnavailable(f"{what} failed: {errors[-1].strip()}")


def list_runtimes() -> list[dict]:
    out = []
    if runtimes_dir().exists():
        for folder in sorted(runtimes_dir().iterdir()):
            marker = folder / "runtime.json"
            info = json.loads(marker.read_text()) if marker.exists() else {"error": "incomplete (no runtime.json)"}
            out.append({"name": folder.name, "path": str(folder), **info})
    return out


def remove_runtime(name: str) -> bool:
    """Delete a managed runtime by its plain name; only a folder the harness made (marker file)."""
    from .errors import InputError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name) or name in (".", ".."):
        raise InputError(f"runtime {name!r}: not a runtime name (letters, digits, _ . + -); see 'harness runtimes list'")
    folder = runtimes_dir() / name
    if not folder.is_dir() or folder.is_symlink():
        return False
    if not (folder / MARKER).exists() and not (folder / "runtime.json").exists():
        raise InputError(f"{folder}: not a runtime the harness created (no {MARKER}); remove it by hand if you mean to")
    shutil.rmtree(folder)
    return True
