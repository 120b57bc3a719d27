"""harness compare on real runs of a small suite on this (shared, noisy) machine.

Three short runs are shared by the tests: two of the same suite, and one where the model
``mid`` is twice as deep under the same case name (same weights, so the same memory).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.results import read, write_document

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SLOW_CASE = "mid/fp32/cpu/batch=1"
FAST_CASE = "tiny/fp32/cpu/batch=1"


def mlp(path: Path, width: int, weights: int, layers: int) -> None:
    """MatMul+Relu stack; layers beyond ``weights`` reuse the same initializers (more compute, same bytes)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32),
                                     f"w{i}") for i in range(weights)]
    nodes, prev = [], "x"
    for i in range(layers):
        out = "y" if i == layers - 1 else f"h{i}"
        nodes += [helper.make_node("MatMul", [prev, f"w{i % weights}"], [f"m{i}"]),
                  helper.make_node("Relu", [f"m{i}"], [out])]
        prev = out
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


SUITE = """name: cmp
models:
  - {{name: tiny, path: tiny.onnx}}
  - {{name: mid, path: {mid}}}
variants: [fp32]
targets: [cpu]
measure: {{min_s: 0.3, min_iterations: 50, warmup_s: 0.05, max_s: 1, repeats: 3}}
session: {{intra_op_num_threads: 1}}
"""


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "harness"), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def run_suite(folder: Path, suite: str, out: Path) -> Path:
    proc = harness("run", str(folder / suite), "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("*.jsonl")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("suite")
    mlp(folder / "tiny.onnx", 64, 2, 2)
    mlp(folder / "mid.onnx", 256, 4, 4)
    mlp(folder / "mid_deeper.onnx", 256, 4, 8)
    (folder / "same.yaml").write_text(SUITE.format(mid="mid.onnx"))
    (folder / "slow.yaml").write_text(SUITE.format(mid="mid_deeper.onnx"))
    return {"folder": folder,
            "base": run_suite(folder, "same.yaml", folder / "base"),
            "again": run_suite(folder, "same.yaml", folder / "again"),
            "slow": run_suite(folder, "slow.yaml", folder / "slow")}


def verdicts(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["verdicts"]


def test_two_runs_of_the_same_suite_compare_clean(runs: dict[str, Any], tmp_path: Path) -> None:
    """No false discovery on any metric, allowing two re-measurements: on this VM two runs made
    seconds apart sometimes differ by 5-9% as a whole, p5 included (issue 16; measured 6.6% with
    q = 0.048 for the 2-case grid, where no noise floor can be estimated), and on a host contended
    from outside the VM by far more (identical runs -33% to +56% on 2026-12-05). Separate runs
    cannot cancel that (harness ab can); one of three pairs must come out clean, or the last say
    "inconclusive: rerun" and claim nothing."""
    candidate = runs["again"]
    for attempt in range(3):  # a clean-clone CI run on 2026-12-05 saw the 25 us case +10.7% twice in a row
        proc = harness("compare", str(runs["base"]), str(candidate), "--json", str(tmp_path / f"v{attempt}.json"))
        found = verdicts(tmp_path / f"v{attempt}.json")
        if proc.returncode != 0 and attempt < 2:
            candidate = run_suite(runs["folder"], "same.yaml", tmp_path / f"rerun{attempt}")
            continue
        assert not [v for v in found if v["verdict"] in ("regression", "improvement")], proc.stdout
        assert proc.returncode in (0, 3), proc.stdout + proc.stderr
        assert {v["metric"] for v in found} >= {"latency_p50", "latency_p90", "latency_p99", "throughput",
                                               "peak_memory"}
        return


def test_a_real_slowdown_is_named_in_every_output(runs: dict[str, Any], tmp_path: Path) -> None:
    """Allowing two re-measurements of both sides, as above: whole runs shift on this VM. A CI run
    on 2026-12-05 had the candidate run +12.3% in every process of tiny (unchanged; mid's p5 only
    +68% against a p50 +110%, so compare rightly called mid 'disturbed: rerun'); another had tiny
    -5.1% at p50 and p5 alike in both processes, just past the 5% minimum: an 'improvement' no
    within-run statistic can tell from the run's speed mode (harness ab can). One of three pairs
    must be exact: the slowdown named everywhere, the unchanged case nowhere. Compare must never
    call the 2x-deeper model ok. Only when the host was contended from outside the VM in all three
    (a plain one-thread loop's p50/p5 above QUIET_SPREAD around each pair; a CI run read mid +31.7%
    against a 107.6% rerun bound from its own process spread) may no pair be exact: then it skips."""
    from tests.test_ab import chain_model

    probe = chain_model(tmp_path / "probe.onnx", 20)
    junit, markdown, data = tmp_path / "c.xml", tmp_path / "c.md", tmp_path / "c.json"
    base, slow = runs["base"], runs["slow"]
    seen, quiet_tries, exact = [], 0, False
    for attempt in range(3):
        spreads = [host_spread(probe)]
        if attempt:
            base = run_suite(runs["folder"], "same.yaml", tmp_path / f"base-again{attempt}")
            spreads.append(host_spread(probe))
            slow = run_suite(runs["folder"], "slow.yaml", tmp_path / f"slow-again{attempt}")
            spreads.append(host_spread(probe))
        proc = harness("compare", str(base), str(slow), "--junit", str(junit), "--markdown", str(markdown),
                       "--json", str(data))
        found = verdicts(data)
        (p50,) = [v for v in found if v["case_id"] == SLOW_CASE and v["metric"] == "latency_p50"]
        assert p50["verdict"] != "ok", (p50, proc.stdout)  # never ok to a 2x slowdown, however noisy
        regressions = {(v["case_id"], v["metric"]) for v in found if v["verdict"] == "regression"}
        exact = ({case for case, _ in regressions} == {SLOW_CASE} and p50["verdict"] == "regression"
                 and proc.returncode == 1
                 and all(v["verdict"] in ("ok", "n/a") for v in found if v["case_id"] == FAST_CASE))
        quiet_tries += attempt > 0 and max(spreads) <= QUIET_SPREAD  # the shared fixture's runs went unprobed
        tiny = [f"{v['metric']} {v['verdict']} {v['change']:+.1%}" for v in found
                if v["case_id"] == FAST_CASE and v["verdict"] not in ("ok", "n/a")]
        seen.append(f"exit {proc.returncode}, mid p50 {p50['verdict']} at {p50['change']:+.1%}, tiny "
                    f"{', '.join(tiny) or 'ok'} (host p50/p5 {max(spreads):.2f})")
        if exact:
            break
    if not exact:
        assert not quiet_tries, f"no exact pair in {quiet_tries} quiet tries: {'; '.join(seen)}\n{proc.stdout}"
        pytest.skip(f"no exact pair, but the host was contended in all 3 tries (plain-loop p50/p5 > "
                    f"{QUIET_SPREAD}), and compare never called the 2x model ok: {'; '.join(seen)}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (SLOW_CASE, "latency_p50") in regressions
    assert {case for case, _ in regressions} == {SLOW_CASE}
    assert f"REGRESSION {SLOW_CASE} latency p50" in proc.stdout
    failures = {(c.get("classname"), c.get("name")) for c in ET.parse(junit).getroot().iter("testcase")
                if c.find("failure") is not None}
    assert failures == regressions
    table = markdown.read_text().split("<details>")[0]
    named = {(line.split("`")[1], line.split("|")[3].strip()) for line in table.splitlines()
             if line.startswith("| **regression**")}
    assert named == {(case, label(metric)) for case, metric in regressions}
    assert FAST_CASE not in table


def label(metric: str) -> str:
    from harness.compare import METRIC_BY_NAME

    return METRIC_BY_NAME[metric].label


def test_results_of_another_machine_are_refused_unless_allowed(runs: dict[str, Any], tmp_path: Path) -> None:
    document = read(runs["again"])
    document.environment.fingerprint = "0000000000000000"
    document.environment.hostname = "elsewhere"
    other = write_document(tmp_path / "other.jsonl", document)
    proc = harness("compare", str(runs["base"]), str(other))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "different machines" in proc.stderr
    allowed = harness("compare", str(runs["base"]), str(other), "--allow-different-machines")
    assert allowed.returncode != 2, allowed.stdout + allowed.stderr  # compared, whatever the verdict


def test_real_results_export_to_pytest_benchmark(runs: dict[str, Any], tmp_path: Path) -> None:
    for name in ("base", "slow"):
        proc = harness("export", "--format", "pytest-benchmark", str(runs[name]), "-o", str(tmp_path / f"{name}.json"))
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(BIN / "pytest-benchmark"), "compare", str(tmp_path / "base.json"),
                           str(tmp_path / "slow.json")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert SLOW_CASE in proc.stdout


THREADS_SUITE = """name: threads
models: [{{name: chain, path: chain.onnx}}]
targets: [cpu]
matrix: {{batch: [32]}}
measure: {{min_s: 0.3, min_iterations: 50, warmup_s: 0.05, max_s: 2, repeats: 5, placement: false}}
session: {{intra_op_num_threads: {threads}}}
"""


def threads_run(folder: Path, threads: int, busy: bool) -> Path:
    """A CPU-bound chain of MatMuls on 1 or 2 intra-op threads, with or without a busy loop on a core."""
    name = f"t{threads}{'-busy' if busy else ''}"
    (folder / f"{name}.yaml").write_text(THREADS_SUITE.format(threads=threads))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        return run_suite(folder, f"{name}.yaml", folder / name)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


SHOWN_CHANGE = 0.20  # 1 thread at p50 against 2 on a quiet 2-core VM: +45-61% (3 trials x 5 processes)
QUIET_SPREAD = 1.04  # a CPU-bound 1-thread loop's p50 over its p5 in one process; on a host contended
# from outside the VM 1.05-1.58 (2026-12-05: 6 plain-loop processes, and 3 of these 1-thread runs at
# 1.05, 1.22, 1.25), where compare rightly said inconclusive to pairs a quiet machine would decide


def within_process_spread(path: Path) -> float:
    """p50 / p5 of the run's one case, per worker process, median over processes: a CPU-bound
    1-thread model has nothing but neighbours to lift its p50 above its p5."""
    from harness.compare import segments

    (case,) = read(path).cases
    return float(np.median([np.percentile(s, 50) / np.percentile(s, 5) for s in segments(case) if s.size]))


def host_spread(model: Path) -> float:
    """p50 / p5 of a plain one-thread session.run loop of the 20-MatMul chain (batch 32) in a fresh
    process: the same figure as within_process_spread, taken between runs. It reads how much a
    neighbour outside the VM, which no counter in it shows, lifts a CPU-bound loop."""
    code = ("import sys, time, numpy as np, onnxruntime as ort\n"
            "o = ort.SessionOptions(); o.intra_op_num_threads = 1\n"
            "s = ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])\n"
            "x = {s.get_inputs()[0].name: np.ones((32, 192), np.float32)}\n"
            "t = []\n"
            "for i in range(330):\n"
            "    a = time.perf_counter(); s.run(None, x); t.append(time.perf_counter() - a)\n"
            "print(np.percentile(t[30:], 50) / np.percentile(t[30:], 5))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout)


def test_one_thread_instead_of_two_is_a_regression_and_a_busy_run_never_ok(tmp_path: Path) -> None:
    """Issue 16: a baseline on 2 intra-op threads against a candidate on 1 (slower on a quiet 2-core
    machine) exits 1; when either run had a busy loop on the other core, the verdict is a regression
    or inconclusive naming the busy run, never ok. Whether the machine was quiet is read from the
    1-thread run itself (its p50 over its p5) and from a plain loop before, between and after the
    two runs (host_spread: a CI try read the 1-thread run quiet at 1.04 while the 2-thread baseline
    was not, +73% inconclusive); a pair measured while it was not may say inconclusive and is
    measured again, 4 tries in all."""
    from tests.test_ab import chain_model

    probe = chain_model(tmp_path / "chain.onnx", 20)
    seen, quiet_tries, judged = [], 0, False
    for attempt in range(4):
        quiet = tmp_path / f"quiet{attempt}"
        quiet.mkdir()
        chain_model(quiet / "chain.onnx", 20)
        spreads = [host_spread(probe)]
        two = threads_run(quiet, 2, False)
        spreads.append(host_spread(probe))
        one = threads_run(quiet, 1, False)
        spreads += [host_spread(probe), within_process_spread(one)]
        proc = harness("compare", str(two), str(one), "--json", str(tmp_path / "quiet.json"))
        (p50,) = [v for v in verdicts(tmp_path / "quiet.json") if v["metric"] == "latency_p50"]
        quiet_tries += max(spreads) <= QUIET_SPREAD
        seen.append(f"{p50['verdict']} at {p50['change']:+.1%} (p50/p5: host "
                    f"{', '.join(f'{x:.2f}' for x in spreads[:3])}; 1-thread run {spreads[3]:.2f}; {p50['note'][:90]})")
        if p50["verdict"] == "inconclusive":
            continue  # the tool's own "cannot tell, rerun" earns another measurement
        if p50["verdict"] == "ok" and p50["change"] < SHOWN_CHANGE:
            continue  # the runs show no change to judge: neighbours held the second core (CI: +2.5% at p50)
        assert proc.returncode == 1, proc.stdout + proc.stderr  # a change the runs show: an ok fails here
        assert p50["verdict"] == "regression", (p50, proc.stdout)
        judged = True
        break
    assert "intra_op_num_threads" in proc.stdout  # the settings that differ are listed beside the verdicts
    for label, pair in (("busy baseline", (threads_run(tmp_path, 2, True), one)),
                        ("busy candidate", (two, threads_run(tmp_path, 1, True)))):
        out = tmp_path / f"{label}.json"
        proc = harness("compare", *map(str, pair), "--json", str(out))
        assert proc.returncode in (1, 3), (label, proc.stdout)
        (p50,) = [v for v in verdicts(out) if v["metric"] == "latency_p50"]
        assert p50["verdict"] in ("regression", "inconclusive"), (label, p50)
        if p50["verdict"] == "inconclusive":
            side = label.split()[1]
            assert f"the {side} run was measured on a busy machine" in p50["note"], (label, p50)
    if not judged:
        assert not quiet_tries, f"no regression in {quiet_tries} tries on a quiet machine: {'; '.join(seen)}"
        pytest.skip(f"the busy runs were judged, but the machine was not quiet in any of 4 tries of the quiet "
                    f"pair (quiet: every p50/p5 <= {QUIET_SPREAD}): {'; '.join(seen)}")
