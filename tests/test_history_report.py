"""History reports from real runs: five nightly runs labelled with five commits, the fourth with a
real slowdown (a model with four times the work), and the change marked at that commit."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.environment import provenance
from harness.report.html import write_report
from harness.report.markdown import render_markdown
from harness.results import read_all

from .conftest import REPO
from .test_ab import chain_model
from .test_report_browser import DRAW_ALL, Browser, evaluate, open_page, problems

COMMITS = ["a1b2c3d4e5", "b2c3d4e5f6", "c3d4e5f6a7", "d4e5f6a7b8", "e5f6a7b8c9"]


def test_provenance_reads_the_ci_that_ran_the_build() -> None:
    assert provenance("nightly", {"GITHUB_SHA": "abc", "GITHUB_REF_NAME": "main"}) == {
        "label": "nightly", "ci": "github", "commit": "abc", "branch": "main"}
    assert provenance(None, {"CI_COMMIT_SHA": "def", "CI_COMMIT_REF_NAME": "dev"})["ci"] == "gitlab"
    assert provenance(None, {}) == {}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nights")
    (folder / "models").mkdir()
    suite = folder / "nightly.yaml"
    suite.write_text("""
name: nightly
models: [{name: chain, path: models/chain.onnx}]
matrix: {batch: [32]}
session: {intra_op_num_threads: 1}
measure: {warmup_s: 0.05, warmup_iterations: 3, min_iterations: 10, min_s: 0.15, max_s: 2, placement: false, repeats: 3}
""")
    for night, commit in enumerate(COMMITS):
        # The 4th commit quadruples the work: a step no speed mode or neighbour of this VM can
        # blur into "disturbed" (a 2x step once moved p5 by +68% against p50 by +110%).
        chain_model(folder / "models" / "chain.onnx", 16 if night >= 3 else 4)
        env = {**os.environ, "GITHUB_SHA": commit, "GITHUB_REF_NAME": "main", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "-o", str(folder / "results"),
                               "--label", f"nightly-{night + 1}"], capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        time.sleep(1.1)  # results files are named to the second
    return folder / "results"


@pytest.mark.slow
def test_history_marks_the_slowdown_at_its_commit(nights: Path) -> None:
    runs = read_all([nights])
    assert [r.provenance.commit for r in sorted(runs, key=lambda r: str(r.started_at)) if r.provenance] == COMMITS
    assert all(r.provenance and r.provenance.branch == "main" and r.provenance.ci == "github" for r in runs)
    markdown = render_markdown(runs)
    assert "## History: nightly on" in markdown and "5 runs" in markdown
    section = markdown.split("## History", 1)[1].split("##", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| \\#")]  # Markdown escapes the #
    assert len(rows) == 1, section  # one step, marked once
    assert "\\#4 nightly-4" in rows[0] and COMMITS[3] in rows[0] and "regression" in rows[0], rows[0]


@pytest.mark.slow
def test_history_chart_draws_in_headless_chromium(nights: Path, chromium: str, tmp_path: Path) -> None:
    report = write_report([nights], tmp_path / "history.html")
    browser = Browser(chromium, Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)))
    try:
        session = open_page(browser, report.as_uri())
        state = evaluate(browser, session, DRAW_ALL)
        history = evaluate(browser, session, """(() => {
            const plot = [...document.querySelectorAll('.js-plotly-plot')]
                .find(p => p.layout && /over time/.test(p.layout.title.text));
            if (!plot) { return null; }
            return {x: plot.data[0].x, marked: plot.data.filter(t => /change point/.test(t.name)).map(t => t.x)}; })()""")
        errors, requests, dialogs = problems(list(browser.events))
    finally:
        browser.close()
    assert not errors and not requests and not dialogs, (errors, requests, dialogs)
    assert state["drawn"] == state["want"], state
    assert history is not None and history["x"] == [f"#{i + 1} nightly-{i + 1}" for i in range(5)], history
    assert history["marked"] == [["#4 nightly-4"]], history


@pytest.mark.slow
def test_figures_are_written_as_svg_and_png_with_titles_and_captions(nights: Path, tmp_path: Path) -> None:
    figures = tmp_path / "figures"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(nights), "-o", str(tmp_path / "r.html"),
                           "--figures", str(figures)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (tmp_path / "r.html").read_text()
    charts = page.count("data-fig=")
    svgs, pngs = sorted(figures.glob("*.svg")), sorted(figures.glob("*.png"))
    assert len(svgs) == len(pngs) == charts >= 5, (charts, svgs)
    history = next(p for p in svgs if "over-time" in p.name)
    text = history.read_text()
    assert "chain: p50 over time" in text and "Triangles: a change point" in text  # title and caption
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000 for p in pngs)
    index = (figures / "figures.md").read_text()
    assert index.count("![") == charts and "Triangles: a change point" in index


@pytest.mark.slow
def test_figures_with_the_page_on_stdout(nights: Path, tmp_path: Path) -> None:
    """`-o -` sends the page to stdout; the figures are still written and their message goes to stderr."""
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(nights), "-o", "-", "--format", "md",
                           "--figures", str(tmp_path / "f")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Benchmark report: nightly") and "figures:" in proc.stderr
    assert len(list((tmp_path / "f").glob("*.svg"))) >= 5
