"""The timed loops, warm-up, and what the machine did meanwhile (memory, other processes' CPU).

Part of the worker: standard library, numpy and onnxruntime only.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from .. import stats


def rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        try:
            import psutil  # optional in runtimes

            return psutil.Process().memory_info().rss / 2**20
        except Exception:
            return None


def peak_rss_mb() -> float | None:
    """This process's own peak RSS (VmHWM), or None off Linux.

    Not ru_maxrss: Linux starts a spawned child's ru_maxrss at its PARENT's high-water mark
    (the vfork'd copy's mm is recorded at exec), so a 500 MB harness parent would make every
    worker look at least 500 MB big. VmHWM belongs to the mm created by exec: the worker's alone.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None

def run_until(run: Any, m: dict[str, Any]) -> tuple[list[int], int, int, str, bool]:
    """Single-stream loop: time only ``run``; stop on min count AND min time, or precision, or max time."""
    samples: list[int] = []
    append = samples.append
    clock = time.perf_counter_ns
    min_n, precision = m["min_iterations"], m.get("precision")
    start = clock()
    min_end, max_end = start + int(m["min_s"] * 1e9), start + int(m["max_s"] * 1e9)
    next_check, precision_met, reason = 0, False, "max_s"
    while True:
        t0 = clock()
        run()
        t1 = clock()
        append(t1 - t0)
        if t1 >= max_end:
            break
        if t1 >= min_end and len(samples) >= min_n:
            if precision is None:
                reason = "minimums"
                break
            if len(samples) >= next_check:
                next_check = len(samples) + max(50, len(samples) // 10)
                if stats.relative_precision_reached(samples, precision):
                    precision_met, reason = True, "precision"
                    break
    end = clock()
    return samples, start, end, reason, precision_met


def run_streams(run: Any, m: dict[str, Any], streams: int) -> tuple[list[int], int, int, str, bool]:
    """N closed-loop streams sharing one session, like perf_test -c / benchmark_app infer requests."""
    clock = time.perf_counter_ns
    per_stream: list[list[tuple[int, int]]] = [[] for _ in range(streams)]
    stop = threading.Event()
    gate = threading.Barrier(streams + 1)

    def loop(out: list[tuple[int, int]]) -> None:
        gate.wait()
        while not stop.is_set():
            t0 = clock()
            run()
            out.append((t0, clock()))

    threads = [threading.Thread(target=loop, args=(out,), daemon=True) for out in per_stream]
    for thread in threads:
        thread.start()
    gate.wait()
    start = clock()
    reason = "max_s"
    while True:
        time.sleep(0.005)
        now = clock()
        if now - start >= m["max_s"] * 1e9:
            break
        if now - start >= m["min_s"] * 1e9 and sum(map(len, per_stream)) >= m["min_iterations"]:
            reason = "minimums"
            break
    stop.set()
    for thread in threads:
        thread.join()
    pairs = sorted(p for out in per_stream for p in out)
    samples = [t1 - t0 for t0, t1 in pairs]
    return samples, pairs[0][0], max(t1 for _, t1 in pairs), reason, False


def warm_up(run: Any, m: dict[str, Any]) -> int:
    count, end = 0, time.perf_counter() + m["warmup_s"]
    while count < m["warmup_iterations"] or time.perf_counter() < end:
        run()
        count += 1
    return count

def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - values[3] - values[4]) / ticks, sum(values) / ticks


def others_cpu_share(before: tuple, after: tuple) -> float | None:
    """Share of the machine's CPU time that OTHER processes used while we measured.

    A load that slows every run alike leaves no trace in the samples; this is how it shows.
    """
    (m0, t0), (m1, t1) = before, after
    if m0 is None or m1 is None or m1[1] <= m0[1]:
        return None
    own = (t1.user + t1.system) - (t0.user + t0.system)
    return max(0.0, min(1.0, ((m1[0] - m0[0]) - own) / (m1[1] - m0[1])))


def run_paired(runs: list[Any], m: dict[str, Any], rng: Any) -> tuple[list[list[int]], list[int], str]:
    """Several sessions in one process, taking turns in short blocks (order shuffled per turn):
    whatever speed this process landed in, and whatever the machine did meanwhile, reaches every
    side alike, so their ratio keeps only the difference between the sessions. Each block starts
    with one untimed run (the other session just had the caches); each side stops on the min
    count AND min time of its own blocks, or all sides on max_s each. Returns per side the samples
    and the time its blocks took, and the stop reason."""
    clock = time.perf_counter_ns
    samples: list[list[int]] = [[] for _ in runs]
    spent = [0] * len(runs)
    block_ns = int(min(max(m["min_s"] / 10, 0.01), 0.1) * 1e9)
    max_end = clock() + int(m["max_s"] * 1e9) * len(runs)
    min_n, min_ns = m["min_iterations"], int(m["min_s"] * 1e9)
    order = list(range(len(runs)))
    while True:
        rng.shuffle(order)
        for side in order:
            run, out = runs[side], samples[side]
            run()
            first = clock()
            end = first + block_ns
            while True:
                t0 = clock()
                run()
                t1 = clock()
                out.append(t1 - t0)
                if t1 >= end:
                    break
            spent[side] += t1 - first
        if all(len(s) >= min_n and ns >= min_ns for s, ns in zip(samples, spent)):
            return samples, spent, "minimums"
        if clock() >= max_end:
            return samples, spent, "max_s"
