"""`harness doctor`: which targets work on this machine, in which runtime, and why not."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def doctor(
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Only these targets.")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create missing managed runtimes to check them.")] = False,
) -> None:
    """Which targets work on this machine, in which runtime, and why not."""
    from rich.markup import escape
    from rich.table import Table

    from ..console import make_console
    from ..doctor import doctor as check

    console = make_console()
    rows = check(target, create, lambda text: console.print(text, markup=False))
    table = Table(title="targets on this machine", title_justify="left")
    for column in ("target", "provider", "runtime", "onnxruntime", "LoadGen", "available", "why not"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["target"], row["provider"], escape(str(row["runtime"])), row["onnxruntime"] or "-",
                      escape(row.get("loadgen") or "-"), "[green]yes[/]" if row["available"] else "[red]no[/]", escape(row.get("reason") or ""))
    console.print(table)
