"""`harness node start|status|stop`: the machines of a fleet (Ray cluster)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Optional

import typer

node_app = typer.Typer(no_args_is_help=True, help="Ray nodes that advertise the targets this machine can run.")


@node_app.command("start")
def node_start(
    head: Annotated[bool, typer.Option("--head", help="Start a new cluster with this machine as its head.")] = False,
    address: Annotated[Optional[str], typer.Option("--address", help="Join the cluster whose head is HOST:PORT.")] = None,
    port: Annotated[int, typer.Option("--port", help="The head's port (with --head).")] = 6379,
    name: Annotated[Optional[str], typer.Option("--name", help="This node's name in results and reports "
                                                "(default: the hostname).")] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Offer only these targets, if they work "
                                                        "here (repeatable; default: every target that works).")] = None,
    create: Annotated[bool, typer.Option("--create", help="Create missing managed runtimes while probing.")] = False,
    temp_dir: Annotated[Optional[Path], typer.Option("--temp-dir", help="Ray's session folder (with --head).")] = None,
) -> None:
    """Start a Ray node that offers one resource per target that really works here, and one benchmark slot."""
    from ..fleet.node import start_node

    started = start_node(head, address, port, name or socket.gethostname(), target, create, temp_dir, typer.echo)
    typer.echo(f"node {started['name']}: offers {', '.join(started['offers']) or 'nothing'}")
    for alias, reason in started["unavailable"].items():
        typer.echo(f"  not offered: {alias}: {reason}")
    if head:
        typer.echo(f"cluster head at port {port}: join with 'harness node start --address THIS_HOST:{port}'; "
                   f"run with 'harness run SUITE --cluster THIS_HOST:{port}'")


@node_app.command("status")
def node_status(
    address: Annotated[str, typer.Option("--address", help="The cluster's head HOST:PORT, or auto.")] = "auto",
) -> None:
    """The cluster's nodes: what each offers and which machine it is."""
    from rich.table import Table

    from ..console import make_console
    from ..fleet.node import cluster_status

    table = Table(title=f"cluster {address}")
    for column in ("node", "offers", "hostname", "cpu", "gpus", "fingerprint"):
        table.add_column(column)
    for node in cluster_status(address):
        table.add_row(node["name"], ", ".join(node["offers"]) or "-", str(node["hostname"] or node["error"] or "-"),
                      str(node["cpu_model"] or "-"), str(node["gpus"]), str(node["fingerprint"] or "-"))
    make_console().print(table)


@node_app.command("stop")
def node_stop() -> None:
    """Stop the Ray processes this machine runs (ray stop)."""
    import subprocess

    from ..fleet.node import ray_executable

    raise typer.Exit(subprocess.run([ray_executable(), "stop"]).returncode)
