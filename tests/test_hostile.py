"""Hostile input and faults, as a careless user or a flaky machine would produce them.

Every kind must end with the documented exit code and ONE line on stderr that names the file and
the field or input (no traceback), and must lose no finished case. The CLI runs as a user runs
it, in a subprocess.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.errors import EXIT_ACCURACY, EXIT_FAILED, EXIT_INPUT, EXIT_OK
from harness.results import read, write_document

from .conftest import FAST_MEASURE, matmul_model, only_results, token_model

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "results-v1-golden.json"
TINY = 'models: [{name: tiny, source: "builtin:tiny"}]'


def harness(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """The single stderr line of a refused input, checked for what it must name."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(("note:", "warning:"))]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write(folder: Path, text: str, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# --- suites that validate refuses: exit 2, "file:line: field: what" --------------------------------

SUITES = {
    "yaml syntax": ("name: s\nmodels: [\n", "YAML syntax error"),
    "not a mapping": ("- just\n- a list\n", "a suite is a YAML mapping"),
    "typo in a key": (f"name: s\n{TINY}\nmeasure: {{warmpu: 1}}\n", "did you mean 'warmup_s'"),
    "typo suggests within its section": (f"name: s\n{TINY}\naccuracy: {{min_cos: 0.9}}\n",
                                         "did you mean 'min_cosine'"),
    "infinite max_s": (f"name: s\n{TINY}\nmeasure: {{max_s: .inf}}\n", "measure.max_s: must be a finite number"),
    "infinite timeout_s": (f"name: s\n{TINY}\nmeasure: {{timeout_s: .inf}}\n", "measure.timeout_s"),
    "nan accuracy bound": (f"name: s\n{TINY}\naccuracy: {{max_abs: .nan}}\n", "accuracy.max_abs"),
    "infinite price": (f"name: s\n{TINY}\ntargets: [{{name: cpu, price_per_hour: .inf}}]\n",
                       "targets[0].price_per_hour"),
    "string for a number": (f'name: s\n{TINY}\nmeasure: {{min_s: "20"}}\n', "measure.min_s: must be a valid number"),
    "boolean for a number": (f"name: s\n{TINY}\nmeasure: {{repeats: true}}\n", "measure.repeats"),
    "name with a space": (f'name: "my suite"\n{TINY}\n', "is not a valid name"),
    "yaml alias bomb": ("name: s\n" + "".join(
        f"{k}: &{k} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['x'] * 9)}]\n"
        for k, p in zip("abcdefg", ["", "a", "b", "c", "d", "e", "f"])) + TINY + "\n", "YAML aliases expand"),
    "key given twice": (f"name: s\nname: t\n{TINY}\n", "key given twice"),
    "missing model file": ("name: s\nmodels: [{name: m, path: nowhere.onnx}]\n", "models[0].path: model file"),
    "unknown builtin": ('name: s\nmodels: [{name: m, source: "builtin:resnet9000"}]\n', "unknown builtin model"),
    "unknown target": (f"name: s\n{TINY}\ntargets: [warp-drive]\n", "targets[0].name: unknown target"),
    "mapping as a provider option": (f"name: s\n{TINY}\ntargets: [{{name: cpu, options: {{arena: {{a: 1}}}}}}]\n",
                                     "provider option is a string, number or boolean"),
    "absurd thread count": (f"name: s\n{TINY}\nsession: {{intra_op_num_threads: 100000}}\n",
                            "session.intra_op_num_threads"),
    "exclude names an unknown model": (f"name: s\n{TINY}\nexclude: [{{model: nope}}]\n",
                                       "exclude[0].model: no model named 'nope'"),
    "exclude value not in the matrix": (f"name: s\n{TINY}\nmatrix: {{batch: [1, 2]}}\nexclude: [{{batch: 3}}]\n",
                                        "exclude[0].batch"),
    "include names an unknown target": (f"name: s\n{TINY}\ninclude: [{{target: nope}}]\n", "include[0].target"),
    "range beyond the dtype": ('name: s\nmodels: [{name: e, source: "builtin:encoder", dims: {sequence: 8}, '
                               'inputs: {input_ids: {range: [0, 99999999999999999999]}, attention_mask: {value: 1}}}]\n',
                               "does not fit input 'input_ids' (int64"),
    "range beyond the embedding table": ('name: s\nmodels: [{name: e, source: "builtin:encoder", dims: {sequence: 8},'
                                         ' inputs: {input_ids: {range: [0, 50000]}, attention_mask: {value: 1}}}]\n',
                                         "outside the 30522-row table"),
    "unresolved symbolic dim": ('name: s\nmodels: [{name: e, source: "builtin:encoder"}]\n', "sequence"),
    "input the model does not have": ('name: s\nmodels: [{name: t, source: "builtin:tiny", inputs: {y: {value: 1}}}]\n',
                                      "has no input 'y'"),
}


@pytest.mark.parametrize("kind", list(SUITES))
def test_validate_refuses_in_one_line(kind: str, tmp_path: Path) -> None:
    text, needle = SUITES[kind]
    suite = write(tmp_path, text)
    proc = harness("validate", suite, timeout=120)
    assert proc.returncode == EXIT_INPUT, (kind, proc.stdout, proc.stderr)
    one_line(proc, str(suite.name), needle)


def test_a_folder_named_as_the_model_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").mkdir()
    proc = harness("validate", write(tmp_path, "name: s\nmodels: [{name: m, path: model.onnx}]\n"))
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "suite.yaml", "models[0].path", "is a folder")


def test_a_corrupt_model_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"\x00garbage" * 100)
    proc = harness("validate", write(tmp_path, "name: s\nmodels: [{name: m, path: model.onnx}]\n"))
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "models[0].path", "not a valid ONNX model")


@pytest.mark.parametrize("arrays, needle", [
    ({"other": np.zeros((4, 16), np.float32)}, "feeds no input of model 'tiny'"),
    ({"x": np.array([["a"] * 16] * 4)}, "holds <U1 values"),
    ({"x": np.zeros((0, 16), np.float32)}, "has no rows"),
], ids=["arrays match no input", "string array", "zero rows"])
def test_real_data_that_cannot_feed_the_model(tmp_path: Path, arrays: dict, needle: str) -> None:
    np.savez(tmp_path / "data.npz", **arrays)
    proc = harness("validate", write(tmp_path, 'name: s\nmodels: [{name: tiny, source: "builtin:tiny", '
                                               'data: data.npz}]\n'))
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "models[0].data", needle)


def test_real_data_lacking_an_input(tmp_path: Path, models_dir: Path) -> None:
    token_model(models_dir / "tokens.onnx")
    np.savez(tmp_path / "data.npz", unrelated=np.zeros((2, 4), np.int64), input_ids=np.zeros((2, 4), np.int64))
    ok = harness("validate", write(tmp_path, "name: s\nmodels: [{name: t, path: models/tokens.onnx, data: data.npz, "
                                             "dims: {p2o.DynamicDimension.1: 4}}]\n"))
    assert ok.returncode == EXIT_OK, ok.stderr  # every input fed: extra arrays are fine
    two = token_model(models_dir / "two.onnx")  # same model, data for a name it lacks
    np.savez(tmp_path / "d2.npz", unrelated=np.zeros((2, 4), np.int64))
    proc = harness("validate", write(tmp_path, f"name: s\nmodels: [{{name: t, path: {two}, data: d2.npz, "
                                               "dims: {p2o.DynamicDimension.1: 4}}]\n", "s2.yaml"))
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "models[0].data", "feeds no input")


def test_filters_naming_nothing(tmp_path: Path) -> None:
    proc = harness("validate", write(tmp_path, f"name: s\n{TINY}\n"))
    assert proc.returncode == EXIT_OK
    run = harness("run", tmp_path / "suite.yaml", "--target", "tpu", "-o", tmp_path / "r")
    assert run.returncode == EXIT_INPUT
    one_line(run, "suite.yaml", "--target tpu: not in the suite")


# --- warnings: legal, but rarely meant ------------------------------------------------------------------------


def test_a_matrix_parameter_no_model_uses_is_said(tmp_path: Path) -> None:
    proc = harness("validate", write(tmp_path, f"name: s\n{TINY}\nmatrix: {{lr: [1, 2, 3]}}\n"))
    assert proc.returncode == EXIT_OK
    assert "matrix.lr is used by no model's inputs or dims" in proc.stderr


def test_a_huge_matrix_says_how_long_it_will_take(tmp_path: Path) -> None:
    proc = harness("validate", write(tmp_path, f"name: s\n{TINY}\nmatrix: {{batch: {list(range(1, 6001))}}}\n"))
    assert proc.returncode == EXIT_OK
    assert "6,000 cases" in proc.stderr and "hours of measuring" in proc.stderr


# --- results files that report and compare refuse: exit 2, "file:line: field" ------------------------------


def damaged(tmp_path: Path, change) -> Path:
    path = write_document(tmp_path / "r.jsonl", read(GOLDEN))
    lines = path.read_text().splitlines()
    case = json.loads(lines[1])
    change(case)
    lines[1] = json.dumps(case)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("change, needle", [
    (lambda c: c.pop("model"), "r.jsonl:2: model: is missing"),
    (lambda c: c.update(latency_ms="fast"), "r.jsonl:2: latency_ms: expected an object"),
    (lambda c: c.update(samples_ms=[1.0, "x"]), "r.jsonl:2: samples_ms[1]: expected a number"),
], ids=["case without model", "string latency", "string sample"])
@pytest.mark.parametrize("command", ["report", "compare"])
def test_damaged_results_are_one_line(tmp_path: Path, change, needle: str, command: str) -> None:
    path = damaged(tmp_path, change)
    args = ["report", path, "-o", tmp_path / "r.html"] if command == "report" else ["compare", GOLDEN, path]
    proc = harness(*args)
    assert proc.returncode == EXIT_INPUT, proc.stdout + proc.stderr
    one_line(proc, needle)


def test_nan_samples_in_an_old_file(tmp_path: Path) -> None:
    document = json.loads(GOLDEN.read_text())
    document["cases"][0]["samples_ms"][3] = float("nan")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))  # Python writes NaN, which JSON does not have
    proc = harness("compare", GOLDEN, path)
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "old.json: cases[0].samples_ms[3]: expected a finite number")


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.update(cases="many"), "old.json: cases: expected an array"),
    (lambda d: d.update(schema_version=7), "old.json: schema_version: 7 is newer"),
], ids=["string cases", "future version"])
def test_bad_old_documents(tmp_path: Path, mutate, needle: str) -> None:
    document = json.loads(GOLDEN.read_text())
    mutate(document)
    (tmp_path / "old.json").write_text(json.dumps(document))
    proc = harness("report", tmp_path / "old.json", "-o", tmp_path / "r.html")
    assert proc.returncode == EXIT_INPUT
    one_line(proc, needle)


def test_a_null_environment_and_a_torn_file_still_report(tmp_path: Path) -> None:
    document = json.loads(GOLDEN.read_text())
    document["environment"] = None
    (tmp_path / "old.json").write_text(json.dumps(document))
    torn = write_document(tmp_path / "torn.jsonl", read(GOLDEN))
    torn.write_text(torn.read_text()[:-200])  # cut inside a line: the writer died mid-write
    proc = harness("report", tmp_path / "old.json", torn, "--format", "md", "-o", tmp_path / "r.md")
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "the run is running" in proc.stderr  # the torn file never ended: said, not hidden


def test_compare_with_no_case_in_common_is_an_input_error(tmp_path: Path) -> None:
    other = read(GOLDEN)
    for case in other.cases:
        case.case_id = "other/" + case.case_id
    proc = harness("compare", GOLDEN, write_document(tmp_path / "o.jsonl", other))
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "o.jsonl: no case in common")


def test_compare_markdown_escapes_what_results_carry(tmp_path: Path) -> None:
    evil = read(GOLDEN)
    evil.environment.hostname = "host\n# injected heading <script>alert(1)</script>"
    evil.run_id = "<img src=x onerror=alert(1)>"
    evil.cases[2].reason = "<svg onload=alert(1)> | broken"
    base = read(GOLDEN)
    base.environment.hostname = evil.environment.hostname
    md = tmp_path / "c.md"
    proc = harness("compare", write_document(tmp_path / "b.jsonl", base), write_document(tmp_path / "e.jsonl", evil),
                   "--markdown", md, "--allow-different-machines")
    assert proc.returncode in (EXIT_OK, 3), proc.stdout + proc.stderr
    text = md.read_text()
    assert "<script" not in text and "<img" not in text and "<svg" not in text
    assert not any(line.startswith("# injected") for line in text.splitlines())


# --- outputs, paths and the cache ---------------------------------------------------------------------------


def test_report_writes_through_a_symlink_and_into_a_fifo(tmp_path: Path) -> None:
    real = tmp_path / "real.md"
    real.write_text("old")
    (tmp_path / "link.md").symlink_to(real)
    assert harness("report", GOLDEN, "--format", "md", "-o", tmp_path / "link.md").returncode == EXIT_OK
    assert (tmp_path / "link.md").is_symlink() and real.read_text().startswith("# Benchmark report")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    assert harness("report", GOLDEN, "--format", "md", "-o", fifo).returncode == EXIT_OK
    assert reader.communicate(timeout=60)[0].startswith("# Benchmark report")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("name", ["..", "../..", "/etc", "a/../.."])
def test_runtimes_remove_refuses_paths(tmp_path: Path, name: str) -> None:
    cache = tmp_path / "cache"
    (cache / "runtimes").mkdir(parents=True)
    (cache / "models").mkdir()
    (cache / "models" / "keep.onnx").write_text("x")
    proc = harness("runtimes", "remove", name, env={"HARNESS_CACHE": str(cache)})
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "not a runtime name")
    assert (cache / "models" / "keep.onnx").exists()


def test_runtimes_remove_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "runtimes" / "mine").mkdir(parents=True)
    (cache / "runtimes" / "mine" / "precious.txt").write_text("x")
    proc = harness("runtimes", "remove", "mine", env={"HARNESS_CACHE": str(cache)})
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "not a runtime the harness created")
    assert (cache / "runtimes" / "mine" / "precious.txt").exists()


@pytest.mark.parametrize("where, needle", [
    ("file", "not a folder"), ("unwritable", "cannot create the results folder"),
])
def test_results_folder_that_cannot_be(tmp_path: Path, where: str, needle: str) -> None:
    suite = write(tmp_path, f"name: s\n{TINY}\n{FAST_MEASURE}\n")
    out = tmp_path / "taken"
    if where == "file":
        out.write_text("x")
    else:
        out = Path("/proc/1/harness-results")  # no one, root included, can create a folder there
    proc = harness("run", suite, "-o", out)
    assert proc.returncode == EXIT_INPUT
    one_line(proc, str(out), needle)


def test_a_suite_name_too_long_for_a_file_name(tmp_path: Path) -> None:
    name = "n" * 250
    proc = harness("run", write(tmp_path, f"name: {name}\n{TINY}\n{FAST_MEASURE}\n"), "-o", tmp_path / "r")
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "cannot create the results file", "File name too long")


def test_an_unwritable_cache_is_named(tmp_path: Path) -> None:
    proc = harness("validate", write(tmp_path, f"name: s\n{TINY}\n"), env={"HARNESS_CACHE": "/proc/1/harness-cache"})
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "suite.yaml", "cannot write builtin model tiny", "HARNESS_CACHE")


def test_an_unwritable_report_keeps_the_results(tmp_path: Path) -> None:
    proc = harness("run", write(tmp_path, f"name: s\n{TINY}\n{FAST_MEASURE}\n"), "-o", tmp_path / "r",
                   "--report", "/proc/1/report.html")
    assert proc.returncode == EXIT_INPUT
    one_line(proc, "/proc/1/report.html: cannot write")
    assert only_results(tmp_path / "r")["status"] == "complete"


# --- faults during a run: the case fails alone, the run goes on ---------------------------------------------


def test_a_case_that_cannot_be_prepared_fails_alone(tmp_path: Path) -> None:
    suite = write(tmp_path, f"""
        name: three
        models:
          - {{name: first, source: "builtin:tiny"}}
          - {{name: huge, source: "builtin:tiny", inputs: {{x: {{shape: [100000000000, 16]}}}}}}
          - {{name: third, source: "builtin:tiny"}}
        {FAST_MEASURE}
        """)
    proc = harness("run", suite, "-o", tmp_path / "r")
    assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
    document = only_results(tmp_path / "r")
    assert document["status"] == "complete" and [c["status"] for c in document["cases"]] == ["ok", "failed", "ok"]
    assert "inputs need" in document["cases"][1]["reason"] and "GiB" in document["cases"][1]["reason"]


def test_a_runtime_that_prints_garbage_is_unavailable(tmp_path: Path) -> None:
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho garbage\n")
    fake.chmod(0o755)
    suite = write(tmp_path, f"""
        name: fake
        {TINY}
        targets: [cpu, {{name: odd, provider: CPUExecutionProvider, runtime: {{python: {fake}}}}}]
        {FAST_MEASURE}
        """)
    proc = harness("run", suite, "-o", tmp_path / "r")
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    cases = {c["target"]: c for c in only_results(tmp_path / "r")["cases"]}
    assert cases["cpu"]["status"] == "ok" and cases["odd"]["status"] == "unavailable"
    assert "printed 'garbage' instead of a runtime description" in cases["odd"]["reason"]


def test_a_worker_over_its_memory_limit_fails_its_case(tmp_path: Path) -> None:
    suite = write(tmp_path, """
        name: greedy
        models: [{name: mlp, source: "builtin:mlp"}]
        measure: {warmup_s: 0, min_iterations: 10, min_s: 0.2, max_s: 2, memory_limit_mb: 60, placement: false, repeats: 1}
        """)
    proc = harness("run", suite, "-o", tmp_path / "r")
    assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
    (case,) = only_results(tmp_path / "r")["cases"]
    assert case["status"] == "failed" and case["reason"].startswith("out of memory: the worker's RSS passed 60 MB")


def test_accuracy_below_the_thresholds_has_its_own_exit_code(tmp_path: Path, models_dir: Path) -> None:
    matmul_model(models_dir / "small.onnx", size=4)  # 4 outputs: not class scores, so no top-1
    suite = write(tmp_path, f"""
        name: strict
        models: [{{name: small, path: models/small.onnx}}]
        variants: [fp32, fp16]
        accuracy: {{min_cosine: 1.0, max_abs: 0.0, min_top1: 0.9}}
        {FAST_MEASURE}
        """)
    proc = harness("run", suite, "-o", tmp_path / "r")
    assert proc.returncode == EXIT_ACCURACY, proc.stdout + proc.stderr
    fp16 = next(c for c in only_results(tmp_path / "r")["cases"] if c["variant"] == "fp16")
    assert fp16["status"] == "ok" and fp16["accuracy"]["verdict"] == "fail"
    assert any("min_top1 not applied" in note for note in fp16["notes"])


def test_provider_options_the_provider_refuses_fail_the_case(tmp_path: Path) -> None:
    suite = write(tmp_path, f"""
        name: options
        {TINY}
        targets:
          - {{name: lots, provider: OpenVINOExecutionProvider, options: {{device_type: CPU, num_of_threads: lots}}}}
          - {{name: typo, provider: OpenVINOExecutionProvider, options: {{device_type: CPU, num_of_thread: 1}}}}
          - {{name: gpu, provider: OpenVINOExecutionProvider, options: {{device_type: GPU}}}}
        {FAST_MEASURE}
        """)
    proc = harness("run", suite, "-o", tmp_path / "r")
    assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
    cases = {c["target"]: c for c in only_results(tmp_path / "r")["cases"]}
    assert cases["lots"]["status"] == "failed" and "Number of threads should be a number" in cases["lots"]["reason"]
    assert cases["typo"]["status"] == "failed" and "num_of_thread" in cases["typo"]["reason"]
    assert cases["gpu"]["status"] == "unavailable"  # the machine lacks the device: not the suite's fault


def test_a_damaged_cached_variant_is_rebuilt(tmp_path: Path) -> None:
    suite = write(tmp_path, f"name: v\n{TINY}\nvariants: [fp16]\n")
    cache = {"HARNESS_CACHE": str(tmp_path / "cache")}
    assert harness("variants", suite, env=cache).returncode == EXIT_OK
    (built,) = (tmp_path / "cache" / "variants").glob("*.onnx")
    built.write_bytes(built.read_bytes()[:100])
    again = harness("variants", suite, env=cache)
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    assert "is damaged" in again.stdout and "rebuilding" in again.stdout
    assert harness("validate", suite, env=cache).returncode == EXIT_OK
