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
    fmt: Annotated[str, typer.Option("--format", help="Only 'pytest-benchmark' for now.")] = "pytest-benchmark",
    commit: Annotated[Optional[str], typer.Option("--commit", help="commit_info.id to record.")] = None,
    branch: Annotated[Optional[str], typer.Option("--branch", help="commit_info.branch to record.")] = None,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Include every sample (stats.data).")] = False,
) -> None:
    """Export results to other tools' formats (pytest-benchmark JSON, seconds)."""
    import json

    from ..export import to_pytest_benchmark
    from ..files import write_atomic_text
    from ..results import read_all

    if fmt != "pytest-benchmark":
        raise InputError(f"--format {fmt}: unknown; supported: pytest-benchmark")
    document, skipped = to_pytest_benchmark(read_all(results), commit, branch, include_data=data)
    write_atomic_text(output, json.dumps(document, indent=2, allow_nan=False))
    note = f" ({skipped} failed/unavailable cases left out)" if skipped else ""
    typer.echo(f"wrote {len(document['benchmarks'])} benchmarks to {output}{note}")
