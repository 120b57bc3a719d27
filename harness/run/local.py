"""Run one worker process locally, with a timeout, and take its peak memory from the kernel.

The worker gets its own session (process group) so that a hang or Ctrl-C can be dealt
with here: on timeout the whole group is killed and the case fails alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGKILL if the harness dies (Linux), so a
    SIGKILLed or crashed parent never leaves a worker measuring on its own."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@dataclass
class WorkerOutcome:
    result: dict[str, Any] | None
    returncode: int | None
    signal: int | None
    timed_out: bool
    peak_rss_mb: float | None
    wall_s: float
    stderr_tail: list[str]
    memory_limit_mb: float | None = None  # set when the watchdog killed the worker for passing it

    def failure_reason(self, timeout_s: float) -> str:
        if self.timed_out:
            return f"timeout after {timeout_s:g} s"
        if self.memory_limit_mb is not None:
            return (f"out of memory: the worker's RSS passed {self.memory_limit_mb:,.0f} MB (measure.memory_limit_mb; "
                    "default 80% of this machine's memory)")
        tail = " | ".join(self.stderr_tail[-3:])
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.Signals._value2member_map_ else str(self.signal)
            hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if self.signal == signal.SIGKILL else ""
            return f"worker killed by {name}{hint}" + (f": {tail}" if tail else "")
        return f"worker exited with code {self.returncode} without a result" + (f": {tail}" if tail else "")


MEMORY_POLL_S = 0.25  # a /proc read four times a second: negligible next to a measuring worker


def default_memory_limit_mb() -> float:
    """80% of the machine's memory: one case must not take the machine (and the run) down."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        import psutil

        total = psutil.virtual_memory().total
    return 0.8 * total / 2**20


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_worker(python: str, case: dict[str, Any], workdir: Path, timeout_s: float,
               memory_limit_mb: float | None = None) -> WorkerOutcome:
    """One worker process: its result, or how it failed (timeout, memory limit, crash)."""
    case_path, result_path, log_path = workdir / "case.json", workdir / "result.json", workdir / "worker.log"
    case_path.write_text(json.dumps(case))
    result_path.unlink(missing_ok=True)
    env = dict(os.environ)
    # Put the harness package (worker + numpy-only stats) on the runtime's path, first.
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [python, "-m", "harness.worker", str(case_path), str(result_path)]
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=workdir, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        _kill_group(proc.pid)

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    limit = memory_limit_mb or default_memory_limit_mb()
    over_limit = threading.Event()
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(MEMORY_POLL_S):
            rss = rss_mb(proc.pid)
            if rss is not None and rss > limit:
                over_limit.set()
                _kill_group(proc.pid)
                return

    watchdog = threading.Thread(target=watch_memory, daemon=True)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C, SIGTERM: take the worker down with us, then let the runner finish up
        _kill_group(proc.pid)
        os.wait4(proc.pid, 0)
        proc.returncode = -1
        raise
    finally:
        timer.cancel()
        done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.perf_counter() - started
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    result = None
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text())
        except json.JSONDecodeError:
            result = None
    tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-20:]
    killed = timed_out.is_set() or over_limit.is_set()
    return WorkerOutcome(result=None if killed else result, returncode=proc.returncode,
                         signal=-proc.returncode if proc.returncode < 0 else None, timed_out=timed_out.is_set(),
                         peak_rss_mb=peak, wall_s=wall_s, stderr_tail=tail,
                         memory_limit_mb=limit if over_limit.is_set() else None)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
