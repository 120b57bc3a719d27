"""pytest-benchmark export: the format that tool saves, in seconds, readable by its own CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import stats
from harness.errors import InputError
from harness.export import to_pytest_benchmark
from harness.results import Run, write_document

PYTEST_BENCHMARK_CLI = Path(sys.executable).with_name("pytest-benchmark")


def results(scale: float, run_id: str) -> Run:
    rng = np.random.default_rng(7)
    samples = [float(x) for x in scale * (1.0 + rng.lognormal(-1.5, 0.4, 3000))]
    ok = {"case_id": "m/fp16/cpu/batch=1", "model": "m", "variant": "fp16", "target": "cpu",
          "params": {"batch": 1}, "status": "ok", "runtime": {"onnxruntime_version": "1.32.0",
                                                              "providers_assigned": ["CPUExecutionProvider"]},
          "latency_ms": stats.summarize(samples), "throughput": {"samples_per_s": 900.0, "inferences_per_s": 900.0},
          "memory_mb": {"peak_rss": 120.0}, "accuracy": {"cosine": 0.9999, "top1": 1.0, "outputs": {"y": {}}},
          "placement": {"fraction_on_requested": 1.0, "nodes": {"CPUExecutionProvider": 3}},
          "measurement": {"iterations": len(samples), "unstable": []}, "samples_ms": samples}
    failed = {"case_id": "m/fp32/cuda/batch=1", "model": "m", "variant": "fp32", "target": "cuda",
              "params": {"batch": 1}, "status": "unavailable", "reason": "no GPU"}
    run = Run.from_json({"schema_version": 2, "run_id": run_id, "started_at": "2026-11-26T20:00:00Z", "suite": {"name": "s"},
            "settings": {"measure": {"min_iterations": 100, "min_s": 1, "max_s": 5, "warmup_s": 0.5}},
            "environment": {"hostname": "vm", "cpu_model": "AMD EPYC", "os": "Linux 6.1", "machine": "x86_64",
                            "python": "3.11.7", "fingerprint": "abc"},
            "cases": [ok, failed]})
    run.source = f"{run_id}.json"
    return run


def test_stats_are_pytest_benchmarks_in_seconds() -> None:
    doc = results(1.0, "a")
    exported, skipped = to_pytest_benchmark([doc], commit="deadbeef")
    assert skipped == {"failed/unavailable": 1, "serving (LoadGen)": 0}  # as pytest-benchmark leaves out errors
    assert set(exported) >= {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert exported["commit_info"]["id"] == "deadbeef"
    (bench,) = exported["benchmarks"]
    samples_s = np.asarray(doc.cases[0].samples_ms) / 1000.0
    stats = bench["stats"]
    for key in ("min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3", "iqr_outliers",
                "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops", "total", "iterations"):
        assert key in stats, key
    assert stats["min"] == pytest.approx(samples_s.min())
    assert stats["median"] == pytest.approx(np.median(samples_s))
    assert stats["rounds"] == samples_s.size and stats["iterations"] == 1
    assert stats["ops"] == pytest.approx(1 / samples_s.mean())
    assert "data" not in stats
    assert bench["group"] == "m" and bench["name"] == "m/fp16/cpu/batch=1"
    assert bench["fullname"] == "s::m/fp16/cpu/batch=1"
    assert bench["params"] == {"variant": "fp16", "target": "cpu", "batch": 1}
    info = bench["extra_info"]
    assert info["memory_mb"]["peak_rss"] == 120.0 and info["accuracy"]["cosine"] == 0.9999
    assert "outputs" not in info["accuracy"] and info["placement"]["fraction_on_requested"] == 1.0
    json.dumps(exported, allow_nan=False)


def test_data_on_request() -> None:
    exported, _ = to_pytest_benchmark([results(1.0, "a")], include_data=True)
    assert len(exported["benchmarks"][0]["stats"]["data"]) == 3000


def test_the_same_case_twice_is_refused() -> None:
    with pytest.raises(InputError, match="more than one results file"):
        to_pytest_benchmark([results(1.0, "a"), results(1.0, "b")])


def test_pytest_benchmark_compare_reads_the_export(tmp_path: Path) -> None:
    for name, scale in (("a", 1.0), ("b", 1.3)):
        exported, _ = to_pytest_benchmark([results(scale, name)])
        (tmp_path / f"{name}.json").write_text(json.dumps(exported))
    proc = subprocess.run([str(PYTEST_BENCHMARK_CLI), "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                           "--group-by", "name", "--columns", "min,median,mean,ops,rounds"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("m/fp16/cpu/batch=1 (")]
    assert len(rows) == 2 and rows[0].split()[-1] == "3000"  # both files, rounds = samples


def test_export_command(tmp_path: Path) -> None:
    path = write_document(tmp_path / "r.jsonl", results(1.0, "r"))
    harness = Path(sys.executable).with_name("harness")
    proc = subprocess.run([str(harness), "export", "--format", "pytest-benchmark", str(path), "-o",
                           str(tmp_path / "out.json")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 failed/unavailable cases left out" in proc.stdout
    assert json.loads((tmp_path / "out.json").read_text())["benchmarks"][0]["stats"]["rounds"] == 3000
    proc = subprocess.run([str(harness), "export", "--format", "xlsx", str(path), "-o", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown" in proc.stderr and "csv, parquet" in proc.stderr


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_load_back_in_pandas_with_the_columns_of_load(tmp_path: Path, fmt: str) -> None:
    import pandas as pd

    from harness.results import load

    path = write_document(tmp_path / "r.jsonl", results(1.0, "r"))
    harness = Path(sys.executable).with_name("harness")
    out = tmp_path / f"cases.{fmt}"
    proc = subprocess.run([str(harness), "export", "--format", fmt, str(path), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "wrote 2 cases" in proc.stdout, proc.stdout + proc.stderr
    expected = load(path)
    table = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert list(table.columns) == list(expected.columns) and len(table) == len(expected)
    ok = table[table["status"] == "ok"].iloc[0]
    samples = json.loads(ok["samples_ms"]) if fmt == "csv" else list(ok["samples_ms"])
    assert samples == expected[expected["status"] == "ok"].iloc[0]["samples_ms"]
    assert ok["latency_ms.p50"] == pytest.approx(expected[expected["status"] == "ok"].iloc[0]["latency_ms.p50"])
