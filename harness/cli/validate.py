"""`harness validate` and `harness schema`: check a suite without running it; its JSON Schema."""

from __future__ import annotations

import typer

from .common import SuiteArg


def validate(suite: SuiteArg) -> None:
    """Check a suite: schema, model files, input shapes and ranges. Exit 0 valid, 2 invalid."""
    from ..plan import build_plan, describe
    from ..suite import load_suite

    plan = build_plan(load_suite(suite))
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{suite}: valid, {describe(plan)}")


def schema() -> None:
    """Print the JSON Schema of the suite format (for editor completion and checks)."""
    import json

    from ..suite import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))
