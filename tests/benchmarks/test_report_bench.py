"""Benchmark of the HTML report on a large run (``make bench``): 2,000 cases must render in seconds.

Builds a synthetic 2,000-case results document (1,001 raw samples per case, the real schema),
times ``write_report`` on it, and records seconds, output size and where the time goes in
``reports/bench-report.json``. No timing is asserted in the normal test suite.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.report import charts
from harness.report.html import render_html, write_report
from harness.results import read_all
from tests import synthetic

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "reports" / "bench-report.json"
CASES = int(os.environ.get("BENCH_REPORT_CASES", "2000"))
SAMPLES = 1001


def record(figures: dict[str, Any]) -> None:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    entry = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
             "machine": {"hostname": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
             **figures}
    tmp = REPORT.with_suffix(".tmp")
    tmp.write_text(json.dumps({"write_report_large": entry}, indent=2))
    tmp.replace(REPORT)
    print("\n[write_report_large]")
    for name, value in figures.items():
        print(f"  {name}: {value}")


@pytest.fixture(scope="module")
def large_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "large.json"
    path.write_text(json.dumps(synthetic.large_document(CASES, SAMPLES), separators=(",", ":")))
    return path


def test_write_report_large_run(benchmark: Any, large_results: Path, tmp_path: Path) -> None:
    output = tmp_path / "large.html"
    seconds: list[float] = []

    def timed() -> Path:
        start = time.perf_counter()
        written = write_report([large_results], output)
        seconds.append(time.perf_counter() - start)
        return written

    benchmark.pedantic(timed, rounds=3, iterations=1, warmup_rounds=0)

    # Where the time goes, once: reading the JSON vs computing and rendering.
    start = time.perf_counter()
    documents = read_all([large_results])
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    html = render_html(documents)
    render_s = time.perf_counter() - start

    marker = 'id="report-figures-gz">' if 'id="report-figures-gz">' in html else 'id="report-figures">'
    figures_json = html.split(marker, 1)[1].split("</script>", 1)[0]
    record({
        "cases": CASES, "samples_per_case": SAMPLES,
        "results_mb": round(large_results.stat().st_size / 1e6, 2),
        "seconds_median": round(statistics.median(seconds), 3), "seconds_min": round(min(seconds), 3),
        "seconds_per_round": [round(s, 3) for s in seconds],
        "read_s": round(read_s, 3), "compute_and_render_s": round(render_s, 3),
        "output_mb": round(output.stat().st_size / 1e6, 2),
        "chart_data_mb": round(len(figures_json) / 1e6, 2),  # gzipped + base64 above 1 MB
        "charts": html.count("data-fig="), "points_per_case": charts.points_per_case(CASES),
    })
    assert output.stat().st_size <= 5e6, "issue 14: a 2,000-case report is at most 5 MB"


def test_quickstart_sized_report_is_small(tmp_path: Path) -> None:
    """The quick start's shape (24 cases, about 1,000 samples each): at most 1.5 MB (issue 14)."""
    path = tmp_path / "quick.json"
    path.write_text(json.dumps(synthetic.large_document(24, SAMPLES)))
    output = write_report([path], tmp_path / "quick.html")
    size_mb = output.stat().st_size / 1e6
    print(f"\n[quickstart-sized report] 24 cases: {size_mb:.2f} MB")
    assert size_mb <= 1.5
