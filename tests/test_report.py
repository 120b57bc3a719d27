"""Report: computed tables on known data, escaping, Markdown structure, multi-machine merge, CLI."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli.report import parse_prices
from harness.errors import InputError
from harness.report import charts, tables
from harness.report.data import build_frame, config_label
from harness.report.html import render_html, script_json, write_report
from harness.report.markdown import escape as md_escape
from harness.report.markdown import render_markdown
from tests import synthetic
from tests.synthetic import document, failed_case, ok_case, runs

EVIL = "<img src=x onerror=alert(1)>"
ROOT = Path(__file__).resolve().parents[1]
BASE = tables.parse_baseline("cpu/fp32")


def known_document(hostname: str = "host-a", factor: float = 1.0) -> dict[str, Any]:
    """One model, exact p50s: cpu fp32 10, cpu int8 4, openvino fp32 5, openvino int8 2, int4 1 (fails)."""
    def case(variant: str, target: str, p50: float, cosine: float | None = None, **kw: Any) -> dict[str, Any]:
        return ok_case("m", variant, target, p50=p50 * factor, cosine=cosine, **kw)

    return document([
        case("fp32", "cpu", 10.0, samples_per_s=100.0, price_per_hour=1.8),
        case("int8", "cpu", 4.0, cosine=0.999, samples_per_s=250.0, price_per_hour=1.8),
        case("fp32", "openvino", 5.0, cosine=1.0, samples_per_s=200.0, price_per_hour=3.6),
        case("int8", "openvino", 2.0, cosine=0.999, samples_per_s=500.0, price_per_hour=3.6),
        case("int4", "openvino", 1.0, cosine=0.97, verdict="fail", samples_per_s=1000.0, price_per_hour=3.6),
        case("fp32", "cpu", 20.0, batch=4, samples_per_s=200.0),
        case("int8", "openvino", 4.0, batch=4, cosine=0.999, samples_per_s=1000.0),
        failed_case("m", "fp32", "cuda", "no CUDA", status="unavailable"),
    ], hostname=hostname, cpu_model=f"cpu of {hostname}")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return build_frame(runs(known_document()))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("study")
    paths = []
    for index, doc in enumerate(synthetic.study_documents()):
        paths.append(folder / f"run-{index}.json")
        paths[-1].write_text(json.dumps(doc))
    return paths


# --- computed tables on known data ---------------------------------------------------------------

def test_config_label_orders_batch_then_streams() -> None:
    assert config_label({"streams": 2, "batch": 4, "seq": 128}) == "batch 4 · streams 2 · seq 128"
    assert config_label({"batch": 1, "streams": 1}) == "batch 1"


def test_parse_baseline() -> None:
    assert tables.parse_baseline("openvino/int8") == tables.Baseline("openvino", "int8")
    assert tables.parse_baseline("cpu@host-b/fp32") == tables.Baseline("cpu", "fp32", "host-b")
    assert tables.parse_baseline("cpu") == tables.Baseline("cpu", "fp32")
    with pytest.raises(InputError):
        tables.parse_baseline("/fp32")


def test_speedups_against_baseline(frame: pd.DataFrame) -> None:
    speeds = tables.with_speedups(frame, BASE).set_index(["config", "target", "variant"])
    assert speeds.loc[("batch 1", "openvino", "int8"), "speedup"] == 5.0
    assert speeds.loc[("batch 1", "cpu", "int8"), "speedup"] == 2.5
    assert speeds.loc[("batch 1", "cpu", "fp32"), "speedup"] == 1.0
    assert speeds.loc[("batch 4", "openvino", "int8"), "speedup"] == 5.0  # against batch 4's own baseline
    assert speeds.loc[("batch 1", "openvino", "int8"), "throughput_speedup"] == 5.0
    low, high = speeds.loc[("batch 1", "openvino", "int8"), ["speedup_low", "speedup_high"]]
    assert low < 5.0 < high


def test_fastest_pick_excludes_failing_accuracy(frame: pd.DataFrame) -> None:
    fastest = tables.fastest(frame, BASE).set_index("config")
    pick = fastest.loc["batch 1"]
    assert pick["choice"] == "openvino · int8"  # int4 is faster but fails accuracy
    assert pick["speedup"] == 5.0
    assert pick["runner_up"] == "cpu · int8"
    assert pick["margin"] == 1.0  # 4 ms / 2 ms - 1
    assert bool(pick["decisive"])
    assert "openvino · int4" in pick["notes"] and "failing accuracy" in pick["notes"]
    assert fastest.loc["batch 4", "choice"] == "openvino · int8"
    assert fastest.loc["batch 4", "speedup"] == 5.0


def test_close_results_are_not_decisive() -> None:
    doc = document([ok_case("m", "fp32", "cpu", p50=10.0, spread=0.05),
                    ok_case("m", "fp32", "openvino", p50=9.9, spread=0.05)])
    pick = tables.fastest(build_frame(runs(doc)), BASE).iloc[0]
    assert pick["choice"] == "openvino · fp32"
    assert pick["decisive"] is not None and not pick["decisive"]
    assert "Too close to call" in tables.verdicts(build_frame(runs(doc)), BASE)[0].confidence


def test_speedup_matrices(frame: pd.DataFrame) -> None:
    best = tables.speedup_matrix(frame, BASE)
    assert best.speedups.loc[("m", "batch 1"), "cpu"] == 2.5
    assert best.variants.loc[("m", "batch 1"), "cpu"] == "int8"
    assert best.speedups.loc[("m", "batch 1"), "openvino"] == 5.0
    assert "cuda" not in best.speedups.columns  # unavailable: nothing to show
    same = tables.speedup_matrix(frame, BASE, "fp32")
    assert same.speedups.loc[("m", "batch 1"), "openvino"] == 2.0
    assert same.speedups.loc[("m", "batch 1"), "cpu"] == 1.0


def test_pareto_front_function() -> None:
    assert tables.pareto_front([1, 2, 5, 4, 10], [0.03, 0.001, 0.0, 0.001, 0.0]) == [True, True, True, False, False]
    assert tables.pareto_front([1, 1], [0.5, 0.5]) == [True, True]  # identical points are both optimal
    assert tables.pareto_front([1, math.nan, 3], [1, 0, 0]) == [True, False, True]


def test_quantization_view_marks_front(frame: pd.DataFrame) -> None:
    quant = tables.quantization(frame)
    front = quant[(quant["config"] == "batch 1") & quant["pareto"]]
    assert sorted(tables.choice(r) for r in front.to_dict("records")) == [
        "openvino · fp32", "openvino · int4", "openvino · int8"]
    reference = quant[(quant["target"] == "cpu") & (quant["variant"] == "fp32") & (quant["config"] == "batch 1")]
    assert reference["loss"].item() == 0.0 and reference["verdict"].item() == "reference"
    assert quant.loc[quant["variant"] == "int4", "loss"].item() == pytest.approx(0.03)


def test_pareto_labels_only_where_they_cannot_collide(frame: pd.DataFrame) -> None:
    """Two batch sizes put two fronts on the same exact-match floor: labels would overlap, so the
    fronts are lines and hover names the points; one param set gets labels, alternating sides."""
    quant = tables.quantization(frame)
    both = charts.accuracy_scatter(quant)
    fronts = [t for t in both["data"] if t["name"].startswith("Pareto front")]
    assert len(fronts) == 2 and all("text" not in t and t["mode"] == "lines" for t in fronts)
    one = charts.accuracy_scatter(quant[quant["config"] == "batch 1"])
    (front,) = [t for t in one["data"] if t["name"].startswith("Pareto front")]
    assert front["mode"] == "lines+text" and len(front["text"]) == 3
    assert front["textposition"] == ["top right", "bottom left", "top right"]


def test_cost_per_million_and_inferences_per_dollar(frame: pd.DataFrame) -> None:
    assert tables.cost_per_million(3.6, 1000.0) == 1.0
    cost = tables.cost(frame).set_index(["target", "variant"])
    assert cost.loc[("openvino", "int8"), "cost_per_million"] == pytest.approx(2.0)  # 3.6 / (500 * 3600) * 1e6
    assert cost.loc[("cpu", "fp32"), "cost_per_million"] == pytest.approx(5.0)  # 1.8 / (100 * 3600) * 1e6
    assert cost.loc[("cpu", "fp32"), "inferences_per_dollar"] == pytest.approx(200_000.0)
    assert cost.loc[("cpu", "int8"), "cost_per_million"] == pytest.approx(2.0)
    assert ("openvino", "int4") not in cost.index  # fails accuracy: never priced as an option
    assert cost["cheapest"].sum() == 2  # a tie at $2 per million
    assert len(tables.cost(frame)[lambda c: c["config"] == "batch 4"]) == 0  # no price there


def test_price_option_overrides_suite_price() -> None:
    assert parse_prices(["openvino=0.9", "cpu@host-b=2"]) == {"openvino": 0.9, "cpu @ host-b": 2.0}
    for bad in ("openvino", "openvino=abc", "=1", "cpu=-1"):
        with pytest.raises(InputError):
            parse_prices([bad])
    cost = tables.cost(build_frame(runs(known_document()), {"openvino": 0.9})).set_index(["config", "target", "variant"])
    assert cost.loc[("batch 1", "openvino", "int8"), "cost_per_million"] == pytest.approx(0.5)
    assert cost.loc[("batch 4", "openvino", "int8"), "cost_per_million"] == pytest.approx(0.25)  # no suite price


def test_problems_flags_and_counts() -> None:
    doc = known_document()
    doc["cases"].append(ok_case("m", "fp16", "openvino", p50=3.0, cosine=0.9999, unstable=["cv 14% > 10%"],
                                fallback=(30, 40)))
    frame = build_frame(runs(doc))
    problems = tables.problems(frame)
    assert problems[["target", "status", "reason"]].values.tolist() == [["cuda", "unavailable", "no CUDA"]]
    doc["cases"] += [failed_case("m", "int8", "cuda", "no CUDA", status="unavailable", batch=4),
                     failed_case("m", "int8", "cpu", "worker crashed (exit -11)")]
    grouped = tables.problems_grouped(build_frame(runs(doc)))
    assert grouped[["target_label", "status", "cases", "variants", "params"]].values.tolist() == [
        ["cpu", "failed", 1, "int8", "batch 1"], ["cuda", "unavailable", 2, "fp32, int8", "batch 1, batch 4"]]
    flagged = tables.flagged(frame).set_index("variant")
    assert "unstable: cv 14% > 10%" in flagged.loc["fp16", "notes"]
    assert "partial fallback: 30/40" in flagged.loc["fp16", "notes"]
    assert "accuracy FAIL" in flagged.loc["int4", "notes"]
    counts = tables.counts(frame)
    assert (counts["cases"], counts["ok"], counts["unavailable"], counts["unstable"], counts["partial_fallback"],
            counts["accuracy_fail"]) == (9, 8, 1, 1, 1, 1)


def test_throughput_vs_batch_and_missing_baseline(frame: pd.DataFrame) -> None:
    pivot = tables.throughput_pivot(frame, "batch").set_index(["target_label", "variant"])
    assert pivot.loc[("openvino", "int8"), "batch 1"] == 500.0
    assert pivot.loc[("openvino", "int8"), "scaling"] == 2.0
    assert ("cpu", "int8") not in pivot.index  # one point is not a curve
    verdicts = tables.verdicts(build_frame(runs(known_document())), tables.parse_baseline("openvino/fp32"))
    assert any("not measured for batch 4" in w for w in verdicts[0].warnings)


def test_downsampling_keeps_extremes_and_shape() -> None:
    values = charts.downsample([float(v) for v in range(10_001)], 2000)
    assert len(values) == 2000 and values[0] == 0.0 and values[-1] == 10_000.0
    assert values == sorted(values)
    assert charts.downsample([0.123456789], 10) == [0.1235]
    assert charts.points_per_case(2000) == 200 and charts.points_per_case(3) == 2000


# --- escaping ------------------------------------------------------------------------------------

def _evil_document() -> dict[str, Any]:
    doc = known_document()
    for case in doc["cases"]:
        case["model"] = EVIL
    doc["cases"].append(failed_case("m|pipe", "fp32", "cpu", reason=f"crashed {EVIL} | </script><script>alert(2)"))
    doc["suite"]["name"] = EVIL
    doc["environment"]["hostname"] = EVIL
    return doc


def test_html_escapes_everything_from_results() -> None:
    html = render_html(runs(_evil_document()))
    assert "&lt;img" in html
    assert EVIL not in html
    assert "<script><script>alert(2)" not in html and "alert(2)</script>" not in html
    figures = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', html, re.S).group(1)
    assert "<" not in figures and ">" not in figures  # cannot close the script element or open a tag
    assert "&lt;img" in json.dumps(json.loads(figures))  # plotly labels are entity-escaped too
    assert html.count("<script") == 3  # figures JSON, plotly.js, the report's own script; none from results


def test_script_json_cannot_break_out() -> None:
    text = str(script_json({"a": "</script><!-- & \u2028"}))
    assert "</" not in text and "<!--" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def test_markdown_escapes_pipes_and_html() -> None:
    md = render_markdown(runs(_evil_document()))
    assert EVIL not in md and "&lt;img" in md
    assert "m\\|pipe" in md
    assert md_escape("a|b_c*d") == "a\\|b\\_c\\*d"
    assert md_escape("two\nlines") == "two lines"


# --- Markdown structure --------------------------------------------------------------------------

def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def markdown_tables(md: str) -> list[list[str]]:
    blocks, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def test_markdown_tables_are_well_formed(study: list[Path]) -> None:
    md = render_markdown(runs(*[json.loads(p.read_text()) for p in study]))
    blocks = markdown_tables(md)
    assert len(blocks) >= 5
    for block in blocks:
        assert len(block) >= 3, block  # header, separator, at least one row
        assert re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", block[1]), block[1]
        widths = {len(_cells(line)) for line in block}
        assert len(widths) == 1, block
    assert md.startswith("# Benchmark report: cpu-study")
    assert "## Failed and unavailable" in md and "SIGSEGV" in md
    assert "| model | params | fastest |" in md


# --- several machines ----------------------------------------------------------------------------

def test_two_machines_compared_side_by_side(tmp_path: Path) -> None:
    first = known_document()
    second = copy.deepcopy(first)
    second["environment"].update(hostname="host-b", fingerprint="b" * 16, cpu_model="AMD EPYC 9654")
    for case in second["cases"]:
        if case["status"] == "ok":
            case["latency_ms"]["p50"] *= 0.5
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, doc in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(doc))

    frame = build_frame(runs(first, second))
    assert set(frame["target_label"]) >= {"cpu @ host-a", "openvino @ host-b"}
    comparison = tables.machine_comparison(frame).set_index(["config", "target", "variant"])
    assert comparison.loc[("batch 1", "cpu", "fp32"), ["host-a", "host-b"]].tolist() == [10.0, 5.0]
    assert comparison.loc[("batch 1", "cpu", "fp32"), "fastest"] == "host-b"
    assert comparison.loc[("batch 1", "cpu", "fp32"), "ratio"] == 2.0
    speeds = tables.speedup_matrix(frame, BASE, "fp32").speedups  # one baseline (host-a) for every column
    assert speeds.loc[("m", "batch 1"), "cpu @ host-b"] == 2.0

    html = write_report(paths, tmp_path / "report.html").read_text()
    assert "AMD EPYC 9654" in html and "cpu of host-a" in html
    assert 'id="t-machines"' in html and "<details><summary>Environment of host-b</summary>" in html
    assert "openvino @ host-a" in html and "openvino @ host-b" in html


# --- the whole HTML --------------------------------------------------------------------------------

def test_html_is_self_contained(study: list[Path], tmp_path: Path) -> None:
    import base64
    import gzip

    from harness.report.html import PLOTLY_BUNDLE, PLOTLY_VERSION, plotly_js

    html = write_report(study, tmp_path / "nested" / "r.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "@font-face" not in html
    assert html.count(str(plotly_js())) == 1  # plotly.js embedded exactly once (gzipped, base64)
    bundle = gzip.decompress(base64.b64decode(str(plotly_js())))
    assert bundle == gzip.decompress(PLOTLY_BUNDLE.read_bytes())
    assert f"plotly.js (cartesian - minified) v{PLOTLY_VERSION}" in bundle[:200].decode()
    assert "Content-Security-Policy" in html
    for text in ("Verdict", "Too close to call", "partial fallback", "unstable", "accuracy fail", "SIGSEGV",
                 "Pareto front", "Cost", "host-a", "host-b", "How to read"):
        assert text in html, text
    assert html.index('id="verdict"') < html.index('id="speedup"') < html.index('id="details"')


def test_chart_specs_are_valid_plotly(study: list[Path]) -> None:
    import plotly.graph_objects as go

    html = render_html(runs(*[json.loads(p.read_text()) for p in study]))
    specs = json.loads(re.search(r'id="report-figures">(.*?)</script>', html, re.S).group(1))
    assert len(specs) >= 8
    for spec in specs:
        go.Figure(spec)  # raises on any property plotly.js does not know


def test_report_of_real_shaped_run_without_accuracy_or_baseline(tmp_path: Path) -> None:
    doc = document([ok_case("m", "fp16", "openvino", p50=1.0)])
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    html = write_report([path], tmp_path / "r.html").read_text()
    assert "no cpu/fp32 measurement" in html or "not measured" in html
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(document([])))
    assert "No cases in these results." in write_report([empty], tmp_path / "e.html").read_text()


# --- CLI -------------------------------------------------------------------------------------------

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "report", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_cli_writes_html_and_markdown(study: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "x" / "report.html"
    result = _cli(str(study[0].parent), "-o", str(out), "--price", "openvino=2.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 100_000 and "report:" in result.stdout
    result = _cli(str(study[0]), "--format", "md", "-o", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Benchmark report")


def test_cli_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    result = _cli("missing.json", cwd=tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing.json" in lines[0], result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("args", [{"results": [Path("bad.json")]}, {"format": "pdf"}, {"price": ["cpu"]},
                                  {"baseline": "/x"}])
def test_report_command_bad_input(args: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (the CLI maps InputError to exit 2, checked above): one line, nothing written."""
    from harness.cli.report import report

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"not": "results"}')
    (tmp_path / "good.json").write_text(json.dumps(known_document()))
    with pytest.raises(InputError) as error:
        report(**{"results": [Path("good.json")], "output": None, "format": "html", "baseline": "cpu/fp32",
                  "price": None, **args})
    assert "\n" not in str(error.value)
    assert not (tmp_path / "reports").exists()


def test_report_command_markdown_default_path(study: list[Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.cli.report import report

    monkeypatch.chdir(tmp_path)
    report([study[0]], None, "md", "cpu/fp32", None)
    assert (tmp_path / "reports" / "report.md").read_text().startswith("# Benchmark report")


def test_terminal_helpers_unchanged() -> None:
    from harness.report.terminal import case_line, summary_table
    from harness.units import ms

    (doc,) = runs(known_document())
    assert ms(0.5) == "500.0 us" and ms(2.0) == "2.00 ms"
    assert case_line(doc.cases[0]).startswith("m/fp32/cpu/batch=1: ok p50 10.00 ms")
    assert doc.cases[4].notes[0].startswith("accuracy FAIL")
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(summary_table(doc))
    assert "m/int8/openvino/batch=4" in console.export_text()


def test_throughput_curves_stay_within_their_model() -> None:
    """Same target · variant · params label in two models: two curves, never one merged."""
    doc = document([ok_case(model, "fp32", "cpu", p50=1.0, batch=1, streams=streams)
                    for model in ("a", "b") for streams in ((1, 2) if model == "b" else (1,))])
    curves = tables.throughput_vs(build_frame(runs(doc)), "streams")
    assert set(curves["model"]) == {"b"}


def test_several_runs_of_one_suite_show_each_configuration_once(tmp_path: Path) -> None:
    """Three nightly runs on one machine: one row per configuration (the newest run's figures, with
    the count of runs behind it), and no configuration named as its own runner-up."""
    nights = [document([ok_case("m", "fp32", "cpu", p50=10.0 * f), ok_case("m", "fp32", "openvino", p50=5.0 * f,
                                                                           cosine=1.0)],
                       started_at=f"2026-01-0{day}T02:00:00Z", finished_at=f"2026-01-0{day}T02:10:00Z")
              for day, f in ((1, 1.0), (2, 1.1), (3, 0.9))]
    paths = []
    for index, night in enumerate(nights):
        paths.append(tmp_path / f"night-{index}.json")
        paths[-1].write_text(json.dumps(night))
    frame = build_frame(runs(*nights))
    assert len(frame) == 2 and frame["runs"].tolist() == [3, 3]
    assert sorted(frame["latency_ms.p50"].round(6)) == [4.5, 9.0]  # the newest night (factor 0.9)
    markdown = render_markdown(runs(*nights))
    assert "Runs: 3 runs; 2 of 2 configurations were measured in more than one" in markdown
    for pick in tables.fastest(frame, BASE).to_dict("records"):
        assert pick["runner_up"] != pick["choice"], pick
    assert "runner-up (openvino · fp32)" not in markdown and "**2 cases**" in markdown
    html = write_report(paths + [paths[0]], tmp_path / "r.html").read_text()  # a file given twice counts once
    assert "3 runs; 2 of 2 configurations" in html and '<th scope="col"' in html and ">runs<" in html
