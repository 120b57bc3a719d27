"""Where the harness keeps things: the cache folder and what it holds.

Its own module so that targets, runtimes, models and variants can all use it without
importing each other (targets <-> runtimes was a cycle).
"""

from __future__ import annotations

import os
from pathlib import Path

# Written into every folder the harness creates under its cache, so that deleting one (runtimes
# remove) can check it is the harness's own and not something a path pointed it at.
MARKER = ".harness-owned"


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "onnx-harness")


def runtimes_dir() -> Path:
    return cache_dir() / "runtimes"


def crash_dir() -> Path:
    """Tracebacks of harness bugs, one file each (the CLI prints the path)."""
    return cache_dir() / "crashes"


def beside_results(results_file: Path, kind: str) -> Path:
    """A run's side folder next to its results file: ``run.jsonl`` -> ``run.profiles/`` (kind
    "profiles": every node of each case's profile) or ``run.loadgen/`` (LoadGen's logs)."""
    return results_file.with_name(f"{results_file.stem}.{kind}")
