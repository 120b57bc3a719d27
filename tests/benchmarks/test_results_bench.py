"""Benchmark of the results file's cost (``make bench``): a 200-case run of the builtin ``tiny``
model must cost the parent linear bytes and a constant time per case.

Version 1 rewrote the whole document after every case: 500 cases spent 47 s serialising, and
the time per case grew from 0.9 s to 4 s by case 290 of a 10,000-case run. Both figures are
ratios measured in the same run (bytes written / final size, last 20 cases / first 20 cases),
written to ``reports/bench-results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from harness.results import read

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports" / "bench-results.json"
CASES = int(os.environ.get("BENCH_RESULTS_CASES", "200"))


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_results_cost_is_linear_in_cases(tmp_path: Path) -> None:
    suite = tmp_path / "many.yaml"
    suite.write_text(textwrap.dedent(f"""
        name: many
        models: [{{name: tiny, source: "builtin:tiny"}}]
        matrix: {{batch: {list(range(1, CASES + 1))}}}
        measure: {{warmup_s: 0, warmup_iterations: 1, min_iterations: 2000, min_s: 0, max_s: 0.3, placement: false, repeats: 1, interleave: 1}}
        """))
    io_file = tmp_path / "io.txt"
    # The harness process's main thread alone: /proc/self/io also adds every reaped worker.
    code = (f"import atexit, os, sys; atexit.register(lambda: open({str(io_file)!r}, 'w').write(open("
            f"f'/proc/self/task/{{os.getpid()}}/io').read())); sys.argv = ['harness', 'run', {str(suite)!r}, "
            f"'-o', {str(tmp_path / 'r')!r}]; "
            "from harness.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (path,) = (tmp_path / "r").glob("*.jsonl")
    run = read(path)
    assert len(run.cases) == CASES
    wchar = int(next(line.split()[1] for line in io_file.read_text().splitlines() if line.startswith("wchar")))
    size = path.stat().st_size
    ends = [seconds(c.finished_at or "") for c in run.cases]
    starts = [seconds(c.started_at or "") for c in run.cases]
    per_case = [b - a for a, b in zip(ends, ends[1:])]  # case end to case end: everything the parent does
    first, last = statistics.median(per_case[:20]), statistics.median(per_case[-20:])
    measuring = statistics.median(e - s for s, e in zip(starts, ends))
    figures = {"cases": CASES, "results_bytes": size, "parent_bytes_written": wchar,
               "bytes_written_over_file": round(wchar / size, 3),
               "median_s_per_case_first_20": round(first, 4), "median_s_per_case_last_20": round(last, 4),
               "last_over_first": round(last / first, 3), "median_s_inside_run_case": round(measuring, 4)}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"results_linear": {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"hostname": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        **figures}}, indent=2))
    print("\n[results_linear]")
    for name, value in figures.items():
        print(f"  {name}: {value}")
    assert wchar <= 5 * size, figures
    assert last <= 1.5 * first, figures  # v1: 4x by case 290; noise here is about +-20%
