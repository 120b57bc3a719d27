"""`harness variants`: build (or reuse) every variant of a suite without running anything."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer

from ..errors import EXIT_FAILED, EXIT_OK
from .common import SuiteArg


def variants(suite: SuiteArg) -> None:
    """Build (or reuse) every variant of a suite without running anything."""
    from ..plan import build_plan
    from ..suite import load_suite
    from ..variants import VariantError, VariantStore

    plan = build_plan(load_suite(suite))
    scratch = Path(tempfile.mkdtemp(prefix="harness-variants-"))
    failed = False
    try:
        store = VariantStore(plan.loaded, plan.model_files, typer.echo, scratch=scratch)
        for case in plan.cases:
            if (case.model.name, case.variant.name) in store.paths:
                continue
            try:
                path = store.path(case)
                typer.echo(f"{case.model.name}/{case.variant.name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
            except VariantError as exc:
                failed = True
                typer.echo(f"{case.model.name}/{case.variant.name}: FAILED: {exc}", err=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)
