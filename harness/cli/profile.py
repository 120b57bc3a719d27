"""`harness profile`: where one case's time goes, per operator type and per node, in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError


def profile(
    results: Annotated[list[Path], typer.Argument(help="Results files or folders.", show_default=False)],
    case: Annotated[str, typer.Option("--case", help="The case id (as in the results), e.g. "
                                      "squeezenet/fp32/cpu/batch=1.", show_default=False)],
    top: Annotated[int, typer.Option("--top", min=1, help="Nodes to list (the slowest first).")] = 15,
) -> None:
    """Per-operator profile of one case: time per op type and the slowest nodes, with their provider."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from ..console import make_console
    from ..paths import beside_results
    from ..results import read_all
    from ..units import ms

    runs = sorted(read_all(results), key=lambda r: str(r.started_at or ""), reverse=True)
    found = [(run, c) for run in runs for c in run.cases if c.case_id == case]
    if not found:
        known = sorted({c.case_id for run in runs for c in run.cases})
        hint = f"; cases: {', '.join(known[:5])}{' ...' if len(known) > 5 else ''}" if known else ""
        raise InputError(f"--case {case}: not in the results given{hint}")
    run, record = found[0]  # the newest run that has it
    if record.profile is None:
        why = record.reason if not record.ok else "the run had measure.placement off, or an older harness made it"
        raise InputError(f"--case {case}: no profile in {run.source or run.run_id} ({why})")
    p = record.profile
    console = make_console()
    provider = record.runtime.provider
    console.print(f"{escape(case)} ({escape(str(run.run_id))}): kernel time {ms(p.kernel_ms)} per run, mean of "
                  f"{p.runs} profiled runs" + (f"; run wall time {ms(p.model_run_ms)}" if p.model_run_ms else ""),
                  highlight=False)
    by_op = Table(title="time per operator type", title_justify="left")
    for column, justify in (("op type", "left"), ("nodes", "right"), ("time", "right"), ("share", "right")):
        by_op.add_column(column, justify=justify)  # type: ignore[arg-type]
    for op, entry in p.by_op_type.items():
        by_op.add_row(escape(op), str(entry.get("nodes", "")), ms(entry.get("ms")), f"{entry.get('share', 0):.1%}")
    console.print(by_op)
    nodes = p.top_nodes
    if p.table:
        # Recorded relative to where the run was started; else look next to the results file.
        beside = beside_results(Path(run.source), "profiles") / Path(p.table).name if run.source else None
        table_file = next((f for f in (Path(p.table), beside) if f is not None and f.is_file()), None)
        if table_file is not None:
            nodes = json.loads(table_file.read_text()).get("nodes", nodes)
    table = Table(title=f"slowest nodes (of {len(nodes)})", title_justify="left")
    for column, justify in (("node", "left"), ("op type", "left"), ("provider", "left"), ("time", "right"),
                            ("share", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for node in nodes[:top]:
        off = node.get("provider") != provider
        table.add_row(escape(str(node.get("name"))), escape(str(node.get("op_type"))),
                      f"[red]{escape(str(node.get('provider')))}[/]" if off else escape(str(node.get("provider"))),
                      ms(node.get("ms")), f"{node.get('share', 0):.1%}")
    console.print(table)
    if p.fallback_nodes:
        share = sum(n.get("share", 0) for n in p.fallback_nodes)
        console.print(f"{len(p.fallback_nodes)} nodes ran off {provider}, {share:.1%} of the kernel time", style="red",
                      highlight=False)
