"""`harness report`: results files or folders -> one HTML (default) or Markdown report."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError

DEFAULT_OUTPUT = {"html": Path("reports/report.html"), "md": Path("reports/report.md")}


def parse_prices(values: list[str] | None) -> dict[str, float]:
    """'openvino=1.20' -> {'openvino': 1.2}; the key may also be a label like 'cpu@host-b'."""
    prices: dict[str, float] = {}
    for value in values or []:
        key, sep, amount = value.partition("=")
        try:
            price = float(amount)
        except ValueError:
            price = math.nan
        if not sep or not key.strip() or not math.isfinite(price) or price < 0:
            raise InputError(f"--price {value!r}: expected TARGET=USD_PER_HOUR, e.g. --price openvino=1.20")
        target, _, machine = key.partition("@")
        prices[f"{target.strip()} @ {machine.strip()}" if machine else target.strip()] = price
    return prices


def report(
    results: Annotated[list[Path], typer.Argument(help="Results files or folders of them (*.jsonl, *.json).",
                                                  show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Report file, '-' for stdout. Default: reports/report.html, or reports/report.md "
                               "with --format md.", show_default=False)] = None,
    format: Annotated[str, typer.Option("--format", help="html or md (GitHub-flavoured Markdown).")] = "html",
    baseline: Annotated[str, typer.Option("--baseline", help="Speedups are relative to this TARGET/VARIANT "
                                                             "(TARGET@HOST/VARIANT to pick a machine).")] = "cpu/fp32",
    price: Annotated[Optional[list[str]], typer.Option("--price", help="TARGET=USD per hour, for the cost view "
                                                                       "(repeatable; overrides the suite's).")] = None,
    figures: Annotated[Optional[Path], typer.Option("--figures", help="Also write every chart as SVG and PNG "
                                                    "into this folder, with its title and caption (needs the "
                                                    "'figures' extra and Chromium).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Show the history view (p50 run by run, change "
                                          "points) even for two runs; it shows by itself from three runs of one "
                                          "suite on one machine.")] = False,
) -> None:
    """Write an HTML or Markdown report comparing targets, variants and machines from results files."""
    from ..report.tables import parse_baseline
    from ..results import read_all

    if format not in DEFAULT_OUTPUT:
        raise InputError(f"--format {format!r}: expected html or md")
    parse_baseline(baseline)  # fail on a malformed baseline before reading anything
    prices = parse_prices(price)
    documents = read_all(results)
    from .compare import note_unfinished

    note_unfinished(documents)
    from ..report.html import context, render_context

    # One context serves the page and the figures; Markdown has no charts but --figures still may.
    values = context(documents, baseline, prices, history) if format == "html" or figures is not None else None
    if format == "md":
        from ..report.markdown import render_markdown

        text = render_markdown(documents, baseline, prices, history)
    else:
        assert values is not None
        text = render_context(values)
    target = output if output is not None else DEFAULT_OUTPUT[format]
    to_stdout = str(target) == "-"
    if to_stdout:
        sys.stdout.write(text)
    else:
        from ..files import write_atomic_text as write_text

        write_text(target, text)
    if figures is not None and values is not None:
        from ..report.figures import write_figures

        found = values["figure_specs"]
        written = write_figures(found.specs, found.captions, figures)
        # With the page on stdout, the messages go to stderr so that stdout stays the page.
        typer.echo(f"figures: {len(written)} files in {figures} (index: {figures / 'figures.md'})", err=to_stdout)
    if to_stdout:
        return
    cases = sum(len(d.cases) for d in documents)
    runs = len({d.run_id for d in documents})  # a fleet run reads as one run per machine
    machines = len({d.environment.fingerprint for d in documents})
    typer.echo(f"report: {target} ({cases} cases from {runs} run{'s' if runs != 1 else ''} "
               f"on {machines} machine{'s' if machines != 1 else ''})")
