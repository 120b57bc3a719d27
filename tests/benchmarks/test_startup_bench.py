"""Start-up time of the CLI (``make bench``): ``harness --help`` and ``harness validate`` of the
quick-start suite within 0.5 s (median of 7), against ``python -c "import onnxruntime"`` measured
side by side, written to ``reports/bench-startup.json``. Which modules each command imports is
pinned in the test suite (tests/test_results.py); this measures what that buys.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports" / "bench-startup.json"
HARNESS = str(Path(sys.executable).with_name("harness"))


def median_seconds(command: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, cwd=REPO)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_cli_start_up_within_half_a_second() -> None:
    subprocess.run([HARNESS, "validate", "suites/quickstart.yaml"], capture_output=True, check=True, cwd=REPO)
    figures = {
        "python_pass_s": median_seconds([sys.executable, "-c", "pass"]),
        "import_onnxruntime_s": median_seconds([sys.executable, "-c", "import onnxruntime"]),
        "harness_help_s": median_seconds([HARNESS, "--help"]),
        "harness_validate_quickstart_s": median_seconds([HARNESS, "validate", "suites/quickstart.yaml"]),
    }
    figures = {k: round(v, 3) for k, v in figures.items()}
    figures["help_over_import_onnxruntime"] = round(figures["harness_help_s"] / figures["import_onnxruntime_s"], 2)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"startup": {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"hostname": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "runs_per_figure": 7, **figures}}, indent=2))
    print("\n[startup]")
    for name, value in figures.items():
        print(f"  {name}: {value}")
    assert figures["harness_help_s"] <= 0.5 and figures["harness_validate_quickstart_s"] <= 0.5, figures
