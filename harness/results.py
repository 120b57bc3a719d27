"""Results files: one versioned JSON document per run, rewritten atomically after each case.

The file is the only interface between running and reporting/comparing, which is what lets
results from many machines be merged. ``load`` flattens any number of them into a pandas
DataFrame with one row per case.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .errors import InputError
from .files import write_atomic_text

SCHEMA_VERSION = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_document(run_id: str, suite: dict[str, Any], environment: dict[str, Any], settings: dict[str, Any]) -> dict:
    return {"schema_version": SCHEMA_VERSION, "run_id": run_id, "started_at": utc_now(), "finished_at": None,
            "status": "running", "suite": suite, "environment": environment, "settings": settings, "cases": []}


def write_atomic(path: Path, document: dict[str, Any]) -> None:
    """Rewrite a results file so that a crash or Ctrl-C never leaves half a document."""
    # Compact: raw samples dominate the size (100k per fast case).
    write_atomic_text(path, json.dumps(document, separators=(",", ":"), allow_nan=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as every *.json inside (sorted)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.json") if not p.name.startswith(".")))
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: results file or folder not found")
    if not out:
        raise InputError(f"{', '.join(map(str, paths))}: no results files (*.json) found")
    return out


def read(path: str | Path) -> dict[str, Any]:
    """One results document, checked enough that later code can trust its shape."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable results file ({type(exc).__name__}: {exc})") from None
    if not isinstance(document, dict) or "cases" not in document:
        raise InputError(f"{path}: not a harness results file (no 'cases'); pass files written by 'harness run'")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version {version!r} is not supported (this harness reads {SCHEMA_VERSION}); "
                         "upgrade the harness")
    document["_path"] = str(path)
    return document


def read_all(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    return [read(p) for p in expand_paths(paths)]


def load(paths: Iterable[str | Path] | str | Path) -> pd.DataFrame:
    """One row per case across all given results files/folders, with flat metric columns."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return to_frame(read_all(paths))


def to_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for document in documents:
        env = document.get("environment", {})
        for case in document["cases"]:
            row: dict[str, Any] = {
                "run_id": document["run_id"], "suite": document.get("suite", {}).get("name"),
                "machine": env.get("hostname"), "fingerprint": env.get("fingerprint"), "cpu_model": env.get("cpu_model"),
                "case_id": case["case_id"], "model": case["model"], "variant": case["variant"],
                "target": case["target"], "status": case["status"], "reason": case.get("reason"),
                "provider": (case.get("runtime") or {}).get("providers_requested", [None])[0],
                "onnxruntime_version": (case.get("runtime") or {}).get("onnxruntime_version"),
            }
            for key, value in (case.get("params") or {}).items():
                row[key] = value
            for group in ("latency_ms", "throughput", "memory_mb", "timings_ms"):
                for key, value in (case.get(group) or {}).items():
                    if isinstance(value, (int, float)) or value is None:
                        row[f"{group}.{key}"] = value
            for key, value in (case.get("accuracy") or {}).items():
                if isinstance(value, (int, float, str)):
                    row[f"accuracy.{key}"] = value
            measurement = case.get("measurement") or {}
            row["unstable"] = bool(measurement.get("unstable"))
            row["stop_reason"] = measurement.get("stop_reason")
            row["placement.fraction_on_requested"] = (case.get("placement") or {}).get("fraction_on_requested")
            row["samples_ms"] = case.get("samples_ms")
            rows.append(row)
    return pd.DataFrame(rows)
