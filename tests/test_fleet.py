"""Fleet runs on a real local Ray cluster: two nodes on this machine that advertise different
targets (node-a: cpu; node-b: cpu and openvino), started with ``harness node start`` as a user
would. Routing, the one-case-per-node slot, a target no node offers, a node killed mid-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .conftest import REPO, only_results, run_cli

pytest.importorskip("ray", reason="Ray is in the test extra (pip install -e '.[test]')")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MEASURE = "measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 5, min_s: 0.2, max_s: 1, repeats: 2}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_processes(session: Path) -> list[psutil.Process]:
    """This cluster's processes: they name its session folder in their command line or hold its
    log files open (Ray retitles its agents, so some show neither name nor arguments)."""
    marker = str(session)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            links = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")]
            if any(marker in part for part in (proc.info["cmdline"] or []) + links):
                found.append(proc)
        except (psutil.Error, OSError):
            pass
    return found


def node_processes(name: str) -> list[psutil.Process]:
    """Every process of a node: they all inherit HARNESS_NODE_NAME from 'harness node start'.
    Read raw: Ray retitles its processes, which can leave psutil's environ() parse short."""
    wanted = f"HARNESS_NODE_NAME={name}".encode()
    found = []
    for proc in psutil.process_iter():
        try:
            if wanted in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
                found.append(proc)
        except OSError:
            pass
    return found


def run_and_kill(cluster: str, suite: Path, out: Path, node: str, after_s: float = 8) -> tuple[int, str]:
    """A fleet run from the CLI; ``after_s`` seconds after its results file appears, every process
    of ``node`` (its raylet, Ray workers and the harness workers they started: all carry the
    node's name in their environment) is killed, as if the machine died. Exit code and output."""
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", suite, "--cluster", cluster, "-o", out],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(out.glob("*.jsonl")):
            time.sleep(0.5)
        time.sleep(after_s)
        for proc in node_processes(node):
            proc.send_signal(signal.SIGKILL)
        output, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    return driver.returncode, output


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    head = run_cli("node", "start", "--head", "--port", port, "--name", "node-a", "--target", "cpu",
                   "--temp-dir", temp)
    assert head.returncode == 0, head.stdout + head.stderr
    address = f"127.0.0.1:{port}"
    try:
        joined = run_cli("node", "start", "--address", address, "--name", "node-b", "--target", "cpu",
                         "--target", "openvino")
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert "node node-b: offers cpu, openvino" in joined.stdout, joined.stdout
        yield address
    finally:
        # Gone before the next test module measures anything: a dying cluster is a busy machine.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = ray_processes(temp) + node_processes("node-a") + node_processes("node-b")
            if not left:
                break
            for proc in left:  # again each round: a raylet killed after its agents may restart one
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            time.sleep(1)


def test_node_status_lists_each_node_and_what_it_offers(cluster: str) -> None:
    out = run_cli("node", "status", "--address", cluster)
    assert out.returncode == 0, out.stderr
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if "node-" in line}
    assert set(rows) == {"node-a", "node-b"}, out.stdout
    assert "cpu, openvino" in rows["node-b"] and "openvino" not in rows["node-a"]
    assert socket.gethostname() in rows["node-a"]


def test_each_case_runs_on_a_node_that_offers_its_target(cluster: str, tmp_path: Path) -> None:
    suite = tmp_path / "honesty.yaml"
    suite.write_text(f"""
name: fleet-honesty
models: [{{name: squeezenet, source: "builtin:squeezenet"}}]
targets: [cpu, openvino, openvino-gpu, cuda, tensorrt, directml]
matrix: {{batch: [1, 2]}}
{MEASURE}
session: {{intra_op_num_threads: 1}}
""")
    out = run_cli("run", suite, "--cluster", cluster, "-o", tmp_path / "r", "--report", tmp_path / "fleet.html")
    assert out.returncode == 0, out.stdout + out.stderr
    cases = only_results(tmp_path / "r")["cases"]
    assert len(cases) == 12
    for case in cases:
        target = case["target"]
        if target in ("cpu", "openvino"):
            assert case["status"] == "ok", case.get("reason")
            node = case["measured_on"]["node"]
            assert node in (("node-a", "node-b") if target == "cpu" else ("node-b",)), (case["case_id"], node)
            assert case["measured_on"]["hostname"] == socket.gethostname() and case["measured_on"]["fingerprint"]
            assert case["runtime"]["providers_assigned"][0] == case["runtime"]["providers_requested"][0]
        else:
            assert case["status"] == "unavailable" and "latency_ms" not in case
            assert case["reason"].startswith(f"no node of the cluster offers target {target} "
                                             "(nodes offer: node-a: cpu; node-b: cpu, openvino)"), case["reason"]
    # One case at a time per node: the cases each node measured never overlap in time.
    by_node: dict[str, list[tuple[str, str]]] = {}
    for case in cases:
        if "measured_on" in case:
            by_node.setdefault(case["measured_on"]["node"], []).append((case["started_at"], case["finished_at"]))
    for spans in by_node.values():
        spans.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans
    # The report of the fleet run is the cross-machine comparison: both nodes, side by side.
    from harness.report.data import machines
    from harness.results import read_all

    assert {"node-a", "node-b"} <= {m.label for m in machines(read_all([tmp_path / "r"]))}
    html = (tmp_path / "fleet.html").read_text()
    assert "openvino @ node-b" in html and "cpu @ node-a" in html


def test_without_ray_the_cluster_option_says_how_to_install_it(tmp_path: Path) -> None:
    blocker = tmp_path / "noray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    suite = tmp_path / "s.yaml"
    suite.write_text('name: s\nmodels: [{name: tiny, source: "builtin:tiny"}]\n')
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO}"}
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", suite, "--cluster", "auto", "-o", tmp_path / "r"],
                         capture_output=True, text=True, env=env, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "--cluster: Ray is not installed here; pip install 'onnx-harness[fleet]'" in lines[0]
    local = subprocess.run([sys.executable, "-m", "harness.cli", "run", suite, "-o", tmp_path / "r"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert local.returncode == 0, local.stdout + local.stderr  # a local run never needs Ray


def test_sigterm_at_the_driver_cancels_the_rest_and_keeps_finished_cases(cluster: str, tmp_path: Path) -> None:
    suite = tmp_path / "term.yaml"
    suite.write_text("""
name: fleet-term
models: [{name: squeezenet, source: "builtin:squeezenet"}]
targets: [cpu]
matrix: {batch: [1, 2, 3, 4, 5, 6]}
measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 5, min_s: 2, max_s: 3, repeats: 2}
session: {intra_op_num_threads: 1}
""")
    out = tmp_path / "r"
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", suite, "--cluster", cluster, "-o", out],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            files = list(out.glob("*.jsonl"))
            if files and '"record":"case"' in files[0].read_text().replace(" ", ""):
                break
            time.sleep(0.3)
        driver.send_signal(signal.SIGTERM)
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    document = only_results(out)
    assert driver.returncode == 143, output
    assert document["status"] == "interrupted" and 1 <= len(document["cases"]) < 6, output
    assert all(c["status"] == "ok" for c in document["cases"])
    # The outstanding tasks were cancelled: no harness worker keeps measuring on the nodes.
    time.sleep(5)
    workers = [p for p in node_processes("node-a") + node_processes("node-b")
               if "harness.worker" in " ".join(p.cmdline())]
    assert not workers, [p.cmdline() for p in workers]


def test_an_address_nobody_answers_is_one_line_not_a_long_wait(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text('name: s\nmodels: [{name: tiny, source: "builtin:tiny"}]\n')
    address = f"127.0.0.1:{free_port()}"
    out = run_cli("run", suite, "--cluster", address, "-o", tmp_path / "r", timeout=60)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: --cluster {address}: nothing answers there"), lines[0]
    assert not (tmp_path / "r").exists()


def test_a_node_killed_mid_case_fails_that_case_and_the_run_goes_on(cluster: str, tmp_path: Path) -> None:
    """Last in this module: it takes node-b down. The OpenVINO case measures for 20 s on node-b
    (the only node offering openvino); node-b is killed while it does. That case fails with
    'node lost', the CPU cases still run on node-a, and the file holds every finished case."""
    suite = tmp_path / "kill.yaml"
    suite.write_text("""
name: fleet-kill
models: [{name: squeezenet, source: "builtin:squeezenet"}]
targets: [openvino, cpu]
matrix: {batch: [1, 2, 4]}
measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 5, min_s: 10, max_s: 12, repeats: 2}
session: {intra_op_num_threads: 1}
""")
    # 8 s in, the first OpenVINO case is measuring on node-b (20 s of it)
    returncode, output = run_and_kill(cluster, suite, tmp_path / "r", "node-b")
    cases = {c["case_id"]: c for c in only_results(tmp_path / "r")["cases"]}
    assert returncode == 1, output  # a case failed
    assert len(cases) == 6, (sorted(cases), output)
    lost = [c for c in cases.values() if c["status"] == "failed"]
    assert lost and all(c["reason"].startswith("node lost") for c in lost), output
    assert all(c["target"] == "openvino" or c["measured_on"]["node"] == "node-a" for c in lost)
    cpu = [c for c in cases.values() if c["target"] == "cpu"]
    assert all(c["status"] == "ok" for c in cpu), [(c["case_id"], c.get("reason")) for c in cpu]
    assert any(c["measured_on"]["node"] == "node-a" for c in cpu)


def test_with_retry_lost_a_case_whose_node_died_runs_again_elsewhere(cluster: str, tmp_path: Path) -> None:
    """After the test above: node-b joins again, and is killed again, this time while it measures
    a CPU case; with fleet.retry_lost that case runs once more on node-a and the run is ok."""
    joined = run_cli("node", "start", "--address", cluster, "--name", "node-b", "--target", "cpu")
    assert joined.returncode == 0, joined.stdout + joined.stderr
    suite = tmp_path / "retry.yaml"
    suite.write_text("""
name: fleet-retry
models: [{name: squeezenet, source: "builtin:squeezenet"}]
targets: [cpu]
matrix: {batch: [1, 2]}
measure: {warmup_s: 0, warmup_iterations: 1, min_iterations: 5, min_s: 10, max_s: 12, repeats: 2}
session: {intra_op_num_threads: 1}
fleet: {retry_lost: true}
""")
    returncode, output = run_and_kill(cluster, suite, tmp_path / "r", "node-b")  # one case per node is measuring
    cases = only_results(tmp_path / "r")["cases"]
    assert returncode == 0, output
    assert len(cases) == 2 and all(c["status"] == "ok" and c["measured_on"]["node"] == "node-a" for c in cases), output
    again = [c for c in cases if "ran a second time: its first node was lost mid-case" in c["notes"]]
    assert len(again) == 1 and "running it once more on another node" in output, output
