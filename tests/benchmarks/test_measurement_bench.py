"""Benchmarks of the harness's own measurement (``make bench``), not of models.

Every figure is a ratio (or a difference) between two things measured side by side, in
alternating rounds, in the same run on the same machine: absolute times on a shared runner
say little, but what the harness adds or changes relative to a reference does. Each test
writes its figures under its own key in ``reports/bench-measurement.json`` and prints them.

* overhead: ``harness run`` (CLI, runner, worker subprocess) against a plain ``session.run``
  loop in a fresh minimal process, same model file, inputs and session options, alternating
  plain, harness, plain, ...; tiny (~5 us) and mlp (~2-3 ms).
* OpenVINO agreement: the harness on the OpenVINO EP against OpenVINO's own benchmark_app
  (from ``openvino==`` the release bundled in onnxruntime-openvino, in its own venv under the
  harness cache), same model, 1 thread, sync, at f32 and at bf16, each forced on both sides and
  each side's effective precision recorded; plus a plain onnxruntime loop on the same EP, to
  tell the harness's share of a gap from the EP's.
* time to result: adaptive stopping at +-1 % against a fixed 1,000-iteration run.
* fixed cost per case: process start, imports, session creation, against a bare process
  that does only those.
* stability flags: five repeats of a quiet case and of a case next to a busy loop.

Targets (asserted here, never in the normal test suite): under 1 us added per iteration on
tiny; harness/plain median ratio within 0.97-1.03 on mlp. This machine is shared: every round
records how much CPU other processes used, targets are judged on quiet rounds when there are
3 or more, else on all rounds with the 95 % CI of the median over rounds, and only a miss the
CI proves (``violated``) fails; see ``judge``. ``BENCH_ROUNDS`` (default 5) sets the rounds.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports" / "bench-measurement.json"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))

# --- plumbing ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from harness.environment import fingerprint

    env = fingerprint()
    return {k: env.get(k) for k in ("hostname", "cpu_model", "cpu_count_logical", "memory_gb", "os",
                                    "onnxruntime_version", "fingerprint")}


def record(key: str, figures: dict[str, Any]) -> None:
    """Merge ``figures`` under ``key`` into the one report file, and print them."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    try:
        document = json.loads(REPORT.read_text())
    except (OSError, json.JSONDecodeError):
        document = {}
    entry = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **figures}
    document[key] = entry
    tmp = REPORT.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False))
    tmp.replace(REPORT)
    print(f"\n[{key}]")
    for name, value in figures.items():
        if not isinstance(value, (list, dict)):
            print(f"  {name}: {value}")
        else:
            print(f"  {name}: {json.dumps(value)}")


class ForeignLoad:
    """CPU time other processes used while a block ran, as a fraction of all cores' time.

    /proc/stat's busy time minus what this process and its (waited-for) children used. A
    round during which someone else's job ran on this shared machine is not evidence about
    the harness either way, so the asserted ratios use quiet rounds only.
    """

    def __enter__(self) -> ForeignLoad:
        self.start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        wall, busy, ours = (e - s for e, s in zip(end, self.start))
        cores = os.cpu_count() or 1
        self.fraction = max(0.0, busy - ours) / (wall * cores) if wall > 0 else 0.0

    @staticmethod
    def _read() -> tuple[float, float, float]:
        import resource

        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        except (OSError, ValueError):
            busy = 0.0
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.monotonic(), busy, me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


QUIET = 0.05  # at most 5 % of the machine's CPU time used by others during a round


def run_harness(folder: Path, suite_text: str, name: str = "suite") -> tuple[dict[str, Any], float]:
    """One real ``harness run`` of a suite (CLI -> runner -> worker subprocess); its cases and wall time."""
    folder.mkdir(parents=True, exist_ok=True)
    suite = folder / f"{name}.yaml"
    suite.write_text(textwrap.dedent(suite_text).lstrip())
    out = folder / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    from harness.results import read

    files = sorted(out.glob("*.jsonl"))
    document = read(files[-1]).to_json()
    for case in document["cases"]:
        assert case["status"] == "ok", case.get("reason")
    return document, wall


def plan_for(suite_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """The model file and the exact input tensors the harness feeds for the suite's one case."""
    from harness.models.inputs import make_feeds
    from harness.plan import build_plan
    from harness.suite import load_suite

    plan = build_plan(load_suite(suite_path))
    case = plan.cases[0]
    return plan.model_files[case.model.name].path, make_feeds(case.inputs, case.model.seed)


PLAIN = """
import json, sys, time
import numpy as np
import onnxruntime as ort


def main(model, inputs, warmup_s, seconds, provider, provider_options):  # locals: the fastest plain loop
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, sess_options=options, providers=[(provider, provider_options)])
    assert session.get_providers()[0] == provider, session.get_providers()
    with np.load(inputs) as archive:
        feeds = {key: archive[key] for key in archive.files}
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        session.run(None, feeds)
    samples = []
    clock = time.perf_counter_ns
    stop = clock() + int(seconds * 1e9)
    while True:
        t0 = clock()
        session.run(None, feeds)
        t1 = clock()
        samples.append(t1 - t0)
        if t1 >= stop:
            return {"median_ms": float(np.median(samples)) / 1e6, "n": len(samples)}


print(json.dumps(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]),
                      sys.argv[5] if len(sys.argv) > 5 else "CPUExecutionProvider",
                      json.loads(sys.argv[6]) if len(sys.argv) > 6 else {})))
"""


def plain_loop(model: Path, inputs: Path, warmup_s: float, seconds: float, python: str = sys.executable,
               provider: str = "CPUExecutionProvider", options: dict[str, Any] | None = None) -> float:
    """Median (ms) of the textbook loop, in a fresh minimal Python process: one session with the
    same options, ``session.run`` timed with perf_counter_ns, nothing else. A fresh process, not
    this one: a loop inside the (large, long-lived) pytest process measured 5-15 % slower than
    the same loop in a fresh process at the same moment, which is not the harness's doing."""
    done = subprocess.run([python, "-c", PLAIN, str(model), str(inputs), str(warmup_s), str(seconds), provider,
                           json.dumps(options or {})],
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout)["median_ms"]


def plain_loop_here(model: Path, feeds: dict[str, np.ndarray], warmup_s: float, seconds: float) -> float:
    """The same loop inside this (pytest) process, reported for contrast only."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        session.run(None, feeds)
    samples: list[int] = []
    clock = time.perf_counter_ns
    stop = clock() + int(seconds * 1e9)
    while True:
        t0 = clock()
        session.run(None, feeds)
        t1 = clock()
        samples.append(t1 - t0)
        if t1 >= stop:
            return float(np.median(samples)) / 1e6


def bench_once(benchmark: Any, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Let pytest-benchmark time the whole side-by-side comparison once; the figures are its result."""
    with ForeignLoad() as load:
        figures = benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0)
    figures["foreign_cpu_during_benchmark"] = round(load.fraction, 3)  # share of the machine others used
    benchmark.extra_info.update({k: v for k, v in figures.items() if not isinstance(v, (list, dict))})
    return figures


# --- 1. overhead ------------------------------------------------------------------------


OVERHEAD_SUITE = """
    name: overhead-{model}
    models: [{{name: {model}, source: "builtin:{model}"}}]
    measure: {{warmup_s: 0.3, warmup_iterations: 10, min_iterations: 200, min_s: {seconds}, max_s: 10, placement: false, repeats: 1}}
    session: {{intra_op_num_threads: 1}}
    """


def overhead(tmp_path: Path, model: str, seconds: float, rounds: int, budget_s: float,
             in_pytest_too: bool = False) -> dict[str, Any]:
    folder = tmp_path / model
    folder.mkdir()
    suite_text = OVERHEAD_SUITE.format(model=model, seconds=seconds)
    suite_file = folder / "plan.yaml"
    suite_file.write_text(textwrap.dedent(suite_text).lstrip())
    model_file, feeds = plan_for(suite_file)
    inputs = folder / "inputs.npz"
    np.savez(inputs, **feeds)
    # plain, harness, plain, harness, ..., plain: each harness round is compared with the mean of
    # the plain runs just before and just after it, which cancels slow drift on a shared machine.
    # Rounds go on until `rounds` quiet ones (no one else's job ran) or the time budget is spent.
    def plain() -> tuple[float, float]:
        with ForeignLoad() as load:
            value = plain_loop(model_file, inputs, 0.3, seconds)
        return value, load.fraction

    harness_ms: list[float] = []
    plain_ms, plain_load = map(list, zip(plain()))
    harness_load: list[float] = []
    here_ms: list[float] = []
    deadline = time.monotonic() + budget_s
    i = 0
    while True:
        with ForeignLoad() as load:
            document, _ = run_harness(folder, suite_text, f"round{i}")
        harness_ms.append(document["cases"][0]["latency_ms"]["p50"])
        harness_load.append(load.fraction)
        value, fraction = plain()
        plain_ms.append(value)
        plain_load.append(fraction)
        if in_pytest_too:
            here_ms.append(plain_loop_here(model_file, feeds, 0.3, seconds))
        i += 1
        quiet = [j for j in range(i) if max(harness_load[j], plain_load[j], plain_load[j + 1]) <= QUIET]
        if len(quiet) >= rounds or (i >= rounds and time.monotonic() > deadline):
            break
    around = [(a + b) / 2 for a, b in zip(plain_ms, plain_ms[1:])]
    ratios = [h / p for h, p in zip(harness_ms, around)]
    added_us = [(h - p) * 1e3 for h, p in zip(harness_ms, around)]
    extra: dict[str, Any] = {}
    if here_ms:
        extra = {"plain_in_pytest_process_median_ms": statistics.median(here_ms),
                 "plain_in_pytest_over_fresh_process_ratio": statistics.median(h / p for h, p in zip(here_ms, plain_ms[1:])),
                 "plain_in_pytest_process_ms_per_round": here_ms}
    quiet_ratios = [ratios[j] for j in quiet]
    quiet_added = [added_us[j] for j in quiet]
    return {"model": model, "rounds": i, "quiet_rounds": len(quiet), "loop_s": seconds,
            "harness_median_ms": statistics.median(harness_ms), "plain_median_ms": statistics.median(plain_ms),
            "ratio_median_of_quiet_rounds": statistics.median(quiet_ratios) if quiet else None,
            "added_us_median_of_quiet_rounds": statistics.median(quiet_added) if quiet else None,
            "ratio_median_of_all_rounds": statistics.median(ratios),
            "added_us_median_of_all_rounds": statistics.median(added_us),
            "ratio_of_medians": statistics.median(harness_ms) / statistics.median(plain_ms),
            "harness_p50_ms_per_round": harness_ms, "plain_p50_ms_per_round": plain_ms,
            "ratio_per_round": ratios, "added_us_per_round": added_us, "quiet_round_indexes": quiet,
            "foreign_cpu_harness": [round(x, 3) for x in harness_load],
            "foreign_cpu_plain": [round(x, 3) for x in plain_load], **extra}


def judge(figures: dict[str, Any], per_round: list[float], low: float, high: float) -> dict[str, Any]:
    """Verdict on a target band from per-round values, robust to a shared, busy machine.

    Quiet rounds are used when there are at least 3 of them, else all rounds. The point estimate
    is the median over rounds, with the distribution-free 95 % CI of that median (the harness's
    own ``median_ci``). ``met``: the median is inside the band. ``violated``: the whole CI is
    above the band, i.e. the data show real overhead, not noise: the benchmark fails.
    ``below band``: the whole CI is below it (the harness measured *less* than the plain loop):
    reported for investigation, not failed, since it is no overhead. Anything else is
    ``inconclusive``: the machine was too noisy to tell.
    """
    from harness.stats import median_ci

    quiet = figures["quiet_round_indexes"]
    values = [per_round[j] for j in quiet] if len(quiet) >= 3 else list(per_round)
    median = statistics.median(values)
    ci_low, ci_high = median_ci(values)
    if low <= median <= high:
        verdict = "met"
    elif ci_low > high:
        verdict = "violated"
    elif ci_high < low:
        verdict = "below band"
    else:
        verdict = "inconclusive"
    return {"judged_on": "quiet rounds" if len(quiet) >= 3 else "all rounds (machine busy)",
            "judged_rounds": len(values), "judged_median": median, "judged_ci95": [ci_low, ci_high],
            "target_band": [low, high], "verdict": verdict}


def test_overhead_tiny(benchmark, tmp_path) -> None:
    figures = bench_once(benchmark, lambda: overhead(tmp_path, "tiny", 1.0, ROUNDS, budget_s=20))
    verdict = judge(figures, figures["added_us_per_round"], -math.inf, 1.0)
    record("overhead_tiny", {**figures, "target": "added us per iteration (harness - plain) < 1.0", **verdict})
    assert verdict["verdict"] != "violated", verdict


def test_overhead_squeezenet(benchmark, tmp_path) -> None:
    """The mid-size target (a few ms, compute-bound): its window-to-window spread here is ~2%."""
    figures = bench_once(benchmark, lambda: overhead(tmp_path, "squeezenet", 1.0, ROUNDS, budget_s=90))
    verdict = judge(figures, figures["ratio_per_round"], 0.97, 1.03)
    record("overhead_squeezenet", {**figures, "target": "0.97 <= harness/plain median ratio <= 1.03", **verdict})
    assert verdict["verdict"] != "violated", verdict


def test_overhead_mlp(benchmark, tmp_path) -> None:
    """Memory-bound (50 MB of weights): it moves +-10% between 0.6 s windows on a shared VM, so
    the same band is reported but usually reads inconclusive; squeezenet carries the target."""
    figures = bench_once(benchmark, lambda: overhead(tmp_path, "mlp", 0.6, 2 * ROUNDS, budget_s=90, in_pytest_too=True))
    verdict = judge(figures, figures["ratio_per_round"], 0.97, 1.03)
    record("overhead_mlp", {**figures, "target": "0.97 <= harness/plain median ratio <= 1.03", **verdict})
    assert verdict["verdict"] != "violated", verdict


# --- 2. agreement with OpenVINO's benchmark_app ------------------------------------------

BENCHMARK_APP_FLAGS = ["-api", "sync", "-nireq", "1", "-nstreams", "1", "-nthreads", "1", "-hint", "none",
                       "-d", "CPU", "-t", "5"]
PRECISIONS = ("f32", "bf16")  # forced on both sides: benchmark_app -infer_precision, the harness's precision
OV_TYPE = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def bundled_openvino_version(runtime_python: str) -> str | None:
    """The OpenVINO release inside an onnxruntime-openvino wheel, from its libopenvino.so.X.Y.Z."""
    capi = subprocess.run([runtime_python, "-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"],
                          capture_output=True, text=True, timeout=120).stdout.strip()
    for lib in sorted(glob.glob(os.path.join(capi, "capi", "libopenvino.so.*"))):
        found = re.search(r"libopenvino\.so\.(\d{4}\.\d+\.\d+)$", lib)
        if found:
            return found.group(1)
    return None


def benchmark_app_for(version: str) -> Path | None:
    """benchmark_app from ``openvino==version`` in its own venv under the harness cache (never the main venv)."""
    from harness.paths import cache_dir

    venv = cache_dir() / "bench" / f"openvino-{version}"
    app = venv / "bin" / "benchmark_app"
    if app.exists():
        return app
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"openvino=={version}"], check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError):
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return app if app.exists() else None


def run_benchmark_app(app: Path, model: Path, input_name: str, folder: Path, precision: str) -> dict[str, Any]:
    report = folder / "benchmark_app"
    shutil.rmtree(report, ignore_errors=True)
    report.mkdir(parents=True)
    done = subprocess.run([str(app), "-m", str(model), *BENCHMARK_APP_FLAGS, "-infer_precision", precision,
                           "-shape", f"{input_name}[1,3,224,224]",
                           "-json_stats", "-report_type", "no_counters", "-report_folder", str(report)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = re.search(r"INFERENCE_PRECISION_HINT: <Type: '(\w+)'>", done.stdout)
    assert ran, "benchmark_app did not report its inference precision"
    results = json.loads((report / "benchmark_report.json").read_text())["execution_results"]
    return {"median_ms": float(results["latency (ms)"]), "mean_ms": float(results["avg latency"]),
            "min_ms": float(results["min latency"]), "iterations": int(results["total number of iterations"]),
            "throughput": float(results["throughput"]), "ran": OV_TYPE.get(ran.group(1), ran.group(1))}


def agreement_suite(model: Path, precision: str) -> str:
    return f"""
        name: ov-agreement-{precision}
        models: [{{name: squeezenet, path: {model}}}]
        targets:
          - name: openvino
            precision: {precision}
            options: {{device_type: CPU, num_of_threads: 1}}
        measure: {{warmup_s: 0.5, min_iterations: 100, min_s: 5, max_s: 10, placement: false, repeats: 1}}
        session: {{intra_op_num_threads: 1}}
        """


def test_agreement_with_openvino_benchmark_app(benchmark, tmp_path) -> None:
    """At f32 and at bf16, each forced on both sides; where the CPU has no bf16 units both resolve
    bf16 to f32 (each side's effective precision is recorded), and the figures say so."""
    import onnx

    from harness.models.builtin import build

    model = tmp_path / "squeezenet.onnx"
    built = build("squeezenet")
    onnx.save(built, model)
    input_name = built.graph.input[0].name
    first, _ = run_harness(tmp_path / "probe", agreement_suite(model, "f32").replace("min_s: 5", "min_s: 0.2"), "probe")
    runtime = first["cases"][0]["runtime"]
    if "OpenVINOExecutionProvider" not in runtime.get("providers_assigned", []):
        pytest.skip(f"OpenVINO EP not usable here: {first['cases'][0].get('reason')}")
    version = bundled_openvino_version(runtime["python"])
    if version is None:
        pytest.skip("cannot tell which OpenVINO the onnxruntime-openvino wheel bundles")
    app = benchmark_app_for(version)
    if app is None:
        pytest.skip(f"openvino=={version} (benchmark_app) could not be installed")

    suite_file = tmp_path / "plan.yaml"
    suite_file.write_text(textwrap.dedent(agreement_suite(model, "f32")).lstrip())
    _, feeds = plan_for(suite_file)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, **feeds)

    def at(precision: str) -> dict[str, Any]:
        ep_options = {"device_type": "CPU", "num_of_threads": 1,
                      "load_config": json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": precision}})}
        harness_ms, app_ms, app_runs, plain_ms, harness_ran = [], [], [], [], set()
        for i in range(max(5, ROUNDS)):
            document, _ = run_harness(tmp_path, agreement_suite(model, precision), f"{precision}-round{i}")
            case = document["cases"][0]
            harness_ms.append(case["latency_ms"]["p50"])
            harness_ran.add(case["precision"]["effective"])
            app_runs.append(run_benchmark_app(app, model, input_name, tmp_path, precision))
            app_ms.append(app_runs[-1]["median_ms"])
            plain_ms.append(plain_loop(model, inputs, 0.5, 5.0, runtime["python"], "OpenVINOExecutionProvider", ep_options))
        ratios = [h / a for h, a in zip(harness_ms, app_ms)]
        return {"forced": precision, "harness_ran": sorted(harness_ran),
                "benchmark_app_ran": sorted({r["ran"] for r in app_runs}),
                "rounds": len(ratios), "harness_median_ms": statistics.median(harness_ms),
                "benchmark_app_median_ms": statistics.median(app_ms),
                "ratio_median_of_rounds": statistics.median(ratios),
                # A process lands in one of this VM's speed modes (here up to 1.6x apart), so a
                # round's ratio can pit one mode against the other; the fastest round of each side
                # compares like with like once each side has had a round in the fast mode.
                "ratio_of_fastest_rounds": min(harness_ms) / min(app_ms),
                "harness_p50_ms_per_round": harness_ms, "benchmark_app_median_ms_per_round": app_ms,
                "benchmark_app_iterations_per_round": [r["iterations"] for r in app_runs],
                "ratio_per_round": ratios,
                # where a gap comes from: the same EP in a plain onnxruntime loop, no harness
                "plain_ort_openvino_ep_median_ms": statistics.median(plain_ms),
                "plain_ort_ep_over_benchmark_app": statistics.median(p / a for p, a in zip(plain_ms, app_ms)),
                "harness_over_plain_ort_ep": statistics.median(h / p for h, p in zip(harness_ms, plain_ms)),
                "plain_ort_ep_ms_per_round": plain_ms}

    def compare() -> dict[str, Any]:
        return {"model": "builtin:squeezenet (seed 0), batch 1", "openvino_version": version,
                "onnxruntime_openvino": runtime.get("onnxruntime_version"),
                "benchmark_app_flags": " ".join(BENCHMARK_APP_FLAGS) + " -infer_precision P",
                "harness_options": "device_type CPU, num_of_threads 1, target precision P",
                **{p: at(p) for p in PRECISIONS}}

    figures = bench_once(benchmark, compare)
    for p in PRECISIONS:  # equal precision on both sides, or the comparison means nothing
        assert figures[p]["harness_ran"] == figures[p]["benchmark_app_ran"], figures[p]
    record("agreement_openvino_benchmark_app", {**figures, "target": "reported only (no hard target)"})


# --- 3. time to result ------------------------------------------------------------------

ADAPTIVE = "{warmup_s: 0.3, warmup_iterations: 10, min_iterations: 20, min_s: 0.05, max_s: 30, precision: 0.01, placement: false, repeats: 1}"
FIXED = "{warmup_s: 0.3, warmup_iterations: 10, min_iterations: 1000, min_s: 0, max_s: 60, placement: false, repeats: 1}"


def iterations_to_reach(samples_ms: list[float], precision: float) -> int | None:
    """Smallest prefix (in steps of 10) of a run whose median CI is within +-precision, found afterwards."""
    from harness.stats import relative_precision_reached

    values = np.asarray(samples_ms)
    for n in range(10, len(values) + 1, 10):
        if relative_precision_reached(values[:n], precision):
            return n
    return None


def test_time_to_result_adaptive_vs_fixed(benchmark, tmp_path) -> None:
    suite = """
        name: ttr-{kind}
        models: [{{name: mlp, source: "builtin:mlp"}}]
        measure: {measure}
        session: {{intra_op_num_threads: 1}}
        """

    def compare() -> dict[str, Any]:
        rows: dict[str, list[dict[str, Any]]] = {"adaptive": [], "fixed": []}
        for i in range(3):
            for kind, measure in (("adaptive", ADAPTIVE), ("fixed", FIXED)):
                document, wall = run_harness(tmp_path, suite.format(kind=kind, measure=measure), f"{kind}{i}")
                case = document["cases"][0]
                rows[kind].append({"iterations": case["measurement"]["iterations"],
                                   "seconds": case["measurement"]["duration_s"],
                                   "case_seconds": case["timings_ms"]["worker_process"] / 1e3,
                                   "median_ms": case["latency_ms"]["p50"],
                                   "ci_rel": case["latency_ms"]["median_ci_rel"],
                                   "stop_reason": case["measurement"]["stop_reason"],
                                   "precision_met": case["measurement"]["precision_met"],
                                   "fixed_reached_1pct_at": iterations_to_reach(case["samples_ms"], 0.01)})

        def med(kind: str, key: str) -> float:
            return statistics.median(r[key] for r in rows[kind] if r[key] is not None)

        a, f = rows["adaptive"], rows["fixed"]
        return {"model": "builtin:mlp", "rounds": 3,
                "adaptive_iterations": med("adaptive", "iterations"), "fixed_iterations": med("fixed", "iterations"),
                "adaptive_seconds": med("adaptive", "seconds"), "fixed_seconds": med("fixed", "seconds"),
                "adaptive_case_seconds": med("adaptive", "case_seconds"), "fixed_case_seconds": med("fixed", "case_seconds"),
                "adaptive_median_ms": med("adaptive", "median_ms"), "fixed_median_ms": med("fixed", "median_ms"),
                "adaptive_ci_rel": med("adaptive", "ci_rel"), "fixed_ci_rel": med("fixed", "ci_rel"),
                "fixed_run_reached_1pct_after_iterations": med("fixed", "fixed_reached_1pct_at")
                if any(r["fixed_reached_1pct_at"] for r in f) else None,
                "iterations_ratio_adaptive_over_fixed": statistics.median(x["iterations"] / y["iterations"] for x, y in zip(a, f)),
                "seconds_ratio_adaptive_over_fixed": statistics.median(x["seconds"] / y["seconds"] for x, y in zip(a, f)),
                "median_ratio_adaptive_over_fixed": statistics.median(x["median_ms"] / y["median_ms"] for x, y in zip(a, f)),
                "adaptive_precision_met": all(r["precision_met"] for r in a),
                "per_round": rows}

    figures = bench_once(benchmark, compare)
    record("time_to_result", {**figures, "target": "reported; adaptive must reach +-1 % (precision_met)"})
    assert figures["adaptive_precision_met"], figures


# --- 4. fixed cost per case ---------------------------------------------------------------

BARE = """
import sys, time
t = time.perf_counter()
import numpy as np
import onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], sess_options=o, providers=["CPUExecutionProvider"])
s.run(None, {s.get_inputs()[0].name: np.zeros((1, 16), np.float32)})
"""


def test_fixed_cost_per_case(benchmark, tmp_path) -> None:
    """What a case costs besides measuring, on the tiny model: per worker, and per case in a run."""
    one = """
        name: fixed-{n}
        models: [{{name: tiny, source: "builtin:tiny"}}]
        matrix: {{k: {ks}}}
        measure: {{warmup_s: 0, warmup_iterations: 0, min_iterations: 1, min_s: 0, max_s: 1, placement: {placement}, repeats: 1}}
        session: {{intra_op_num_threads: 1}}
        """
    from harness.models.sources import builtin_path

    tiny = builtin_path("tiny", 0)

    def compare() -> dict[str, Any]:
        worker, parts, bare, run1, run6, run6_placement = [], [], [], [], [], []
        python_start: list[float] = []
        numpy_start: list[float] = []
        for i in range(3):
            doc1, wall1 = run_harness(tmp_path, one.format(n=1, ks=[0], placement="false"), f"one{i}")
            doc6, wall6 = run_harness(tmp_path, one.format(n=6, ks=list(range(6)), placement="false"), f"six{i}")
            doc6p, wall6p = run_harness(tmp_path, one.format(n=6, ks=list(range(6)), placement="true"), f"sixp{i}")
            run1.append(wall1)
            run6.append(wall6)
            run6_placement.append(wall6p)
            for case in doc6["cases"]:
                t = case["timings_ms"]
                loop_ms = case["measurement"]["duration_s"] * 1e3
                worker.append(t["worker_process"] - loop_ms)
                parts.append({"import_onnxruntime": t["import_onnxruntime"], "session_create": t["session_create"],
                              "first_inference": t["first_inference"], "loop": loop_ms})
            for code, into in ((BARE, bare), ("pass", python_start), ("import numpy", numpy_start)):
                for _ in range(2):
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-c", code, str(tiny)], check=True, timeout=120)
                    into.append((time.perf_counter() - started) * 1e3)
        per_case_run = [(b - a) / 5 for a, b in zip(run1, run6)]
        per_case_placement = [(b - a) / 5 for a, b in zip(run1, run6_placement)]
        worker_ms = statistics.median(worker)
        bare_ms = statistics.median(bare)
        part = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
        return {"model": "builtin:tiny",
                "per_case_s_in_a_run": statistics.median(per_case_run),
                "per_case_s_in_a_run_with_placement": statistics.median(per_case_placement),
                "worker_process_minus_loop_ms": worker_ms,
                "bare_process_ms (python, numpy, onnxruntime, session, 1 run)": bare_ms,
                "bare_python_start_ms": statistics.median(python_start),
                "bare_python_plus_numpy_import_ms": statistics.median(numpy_start),
                "worker_over_bare_ratio": worker_ms / bare_ms,
                "parts_ms": {**part, "rest_of_worker (python start, numpy import, inputs, exit)":
                             worker_ms - part["import_onnxruntime"] - part["session_create"] - part["first_inference"]},
                "harness_cli_one_case_s": statistics.median(run1)}

    figures = bench_once(benchmark, compare)
    record("fixed_cost_per_case", {**figures, "target": "reported only"})




# --- 5. stability flags: five repeats, quiet against disturbed ------------------------------------

NOISE_SUITE = """
    name: noise-{label}
    models: [{{name: squeezenet, source: "builtin:squeezenet"}}]
    measure: {{warmup_s: 0.3, min_iterations: 50, min_s: 1.0, max_s: 5, repeats: 5, placement: false}}
    session: {{intra_op_num_threads: {threads}}}
    """


def _busy(deadline: float, duty: float = 1.0, period: float = 0.2) -> None:
    """Burn CPU until deadline: all the time (duty 1), or duty x period on, the rest asleep."""
    while time.monotonic() < deadline:
        start = time.monotonic()
        while time.monotonic() - start < duty * period:
            pass
        if duty < 1.0:
            time.sleep((1.0 - duty) * period)


def test_unstable_flag_quiet_vs_disturbed(benchmark, tmp_path) -> None:
    """Five repeats of one case: the spread is reported; a case run next to a busy loop is flagged.

    The busy loop runs on the other core, on and off (50 % of each 200 ms): a disturbance that
    hits part of the runs, which is what a shared machine does. A busy loop that never stops is
    reported too: it slows every run alike, so no statistic of the samples can see it (that needs
    a machine-load reading, see docs/measurement.md). `unstable` holds the flags that predict a
    different rerun (process spread, busy machine); cv_robust and upper_tail are shown, not flagged.
    """
    import multiprocessing

    def one(label: str, threads: int, hogs: int, duty: float = 1.0) -> dict[str, Any]:
        context = multiprocessing.get_context("spawn")
        procs = [context.Process(target=_busy, args=(time.monotonic() + 60, duty), daemon=True) for _ in range(hogs)]
        for proc in procs:
            proc.start()
        try:
            with ForeignLoad() as load:
                document, _ = run_harness(tmp_path, NOISE_SUITE.format(label=label, threads=threads), label)
        finally:
            for proc in procs:
                proc.terminate()
                proc.join()
        case = document["cases"][0]
        m, lat = case["measurement"], case["latency_ms"]
        return {"threads": threads, "busy_loops": hogs, "busy_duty": duty if hogs else 0,
                "foreign_cpu": round(max(0.0, load.fraction - hogs * duty / (os.cpu_count() or 1)), 3),
                "repeat_medians_ms": [round(x, 4) for x in m["repeat_medians_ms"]],
                "repeat_spread_rel_range": m["repeat_spread"]["rel_range"], "p50_ms": lat["p50"],
                "cv_robust": lat["cv_robust"], "upper_tail": (lat["p90"] - lat["p50"]) / (1.2815516 * lat["p50"]),
                "unstable": m["unstable"]}

    def compare() -> dict[str, Any]:
        return {"model": "builtin:squeezenet", "repeats": 5,
                "quiet_1_thread": one("quiet1", 1, 0),
                "quiet_2_threads": one("quiet2", 2, 0),
                "disturbed_2_threads_intermittent": one("intermittent2", 2, 1, 0.5),
                "disturbed_2_threads_constant": one("constant2", 2, 1, 1.0)}

    figures = bench_once(benchmark, compare)
    quiet2 = figures["quiet_2_threads"]
    verdict = ("quiet case unflagged" if not quiet2["unstable"] else "quiet case flagged") \
        if quiet2["foreign_cpu"] <= QUIET else "quiet case not judged: other jobs ran during it"
    record("unstable_quiet_vs_disturbed", {**figures, "quiet_verdict": verdict,
                                           "target": "intermittently disturbed flagged; quiet unflagged when the "
                                                     "machine was quiet; constant disturbance reported only"})
    assert figures["disturbed_2_threads_intermittent"]["unstable"], figures
    if quiet2["foreign_cpu"] <= QUIET:
        assert not quiet2["unstable"], figures
