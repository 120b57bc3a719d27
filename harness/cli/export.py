"""`harness export`: results in other tools' formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError


def export(
    results: Annotated[list[Path], typer.Argument(help="Results files or folders (one run per case).",
                                                  show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="pytest-benchmark (JSON, seconds), csv or parquet (one row "
                                     "per case, the columns of harness.results.load).")] = "pytest-benchmark",
    commit: Annotated[Optional[str], typer.Option("--commit", help="commit_info.id to record.")] = None,
    branch: Annotated[Optional[str], typer.Option("--branch", help="commit_info.branch to record.")] = None,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Include every sample (stats.data).")] = False,
) -> None:
    """Export results to other tools' formats: pytest-benchmark JSON, or a CSV / Parquet table."""
    import json

    from ..export import to_pytest_benchmark
    from ..files import write_atomic_text
    from ..results import read_all

    if fmt in ("csv", "parquet"):
        from ..export import write_table

        rows = write_table(read_all(results), output, fmt)
        typer.echo(f"wrote {rows} cases to {output}")
        return
    if fmt != "pytest-benchmark":
        raise InputError(f"--format {fmt}: unknown; supported: pytest-benchmark, csv, parquet")
    document, skipped = to_pytest_benchmark(read_all(results), commit, branch, include_data=data)
    write_atomic_text(output, json.dumps(document, indent=2, allow_nan=False))
    left = ", ".join(f"{n} {why}" for why, n in skipped.items() if n)
    note = f" ({left} cases left out)" if left else ""
    typer.echo(f"wrote {len(document['benchmarks'])} benchmarks to {output}{note}")
