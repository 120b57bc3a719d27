"""The results record and its files: the only interface between running and reporting.

``record`` defines the typed record (stdlib only), ``store`` writes and reads files (append-only
JSON Lines; version 1 documents through ``upgrade``), ``frame`` flattens runs into pandas.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .notes import case_notes
from .record import (
    SCHEMA_VERSION,
    Accuracy,
    CaseRecord,
    DeviceResident,
    Environment,
    Latency,
    MeasuredOn,
    Measurement,
    Memory,
    ModelFile,
    Placement,
    Precision,
    Profile,
    Provenance,
    RecordError,
    Run,
    Runtime,
    Serving,
    ServingPoint,
    SuiteInfo,
    Throughput,
    Timings,
)
from .store import ResultsWriteError, ResultsWriter, expand_paths, read, read_all, write_document

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCHEMA_VERSION", "Accuracy", "CaseRecord", "DeviceResident", "Environment", "Latency", "MeasuredOn", "Measurement",
           "Memory", "ModelFile", "Placement", "Precision", "Profile", "Provenance", "RecordError", "ResultsWriteError", "ResultsWriter", "Run", "Runtime", "Serving", "ServingPoint",
           "SuiteInfo", "Throughput", "Timings", "case_notes", "expand_paths", "load", "read", "read_all", "to_frame",
           "utc_now", "write_document"]


def utc_now() -> str:
    """ISO 8601 UTC to the millisecond: case start and end times order cases within a second."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_frame(runs: list[Run]) -> pd.DataFrame:
    from .frame import to_frame as frame

    return frame(runs)


def load(paths: Iterable[str | Path] | str | Path) -> pd.DataFrame:
    """One row per case across all given results files/folders, with flat metric columns."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return to_frame(read_all(paths))
