"""Table views: a DataFrame plus column specs -> rows of formatted cells with sort keys and flags.

Used by the HTML template (sortable, filterable tables) and by the Markdown renderer, so a
number reads the same in both and the warning marks are decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import fmt
from .fmt import Column
from .tables import Matrix

FLAG_COLUMNS = ("status", "unstable", "partial_fallback", "verdict")
NOWRAP = {"choice", "runner_up", "target_label", "config", "ci", "speedup_range"}  # short labels that read badly broken


@dataclass(frozen=True)
class Cell:
    text: str
    sort: str  # what the HTML table sorts by: the raw number, not its formatting
    cls: str = ""


@dataclass(frozen=True)
class Row:
    cells: list[Cell]
    flags: list[str] = field(default_factory=list)  # css classes: unstable, fallback, accuracy, failed, ...


@dataclass(frozen=True)
class TableView:
    id: str
    columns: list[Column]
    rows: list[Row]
    caption: str = ""
    empty: str = "nothing to show"

    @property
    def note_index(self) -> int | None:
        """The notes (or flags) column: the HTML page shows it as a full-width line under its row,
        so that a wide table never pushes it off screen; Markdown keeps it a column."""
        return next((i for i, c in enumerate(self.columns) if c.key == "notes"), None)


def row_flags(record: dict[str, Any]) -> list[str]:
    """Marks that must stay visible next to the numbers they qualify."""
    flags = []
    if record.get("status") in ("failed", "unavailable"):
        flags.append(str(record["status"]))
    if record.get("unstable") is True:
        flags.append("unstable")
    if record.get("partial_fallback") is True:
        flags.append("fallback")
    if record.get("verdict") in ("fail", "error"):
        flags.append("accuracy")
    return flags


def _sort_key(raw: Any, column: Column) -> str:
    if fmt.missing(raw):
        return ""
    if column.numeric and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return repr(float(raw))
    return str(raw)


def table_view(frame: pd.DataFrame, columns: list[Column], id: str, caption: str = "",
               empty: str = "nothing to show") -> TableView:
    columns = [c for c in columns if c.key in frame.columns]
    # Only the columns shown and those deciding flags: to_dict on a wide frame is the slow part.
    needed = list(dict.fromkeys([c.key for c in columns] + [k for k in FLAG_COLUMNS if k in frame.columns]))
    rows = []
    for record in frame[needed].to_dict("records"):
        cells = []
        for column in columns:
            raw = record.get(column.key)
            text = fmt.value(raw, column.kind)
            cls = "num" if column.numeric else "nowrap" if column.key in NOWRAP else ""
            if column.key in ("notes", "reason") and text:
                cls = "note"
            cells.append(Cell(text, _sort_key(raw, column), cls))
        rows.append(Row(cells, row_flags(record)))
    return TableView(id, columns, rows, caption, empty)


def matrix_view(matrix: Matrix, id: str, annotate: bool) -> TableView:
    """A speedup matrix as a table; ``annotate`` names each cell's variant ("2.31× int8")."""
    records = matrix.speedups.reset_index()
    columns = [Column("model", "model"), Column("config", "params")]
    columns += [Column(c, c, "x") for c in matrix.speedups.columns]
    view = table_view(records, columns, id, matrix.title, "no case has a baseline to compare with")
    if annotate:
        for row, (_, names) in zip(view.rows, matrix.variants.iterrows()):
            for index, name in enumerate(names, start=2):
                if isinstance(name, str):
                    cell = row.cells[index]
                    row.cells[index] = Cell(f"{cell.text} {name}", cell.sort, cell.cls)
    return view
