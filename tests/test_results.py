"""The results record and its files: typed reading with clear errors, the version 1 upgrade,
append-only writing that survives crashes, and a run that leaves nothing behind."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import results
from harness.cli import main as cli_main
from harness.errors import EXIT_BUG, InputError
from harness.results import CaseRecord, ResultsWriteError, ResultsWriter, Run, read, write_document

from .conftest import FAST_MEASURE, only_results, run_cli

DATA = Path(__file__).parent / "data"
GOLDEN_V1 = DATA / "results-v1-golden.json"  # a real run of harness 0.1.0 (schema 1), samples trimmed


def run_of(n_cases: int = 2) -> Run:
    run = read(GOLDEN_V1)
    run.cases = run.cases[:n_cases]
    return run


# --- the golden version 1 file -------------------------------------------------------------------


def test_golden_v1_file_loads_through_the_upgrade() -> None:
    assert json.loads(GOLDEN_V1.read_text())["schema_version"] == 1
    run = read(GOLDEN_V1)
    assert run.schema_version == results.SCHEMA_VERSION == 2 and run.status == "complete"
    assert [c.status for c in run.cases].count("ok") == 4 and len(run.cases) == 8
    ok = run.cases[0]
    assert ok.latency_ms is not None and ok.latency_ms.p50 > 0 and ok.runtime.providers_assigned
    assert ok.placement is not None and ok.placement.total and ok.measurement is not None
    fp16 = next(c for c in run.cases if c.variant == "fp16" and c.ok)
    assert fp16.accuracy is not None and fp16.accuracy.cosine is not None and fp16.accuracy.cosine > 0.99
    unavailable = next(c for c in run.cases if c.status == "unavailable")
    assert "CUDAExecutionProvider" in (unavailable.reason or "") and unavailable.latency_ms is None
    frame = results.load(GOLDEN_V1)
    assert len(frame) == 8 and frame["latency_ms.p50"].notna().sum() == 4


def test_golden_v1_file_reports_and_compares(tmp_path: Path) -> None:
    md = run_cli("report", GOLDEN_V1, "--format", "md", "-o", tmp_path / "r.md")
    assert md.returncode == 0, md.stderr
    assert "tiny" in (tmp_path / "r.md").read_text()
    html = run_cli("report", GOLDEN_V1, "-o", tmp_path / "r.html")
    assert html.returncode == 0, html.stderr
    same = run_cli("compare", GOLDEN_V1, GOLDEN_V1)
    assert same.returncode == 0, same.stdout + same.stderr  # a run against itself: nothing moved
    # and a v2 file written from it compares against the v1 original
    converted = write_document(tmp_path / "v2.jsonl", read(GOLDEN_V1))
    assert run_cli("compare", GOLDEN_V1, converted).returncode == 0


def test_round_trip_keeps_every_field_and_unknown_keys(tmp_path: Path) -> None:
    run = read(GOLDEN_V1)
    run.cases[0].extra["from_the_future"] = {"x": 1}
    again = read(write_document(tmp_path / "r.jsonl", run))
    assert again.to_json() == run.to_json()
    assert again.cases[0].extra == {"from_the_future": {"x": 1}}


# --- append-only files -----------------------------------------------------------------------------


def test_writer_appends_one_line_per_case_and_ends_the_run(tmp_path: Path) -> None:
    source = run_of(3)
    writer = ResultsWriter.create(tmp_path, "s-1", source)
    header = writer.path.read_text()
    assert header.count("\n") == 1 and json.loads(header)["record"] == "run"
    for case in source.cases:
        writer.append(case)
        assert read(writer.path).status == "running"  # readable between any two cases
    writer.finish("complete", "2026-12-04T00:00:00Z")
    lines = writer.path.read_text().splitlines()
    assert [json.loads(line)["record"] for line in lines] == ["run", "case", "case", "case", "end"]
    back = read(writer.path)
    assert back.status == "complete" and [c.to_json() for c in back.cases] == [c.to_json() for c in source.cases]
    assert writer.bytes_written == writer.path.stat().st_size  # each byte written once


def test_two_runs_in_the_same_second_get_two_files(tmp_path: Path) -> None:
    a = ResultsWriter.create(tmp_path, "s-20261204T000000Z", run_of(0))
    b = ResultsWriter.create(tmp_path, "s-20261204T000000Z", run_of(0))
    assert a.path != b.path and a.path.exists() and b.path.exists()
    a.close()
    b.close()


def test_a_torn_last_line_is_dropped_and_the_run_reads_as_running(tmp_path: Path) -> None:
    writer = ResultsWriter.create(tmp_path, "torn", run_of(0))
    for case in run_of(2).cases:
        writer.append(case)
    writer.close()
    with open(writer.path, "ab") as f:
        f.write(b'{"record":"case","case_id":"half')  # SIGKILL in the middle of a write
    run = read(writer.path)
    assert run.status == "running" and len(run.cases) == 2


def test_a_failed_write_leaves_no_half_line_and_keeps_finished_cases(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    writer = ResultsWriter.create(tmp_path, "full", run_of(0))
    first, second = run_of(2).cases
    writer.append(first)
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:100]))  # part of the line reaches the disk, then ENOSPC
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(ResultsWriteError, match="No space left on device; the 1 finished cases before it are kept"):
        writer.append(second)
    monkeypatch.undo()
    writer.close()
    run = read(writer.path)
    assert [c.case_id for c in run.cases] == [first.case_id]


@pytest.mark.parametrize("mutate, where", [
    (lambda case: case.pop("model"), "model: is missing"),
    (lambda case: case.update(latency_ms="fast"), "latency_ms: expected an object, got a string ('fast')"),
    (lambda case: case["latency_ms"].update(p50="1.0"), "latency_ms.p50: expected a number, got a string ('1.0')"),
    (lambda case: case.update(samples_ms=[1.0, float("nan")]), "samples_ms[1]: expected a finite number, got nan"),
    (lambda case: case.update(samples_ms=[1.0, "2"]), "samples_ms[1]: expected a number, got a string ('2')"),
    (lambda case: case.update(status="great"), "status: must be one of ok, failed, unavailable, got 'great'"),
    (lambda case: case.pop("latency_ms"), "latency_ms: is missing for an ok case"),
])
def test_a_bad_case_line_names_the_file_line_and_field(tmp_path: Path, mutate, where: str) -> None:
    path = write_document(tmp_path / "r.jsonl", run_of(2))
    lines = path.read_text().splitlines()
    case = json.loads(lines[2])
    mutate(case)
    lines[2] = json.dumps(case)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        read(path)
    assert str(caught.value) == f"{path}:3: {where}"


@pytest.mark.parametrize("document, message", [
    ({"schema_version": 1, "run_id": "r", "suite": {"name": "s"}, "cases": "many"}, "cases: expected an array"),
    ({"schema_version": 1, "run_id": "r", "suite": {"name": "s"}, "environment": None,
      "cases": [{"case_id": "a"}]}, "cases[0].model: is missing"),
    ({"schema_version": 9, "run_id": "r", "cases": []}, "schema_version: 9 is newer than this harness reads"),
    ({"schema_version": "1", "cases": []}, "schema_version: expected a whole number"),
])
def test_a_bad_version_1_document_names_the_file_and_field(tmp_path: Path, document: dict, message: str) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=f"^{path}: " + message.replace("[", r"\[").replace("]", r"\]")):
        read(path)


def test_a_corrupt_middle_line_is_an_error_not_silently_skipped(tmp_path: Path) -> None:
    path = write_document(tmp_path / "r.jsonl", run_of(2))
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:40]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"^{path}:2: not valid JSON"):
        read(path)


def test_same_file_given_twice_counts_once(tmp_path: Path) -> None:
    assert len(results.expand_paths([GOLDEN_V1, GOLDEN_V1, DATA])) == 1


def test_record_module_is_standard_library_only() -> None:
    code = ("import sys; import harness.results.record, harness.results.notes; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
            "and m.split('.')[0] != 'harness' and not m.startswith(('__', '_distutils_hack'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_worker_imports_only_stdlib_numpy_and_onnxruntime() -> None:
    """The worker runs inside other runtimes' environments: nothing else may be importable there."""
    code = textwrap.dedent("""
        import pkgutil, sys, importlib, harness.worker
        for info in pkgutil.iter_modules(harness.worker.__path__):
            importlib.import_module(f"harness.worker.{info.name}")
        import onnxruntime  # what measuring imports at run time
        allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime", "harness", "_distutils_hack", "google"}
        third = sorted({m.split(".")[0] for m in sys.modules if not m.startswith("__")} - allowed)
        mine = sorted(m for m in sys.modules if m.startswith("harness")
                      and m not in ("harness", "harness.stats") and not m.startswith("harness.worker"))
        print(third, mine)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    third, mine = out.stdout.strip().split("] [")
    # onnxruntime's own imports (its packaging helpers) are its business; ours are pinned here
    assert mine.rstrip("]") == "", out.stdout
    assert all(name.strip("'[ ") in ("", "packaging", "sympy", "flatbuffers", "coloredlogs", "humanfriendly",
                                      "mpmath", "protobuf")
               for name in third.split(",")), out.stdout


# --- a run leaves nothing behind and keeps what it measured ---------------------------------------------


TINY_SUITE = f"""
    name: tidy
    models: [{{name: tiny, source: "builtin:tiny"}}]
    variants: [fp32, fp16, {{name: missing, kind: file, path: nowhere.onnx}}]
    matrix: {{batch: [1, 2]}}
    {FAST_MEASURE}
    """


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("harness"))


def test_no_temp_folder_is_left_after_a_run_with_a_failed_case(write_suite, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    suite = write_suite(TINY_SUITE)
    env = {**os.environ, "TMPDIR": str(temp)}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "-o", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the 'missing' variant fails its cases
    statuses = [c["status"] for c in only_results(tmp_path / "r")["cases"]]
    assert statuses.count("failed") == 2 and statuses.count("ok") == 4
    assert leftovers(temp) == []
    variants = subprocess.run([sys.executable, "-m", "harness.cli", "variants", str(suite)], capture_output=True,
                              text=True, env=env, timeout=600)
    assert variants.returncode == 1 and leftovers(temp) == []


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_finished_cases_kills_the_worker_and_cleans_up(write_suite, tmp_path: Path, signum: int,
                                                                      code: int) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    suite = write_suite("""
        name: stopped
        models: [{name: tiny, source: "builtin:tiny"}]
        matrix: {batch: [1, 2, 3, 4, 5, 6, 7, 8]}
        measure: {warmup_s: 0, min_iterations: 10, min_s: 0.5, max_s: 1, placement: false, repeats: 1, interleave: 2}
        """)
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = list(out.glob("*.jsonl"))
        if files and files[0].read_text().count('"record":"case"') >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stdout + stderr
    document = only_results(out)
    assert document["status"] == "interrupted" and document["finished_at"]
    assert 2 <= len(document["cases"]) < 8 and all(c["status"] == "ok" for c in document["cases"])
    assert f"interrupted: {len(document['cases'])} finished cases kept" in stdout
    assert leftovers(temp) == []
    time.sleep(0.5)
    workers = subprocess.run(["pgrep", "-f", f"harness.worker {temp}"], capture_output=True, text=True)
    assert workers.stdout.strip() == "", "a worker outlived the run"


def test_an_interrupt_hidden_by_cleanup_still_stops_the_run(write_suite, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while numpy writes a case's inputs: zipfile's cleanup raises ValueError, which hides
    the interrupt in its __context__. That is the run being stopped, not the case failing (CI saw
    the case marked failed and the run go on to exit 1)."""
    import numpy as np

    from harness.run import case as case_module

    suite = write_suite(TINY_SUITE.replace("[1, 2]", "[1, 2, 3]"))
    real, calls = np.savez, []

    def interrupted_savez(*args, **kwargs) -> None:
        calls.append(1)
        if len(calls) < 3:
            return real(*args, **kwargs)
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("Can't close the ZIP file while there is an open writing handle on it.") from None

    monkeypatch.setattr(case_module.np, "savez", interrupted_savez)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", ["harness", "run", str(suite), "-o", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as exit_:
        cli_main()
    assert exit_.value.code == 130
    document = only_results(tmp_path / "r")
    assert document["status"] == "interrupted"
    assert all(c["status"] != "failed" or "could not prepare" not in c.get("reason", "") for c in document["cases"])


def test_reraise_interrupt_finds_it_in_the_chain() -> None:
    from harness.run.signals import Interrupted, reraise_interrupt

    try:
        try:
            raise Interrupted(signal.SIGTERM)
        except KeyboardInterrupt as inner:
            raise RuntimeError("cleanup failed") from inner
    except RuntimeError as exc:
        with pytest.raises(Interrupted) as found:
            reraise_interrupt(exc)
    assert found.value.signum == signal.SIGTERM
    reraise_interrupt(ValueError("an ordinary error"))  # no interrupt: returns


def test_a_harness_bug_mid_run_exits_70_and_keeps_finished_cases(write_suite, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from harness.run import session

    suite = write_suite(TINY_SUITE.replace("[1, 2]", "[1, 2, 3]"))
    real = session.RunSession.keep
    calls = []

    def second_case_breaks(self, record: CaseRecord) -> None:  # a bug in the run loop, outside any case
        calls.append(1)
        if len(calls) == 2:
            raise KeyError("simulated bug")
        real(self, record)

    monkeypatch.setattr(session.RunSession, "keep", second_case_breaks)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", ["harness", "run", str(suite), "-o", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as exit_:
        cli_main()
    assert exit_.value.code == EXIT_BUG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "harness bug (KeyError: 'simulated bug')" in err[0] and "crashes" in err[0]
    document = only_results(tmp_path / "r")
    assert document["status"] == "aborted" and len(document["cases"]) == 1


def parent_bytes_written(write_suite, tmp_path: Path, cases: int) -> tuple[int, int]:
    """(bytes the harness process passed to write(), size of its results file) for a run of N cases."""
    suite = write_suite(f"""
        name: linear
        models: [{{name: tiny, source: "builtin:tiny"}}]
        matrix: {{batch: {list(range(1, cases + 1))}}}
        measure: {{warmup_s: 0, warmup_iterations: 1, min_iterations: 200, min_s: 0, max_s: 1, placement: false, repeats: 1}}
        """, name=f"linear{cases}.yaml")
    io_file, out = tmp_path / f"io{cases}.txt", tmp_path / f"r{cases}"
    # The main thread's own counters: /proc/self/io also adds every reaped child (the workers).
    code = (f"import atexit, os, sys; atexit.register(lambda: open({str(io_file)!r}, 'w').write(open("
            f"f'/proc/self/task/{{os.getpid()}}/io').read())); sys.argv = ['harness', 'run', {str(suite)!r}, '-o', "
            f"{str(out)!r}]; "
            "from harness.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("*.jsonl")
    assert len(read(path).cases) == cases
    wchar = int(next(line.split()[1] for line in io_file.read_text().splitlines() if line.startswith("wchar")))
    return wchar, path.stat().st_size


def test_parent_writes_each_byte_of_the_results_once(write_suite, tmp_path: Path) -> None:
    """Version 1 rewrote the whole document after each case (O(cases^2) bytes). Counted with the
    kernel's own tally of the harness process's write() calls (wchar of its main thread; the
    workers are not counted): what 20 more cases cost it (results, scratch files, terminal lines)
    stays within a small multiple of what they add to the file. A fixed cost per process
    (onnxruntime writes its own telemetry database, ~50 KB) cancels in the difference; the
    200-case figure is in make bench."""
    small, small_size = parent_bytes_written(write_suite, tmp_path, 4)
    large, large_size = parent_bytes_written(write_suite, tmp_path, 24)
    added = large_size - small_size
    assert added > 0 and large - small <= 5 * added, (small, small_size, large, large_size)


@pytest.mark.parametrize("args, heavy", [
    (["--help"], ("numpy", "onnx", "onnxruntime", "pandas", "scipy", "plotly", "yaml", "harness.suite")),
    (["validate", "suites/quickstart.yaml"], ("onnx", "onnxruntime", "pandas", "scipy", "plotly", "numpy")),
])
def test_start_up_imports_only_what_the_command_needs(args: list[str], heavy: tuple[str, ...]) -> None:
    """Start-up time is set by imports (timed in make bench); this pins which ones happen."""
    code = (f"import sys; sys.argv = ['harness', *{args!r}]\n"
            "from harness.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)")
    from .conftest import REPO

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr[-500:]
