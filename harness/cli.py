"""Command line: parses arguments, calls the modules, maps outcomes to exit codes.

Exit codes (contract): 0 ok, 1 a case failed (run) or a regression (compare), 2 bad input
or harness error, 3 inconclusive (compare), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .errors import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, InputError
from .progress import make_console, make_reporter

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Benchmark ONNX models across execution providers, precisions and machines.")
runtimes_app = typer.Typer(no_args_is_help=True, help="Managed Python environments, one per onnxruntime build.")
app.add_typer(runtimes_app, name="runtimes")

SuiteArg = Annotated[Path, typer.Argument(help="Suite YAML file.", show_default=False)]


@app.command()
def run(
    suite: SuiteArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the results file.")] = Path("results"),
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Only this target (repeatable).")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="Only this model (repeatable).")] = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Only this variant (repeatable).")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write an HTML report to this file.")] = None,
) -> None:
    """Run every case of a suite; write results/<suite>-<time>.json after each case."""
    from .plan import build_plan
    from .runner import run_plan
    from .suite import load_suite

    console = make_console()
    plan = build_plan(load_suite(suite), targets=target, models=model, variants=variant)
    outcome = run_plan(plan, output, make_reporter(console))
    console.print(f"results: {outcome.path}", markup=False, highlight=False)
    if report is not None:
        from .report.html import write_report

        written = write_report([outcome.path], report)
        console.print(f"report: {written}", markup=False, highlight=False)
    if outcome.interrupted:
        console.print(f"interrupted: {len(outcome.document['cases'])} finished cases kept in {outcome.path}",
                      markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_FAILED if outcome.any_failed else EXIT_OK)


@app.command()
def validate(suite: SuiteArg) -> None:
    """Check a suite: schema, model files, input shapes and ranges. Exit 0 valid, 2 invalid."""
    from .plan import build_plan, describe
    from .suite import load_suite

    plan = build_plan(load_suite(suite))
    typer.echo(f"{suite}: valid, {describe(plan)}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the suite format (for editor completion and checks)."""
    from .suite import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command()
def doctor(
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Only these targets.")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create missing managed runtimes to check them.")] = False,
) -> None:
    """Which targets work on this machine, in which runtime, and why not."""
    from .doctor import doctor as check

    console = make_console()
    rows = check(target, create, lambda text: console.print(text, markup=False))
    table = Table(title="targets on this machine", title_justify="left")
    for column in ("target", "provider", "runtime", "onnxruntime", "available", "why not"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["target"], row["provider"], escape(str(row["runtime"])), row["onnxruntime"] or "-",
                      "[green]yes[/]" if row["available"] else "[red]no[/]", escape(row.get("reason") or ""))
    console.print(table)


@runtimes_app.command("list")
def runtimes_list() -> None:
    """Managed runtimes in the cache."""
    from .runtimes import list_runtimes, runtimes_dir

    found = list_runtimes()
    if not found:
        typer.echo(f"no managed runtimes in {runtimes_dir()}")
    for item in found:
        typer.echo(f"{item['name']}: onnxruntime {item.get('onnxruntime_version', '?')} "
                   f"providers {', '.join(item.get('available_providers', []))} ({item['path']})"
                   + (f" ERROR {item['error']}" if "error" in item else ""))


@runtimes_app.command("create")
def runtimes_create(
    package: Annotated[str, typer.Argument(help="onnxruntime build, e.g. onnxruntime-openvino")],
    version: Annotated[Optional[str], typer.Option(help="Pin a version.")] = None,
    force: Annotated[bool, typer.Option(help="Recreate even if it exists.")] = False,
) -> None:
    """Create (or reuse) the managed runtime for an onnxruntime build."""
    from .runtimes import RuntimeUnavailable, create_runtime

    try:
        create_runtime(package, version, typer.echo, force=force)
    except RuntimeUnavailable as exc:
        raise InputError(f"runtime {package}: {exc}") from None


@runtimes_app.command("remove")
def runtimes_remove(name: Annotated[str, typer.Argument(help="Name as shown by 'harness runtimes list'.")]) -> None:
    """Delete a managed runtime."""
    from .runtimes import remove_runtime

    if not remove_runtime(name):
        raise InputError(f"runtime {name}: not found; see 'harness runtimes list'")
    typer.echo(f"removed {name}")


@app.command()
def variants(suite: SuiteArg) -> None:
    """Build (or reuse) every variant of a suite without running anything."""
    from .plan import build_plan
    from .suite import load_suite
    from .variants import VariantError, VariantStore

    plan = build_plan(load_suite(suite))
    store = VariantStore(plan.loaded, plan.model_files, typer.echo)
    failed = False
    for case in plan.cases:
        if (case.model.name, case.variant.name) in store.paths:
            continue
        try:
            path = store.path(case)
            typer.echo(f"{case.model.name}/{case.variant.name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        except VariantError as exc:
            failed = True
            typer.echo(f"{case.model.name}/{case.variant.name}: FAILED: {exc}", err=True)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _register_commands() -> None:
    """Commands whose modules own their options (report, compare, baseline, export)."""
    from .compare_cli import baseline_app, compare, export
    from .report.command import report

    app.command()(report)
    app.command()(compare)
    app.command()(export)
    app.add_typer(baseline_app, name="baseline")


_register_commands()


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_INPUT)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        # Usage errors (unknown option, bad value). Typer vendors click in recent releases and
        # uses the click package in older ones, so recognise them by shape, not by class.
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(EXIT_INPUT)
        if type(exc).__name__ == "Abort":
            sys.exit(EXIT_INTERRUPTED)
        raise
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
