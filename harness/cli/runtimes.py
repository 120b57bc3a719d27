"""`harness runtimes list|create|remove`: managed Python environments, one per onnxruntime build."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import InputError

runtimes_app = typer.Typer(no_args_is_help=True, help="Managed Python environments, one per onnxruntime build.")


@runtimes_app.command("list")
def runtimes_list() -> None:
    """Managed runtimes in the cache."""
    from ..paths import runtimes_dir
    from ..runtimes import list_runtimes

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
    plugin: Annotated[Optional[str], typer.Option(help="A plugin EP package to install beside it, "
                                                  "e.g. onnxruntime-ep-openvino.")] = None,
) -> None:
    """Create (or reuse) the managed runtime for an onnxruntime build."""
    from ..runtimes import RuntimeUnavailable, create_runtime

    try:
        create_runtime(package, version, typer.echo, force=force, plugin={"package": plugin} if plugin else None)
    except RuntimeUnavailable as exc:
        raise InputError(f"runtime {package}: {exc}") from None


@runtimes_app.command("remove")
def runtimes_remove(name: Annotated[str, typer.Argument(help="Name as shown by 'harness runtimes list'.")]) -> None:
    """Delete a managed runtime (only a folder the harness created)."""
    from ..runtimes import remove_runtime

    if not remove_runtime(name):
        raise InputError(f"runtime {name}: not found; see 'harness runtimes list'")
    typer.echo(f"removed {name}")
