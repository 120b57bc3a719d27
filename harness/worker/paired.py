"""Both sides of an A/B pair measured in one worker process (``harness ab``, mode "paired").

On these VMs a process lands in a speed mode, decided at its start, that moves every figure it
measures by up to 40%. Two processes compared with each other carry two modes; two sessions in
one process, taking turns in short blocks, carry the same one, and their ratio keeps only the
difference between the models. Each side's result has the shape of a plain worker's, except
memory: the process holds both sessions, so no memory figure belongs to one side.

Part of the worker: standard library, numpy and onnxruntime only.
"""

from __future__ import annotations

import gc
import os
import random
import time
from typing import Any

from .. import stats
from .loops import machine_cpu_seconds, others_cpu_share, run_paired, warm_up
from .measure import import_onnxruntime, open_session


def measure_paired(job: dict[str, Any]) -> dict[str, Any]:
    """{"status": "ok", "sides": [result, ...]}; or the failure of the first side that cannot run,
    with "side" its index."""
    sides: list[dict[str, Any]] = job["sides"]
    rng = random.Random(job.get("order_seed"))
    results: list[dict[str, Any]] = [{"status": "failed"} for _ in sides]
    opened: list[Any] = [None] * len(sides)
    # Sessions are opened in a random order too: the first one's memory lands elsewhere than the
    # second's, and that must not favour one side in every round.
    imported = None
    for index in rng.sample(range(len(sides)), len(sides)):
        ort = import_onnxruntime(sides[index], results[index])
        # The process imports once; the second import is a dictionary lookup. Both sides carry
        # the one real figure rather than one of them a cold start of ~0 ms.
        imported = imported if imported is not None else results[index]["timings_ms"]["import_onnxruntime"]
        results[index]["timings_ms"]["import_onnxruntime"] = imported
        got = open_session(ort, sides[index], results[index])
        if isinstance(got, dict):
            return {**got, "side": index}
        opened[index] = got
    runs, firsts, warmups = [], [], []
    for session, feeds, _ in opened:
        def run(session: Any = session, feeds: dict[str, Any] = feeds) -> Any:
            return session.run(None, feeds)

        t = time.perf_counter()
        run()
        firsts.append((time.perf_counter() - t) * 1e3)
        runs.append(run)
    m = job["measure"]
    for run in runs:
        warmups.append(warm_up(run, m))
    gc.collect()
    load_before = machine_cpu_seconds(), os.times()
    gc.disable()  # a collection inside the timed loop is the harness's noise, not the model's
    try:
        samples, spent, reason = run_paired(runs, m, rng)
    finally:
        gc.enable()
    other_load = others_cpu_share(load_before, (machine_cpu_seconds(), os.times()))
    precision = m.get("precision")
    out = []
    for index, result in enumerate(results):
        wall_s = spent[index] / 1e9
        n = len(samples[index])
        result.update(
            status="ok",
            samples_ms=[round(s / 1e6, 6) for s in samples[index]],
            timings_ms={**result["timings_ms"], "session_create": opened[index][2], "first_inference": firsts[index]},
            memory_mb={"rss_start": None, "rss_after_session": None, "rss_after_warmup": None, "rss_end": None,
                       "peak_rss": None},
            loop={"iterations": n, "warmup_iterations": warmups[index], "wall_s": wall_s, "stop_reason": reason,
                  "precision_met": bool(precision) and stats.relative_precision_reached(samples[index], precision),
                  "streams": 1, "minimums_met": n >= m["min_iterations"] and wall_s >= m["min_s"],
                  "other_processes_cpu": other_load, "inferences_per_s": n / wall_s if wall_s > 0 else None,
                  "paired_with": sides[1 - index]["case_id"] if len(sides) == 2 else None},
        )
        out.append(result)
    return {"status": "ok", "sides": out}
