"""The one console factory: every command prints through a console made here."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def make_console(stderr: bool = False) -> Console:
    """A terminal gets its own width; a CI log gets 160 columns, where rich would default to 80."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(width=None if stream.isatty() else 160, highlight=False, stderr=stderr)
