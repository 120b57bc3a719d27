"""`harness baseline save|list`: named baselines for nightly comparisons, per machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

baseline_app = typer.Typer(no_args_is_help=True, help="Named baselines for nightly comparisons.")


@baseline_app.command("save")
def baseline_save(
    name: Annotated[str, typer.Argument(help="Baseline name, e.g. main.")],
    results: Annotated[list[Path], typer.Argument(help="Results files or folders.", show_default=False)],
    append: Annotated[bool, typer.Option("--append", help="Add to this machine's runs instead of replacing "
                                         "them.")] = False,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Only for machines the baseline does not hold "
                                             "yet (seeds a new runner, never moves an existing baseline).")] = False,
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Baselines folder (default "
                                                      "$HARNESS_BASELINES or ./baselines).")] = None,
) -> None:
    """Copy results into a named baseline, per machine (keyed by hardware fingerprint)."""
    from ..baselines import baselines_root, save_baseline

    written = save_baseline(name, results, baselines_root(directory), append=append, if_missing=if_missing)
    for path in written:
        typer.echo(f"saved {path}")
    if not written:
        typer.echo(f"baseline {name} already holds this machine; nothing saved (--if-missing)")


@baseline_app.command("list")
def baseline_list(
    directory: Annotated[Optional[Path], typer.Option("--dir", help="Baselines folder (default "
                                                      "$HARNESS_BASELINES or ./baselines).")] = None,
) -> None:
    """Named baselines and the machines they hold."""
    from rich.markup import escape
    from rich.table import Table

    from ..baselines import baselines_root, list_baselines
    from ..console import make_console

    root = baselines_root(directory)
    entries = list_baselines(root)
    if not entries:
        typer.echo(f"no baselines in {root}")
        return
    table = Table(title=f"baselines in {root}", title_justify="left")
    for column in ("name", "machine", "fingerprint", "cpu", "runs", "cases", "newest run"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(escape(e.name), escape(e.hostname), e.fingerprint, escape(e.cpu_model), str(e.runs),
                      str(e.cases), e.latest)
    make_console().print(table)
