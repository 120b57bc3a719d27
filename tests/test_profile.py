"""Per-operator profiles from onnxruntime's profiler in the untimed pass, on a real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import only_results, run_cli


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("profiled")
    suite = folder / "prof.yaml"
    suite.write_text("""
name: prof
models: [{name: squeezenet, source: "builtin:squeezenet"}]
session: {intra_op_num_threads: 1}
measure: {warmup_s: 0, warmup_iterations: 2, min_iterations: 10, min_s: 0.1, max_s: 2, repeats: 1}
""")
    out = run_cli("run", suite, "-o", folder / "r")
    assert out.returncode == 0, out.stdout + out.stderr
    return folder / "r"


def test_every_ok_case_carries_an_op_type_breakdown(profiled: Path) -> None:
    (case,) = only_results(profiled)["cases"]
    profile = case["profile"]
    assert profile["runs"] == 5 and profile["kernel_ms"] > 0
    by_op = profile["by_op_type"]
    assert "Conv" in by_op and max(by_op, key=lambda op: by_op[op]["ms"]) == "Conv"  # SqueezeNet is convolutions
    assert sum(v["ms"] for v in by_op.values()) == pytest.approx(profile["kernel_ms"], rel=0.10)
    assert sum(v["share"] for v in by_op.values()) == pytest.approx(1.0)
    # The kernels are most of the profiled run's wall time, never more than it.
    assert 0.5 * profile["model_run_ms"] <= profile["kernel_ms"] <= 1.05 * profile["model_run_ms"], profile
    # Placement counts the graph as partitioned (68 nodes); the profile times kernels, after the
    # CPU provider fused Conv+Relu (43).
    assert case["placement"]["unit"] == "graph nodes" and case["placement"]["total"] == 68
    assert sum(v["nodes"] for v in by_op.values()) == 43
    assert len(profile["top_nodes"]) == 10 and profile["fallback_nodes"] == []
    table = json.loads(Path(profile["table"]).read_text())
    assert table["case_id"] == case["case_id"] and len(table["nodes"]) == 43
    assert [n["ms"] for n in table["nodes"]] == sorted((n["ms"] for n in table["nodes"]), reverse=True)


def test_harness_profile_prints_the_table_and_refuses_an_unknown_case(profiled: Path) -> None:
    out = run_cli("profile", profiled, "--case", "squeezenet/fp32/cpu/batch=1", "--top", "3")
    assert out.returncode == 0, out.stderr
    assert "time per operator type" in out.stdout and "Conv" in out.stdout and "slowest nodes (of 43)" in out.stdout
    bad = run_cli("profile", profiled, "--case", "nope/fp32/cpu/batch=1")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "--case nope/fp32/cpu/batch=1: not in the results" in lines[0]


def test_the_report_shows_where_the_time_goes(profiled: Path, tmp_path: Path) -> None:
    from harness.report.html import write_report

    html = write_report([profiled], tmp_path / "r.html").read_text()
    assert "Where the time goes (kernel time by operator type)" in html and "harness profile RESULTS --case ID" in html
