"""Argument types shared by several commands (kept import-light: only typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SuiteArg = Annotated[Path, typer.Argument(help="Suite YAML file.", show_default=False)]
