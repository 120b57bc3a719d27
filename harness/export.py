"""Export results to pytest-benchmark's JSON format.

Users already on pytest-benchmark (its ``compare`` command, ``--benchmark-compare-fail``,
github-action-benchmark's ``pytest`` tool, Bencher, CodSpeed importers) read this format.
Each ok case becomes one benchmark whose rounds are the harness's raw per-inference samples,
converted to SECONDS as pytest-benchmark stores them; the statistics are computed by
pytest-benchmark's own ``Stats`` class, so quartiles, outlier counts and ``ops`` mean exactly
what they mean there. Failed and unavailable cases are left out, as pytest-benchmark leaves
out benchmarks that errored; they are counted in the return value so the CLI can say so.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_benchmark import __version__ as PYTEST_BENCHMARK_VERSION
from pytest_benchmark.stats import Stats

from .errors import InputError
from .results import CaseRecord, Run

TIMER = "harness.worker: time.perf_counter_ns around session.run"


def machine_info(document: Run) -> dict[str, Any]:
    """pytest-benchmark's machine_info keys, filled from the machine that ran the suite."""
    env = document.environment
    return {
        "node": env.get("hostname"),
        "processor": env.get("cpu_model"),
        "machine": env.get("machine"),
        "python_compiler": "",
        "python_implementation": "CPython",
        "python_implementation_version": env.get("python"),
        "python_version": env.get("python"),
        "python_build": [],
        "release": (env.get("os") or "").partition(" ")[2],
        "system": (env.get("os") or "").partition(" ")[0],
        "cpu": {"brand_raw": env.get("cpu_model"), "count": env.get("cpu_count_logical"),
                "flags": env.get("cpu_flags") or []},
        "harness_fingerprint": env.get("fingerprint"),
    }


def commit_info(document: Run, commit: str | None, branch: str | None) -> dict[str, Any]:
    """The results file does not know the commit; the caller may (``--commit``), else 'unversioned'."""
    return {"id": commit or "unversioned", "time": None, "author_time": None, "dirty": False,
            "project": document.suite.name, "branch": branch or "(unknown)",
            "harness_run_id": document.run_id}


def benchmark_stats(samples_ms: list[float], include_data: bool) -> dict[str, Any]:
    stats = Stats()
    for value in samples_ms:
        stats.update(value / 1000.0)
    out = {k: _plain(v) for k, v in stats.as_dict().items()}
    if include_data:
        out["data"] = [v / 1000.0 for v in samples_ms]
    out["iterations"] = 1
    return out


def _plain(value: Any) -> Any:
    return float(value) if hasattr(value, "item") else value


def benchmark_entry(document: Run, record: CaseRecord, include_data: bool) -> dict[str, Any]:
    suite = document.suite.name
    measure = document.settings.get("measure") or {}
    params = {"variant": record.variant, "target": record.target, **record.params}
    return {
        "group": record.model,
        "name": record.case_id,
        "fullname": f"{suite}::{record.case_id}",
        "params": params,
        "param": "-".join(f"{k}={v}" for k, v in params.items()),
        "extra_info": extra_info(record),
        "options": {"disable_gc": False, "timer": TIMER, "min_rounds": measure.get("min_iterations"),
                    "max_time": measure.get("max_s"), "min_time": measure.get("min_s"),
                    "warmup": measure.get("warmup_s"), "precision": measure.get("precision"),
                    "repeats": measure.get("repeats")},
        "stats": benchmark_stats(record.samples_ms, include_data),
    }


def extra_info(record: CaseRecord) -> dict[str, Any]:
    """What pytest-benchmark has no field for, but a reader of the numbers needs."""
    runtime = record.runtime
    accuracy = {k: v for k, v in record.accuracy.to_json().items() if k != "outputs"} if record.accuracy else None
    placement = record.placement
    latency = record.latency_ms
    return {
        "case_id": record.case_id,
        "model": record.model,
        "variant": record.variant,
        "target": record.target,
        "provider": (runtime.providers_assigned or runtime.providers_requested or [None])[0],  # type: ignore[list-item]
        "onnxruntime_version": runtime.onnxruntime_version,
        "latency_ms": {k: getattr(latency, k) if latency else None for k in ("p50", "p90", "p99", "mean")},
        "throughput": record.throughput.to_json() if record.throughput else None,
        "memory_mb": record.memory_mb.to_json() if record.memory_mb else None,
        "accuracy": accuracy or None,
        "placement": {"fraction_on_requested": placement.fraction_on_requested, "nodes": placement.nodes,
                      "partial_fallback": placement.partial_fallback, "unit": placement.unit} if placement else None,
        "precision": record.precision.to_json() if record.precision else None,
        "unstable": record.measurement.unstable if record.measurement else [],
        "notes": record.notes,
        "timer": TIMER,
    }


def to_pytest_benchmark(documents: list[Run], commit: str | None = None, branch: str | None = None,
                        include_data: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
    """(the JSON document, cases left out by why: not ok, or a LoadGen serving case, whose latency
    is LoadGen's summary and has no samples for pytest-benchmark's statistics)."""
    if not documents:
        raise InputError("nothing to export")
    seen: set[str] = set()
    benchmarks: list[dict[str, Any]] = []
    skipped = {"failed/unavailable": 0, "serving (LoadGen)": 0}
    for document in documents:
        for record in document.cases:
            if not record.ok or not record.samples_ms:
                skipped["serving (LoadGen)" if record.ok and record.serving else "failed/unavailable"] += 1
                continue
            entry = benchmark_entry(document, record, include_data)
            if entry["fullname"] in seen:
                raise InputError(f"{document.source}: case {record.case_id} appears in more than one "
                                 "results file; export one run at a time")
            seen.add(entry["fullname"])
            benchmarks.append(entry)
    first = documents[0]
    return {
        "machine_info": machine_info(first),
        "commit_info": commit_info(first, commit, branch),
        "benchmarks": benchmarks,
        "datetime": first.started_at or datetime.now(UTC).isoformat(),
        "version": PYTEST_BENCHMARK_VERSION,
        "harness": {"exported_by": f"python {platform.python_version()}",
                    "runs": [d.run_id for d in documents]},
    }, skipped


def write_table(documents: list[Run], output: Path, fmt: str) -> int:
    """One row per case, the columns of ``harness.results.load``, for notebooks and BI tools.

    Parquet keeps ``samples_ms`` as a list column; CSV has no lists, so there it is a JSON array
    in one cell (``json.loads`` gives it back)."""
    import io
    import json

    from .files import write_atomic_bytes, write_atomic_text
    from .results import to_frame

    if not documents:
        raise InputError("nothing to export")
    frame = to_frame(documents)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("--format parquet needs pyarrow: pip install 'onnx-harness[parquet]' "
                             "(or use --format csv)") from None
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_atomic_bytes(output, buffer.getvalue())
    else:
        frame["samples_ms"] = [json.dumps(v) if isinstance(v, list) else "" for v in frame["samples_ms"]]
        write_atomic_text(output, frame.to_csv(index=False))
    return len(frame)
