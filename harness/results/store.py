"""Results files on disk: append-only JSON Lines, written once per case, read back as ``Run``.

Format (schema version 2), one JSON object per line::

    {"record": "run", "schema_version": 2, "run_id": ..., "suite": ..., "environment": ..., ...}
    {"record": "case", "case_id": ..., "status": "ok", "latency_ms": {...}, "samples_ms": [...]}
    ...
    {"record": "end", "finished_at": ..., "status": "complete", "cases": 24}

Version 1 rewrote one JSON document after every case, which cost O(cases^2) bytes. Here the
parent writes each case once (with an fsync), so a crash, SIGKILL or full disk loses at most
the case in flight: a line cut short by a crash is the last one and is dropped on reading,
and a failed write is truncated away before the error is raised. A file without its end line
reads as ``running`` (still running, or its process died). Version 1 files still read,
through ``upgrade``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from .record import SCHEMA_VERSION, CaseRecord, Environment, RecordError, Run
from .upgrade import upgrade

SUFFIXES = (".jsonl", ".json")


class ResultsWriteError(InputError):
    """The results file could not be written (full disk, read-only folder); finished cases are kept."""


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def encode_line(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, separators=(",", ":"), allow_nan=False, default=_json_default) + "\n").encode()


class ResultsWriter:
    """The one writer of results files. Created exclusively (O_EXCL), so two runs started in the
    same second never share a file; every line goes out in whole with one fsync."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.size = 0
        self.cases = 0
        self.bytes_written = 0

    @classmethod
    def create(cls, out_dir: Path, stem: str, run: Run) -> ResultsWriter:
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: not a folder; give -o a folder for the results file")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{out_dir}: cannot create the results folder: {exc.strerror or exc}") from None
        if not out_dir.is_dir():
            raise InputError(f"{out_dir}: not a folder; give -o a folder for the results file")
        for attempt in range(1000):
            path = out_dir / (f"{stem}.jsonl" if attempt == 0 else f"{stem}-{attempt}.jsonl")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                raise InputError(f"{path}: cannot create the results file: {exc.strerror or exc}") from None
            writer = cls(path, fd)
            writer._write({"record": "run", **run.header_json()}, "the run header")
            return writer
        raise InputError(f"{out_dir}: 1000 results files named {stem}*; clean the folder")

    def append(self, case: CaseRecord) -> None:
        self._write({"record": "case", **case.to_json()}, f"case {case.case_id}")
        self.cases += 1

    def finish(self, status: str, finished_at: str) -> None:
        try:
            self._write({"record": "end", "finished_at": finished_at, "status": status, "cases": self.cases},
                        "the end of the run")
        finally:
            self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, data: dict[str, Any], what: str) -> None:
        line = encode_line(data)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self.size)  # never leave half a line behind
            except OSError:
                pass
            raise ResultsWriteError(f"{self.path}: cannot write {what}: {exc.strerror or exc}; the {self.cases} "
                                    "finished cases before it are kept") from None
        self.size += len(line)
        self.bytes_written += len(line)


# --- reading ---------------------------------------------------------------------------------


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as every results file inside (sorted); each file once."""
    out: list[Path] = []
    given = list(paths)
    for raw in given:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir()
                              if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"{path}: results file or folder not found")
    if not out:
        raise InputError(f"{', '.join(map(str, given))}: no results files (*.jsonl, *.json) found")
    seen: set[Path] = set()
    unique = []
    for path in out:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def read(path: str | Path) -> Run:
    """One results file of any supported version, checked field by field."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable results file ({type(exc).__name__}: {exc})") from None
    first = text.split("\n", 1)[0]
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        head = None
    if isinstance(head, dict) and head.get("record") == "run":
        return _read_lines(path, text)
    return _read_document(path, text)


def _read_document(path: Path, text: str) -> Run:
    """A whole-file JSON document: schema version 1."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a readable results file (JSONDecodeError: {exc})") from None
    if not isinstance(document, dict) or "cases" not in document:
        raise InputError(f"{path}: not a harness results file (no 'cases'); pass files written by 'harness run'")
    try:
        run = Run.from_json(upgrade(document))
    except RecordError as exc:
        raise InputError(f"{path}: {exc}") from None
    run.source = str(path)
    return run


def _read_lines(path: Path, text: str) -> Run:
    lines = text.split("\n")
    torn = not text.endswith("\n")  # the writer died in the middle of its last line
    header: dict[str, Any] | None = None
    end: dict[str, Any] = {}
    cases: list[CaseRecord] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn and number == len(lines):
                break
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg}); the file was edited or damaged") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
        kind = data.pop("record", None)
        try:
            if kind == "run" and header is None:
                header = data
                _check_version(header)
            elif kind == "case" and header is not None:
                cases.append(CaseRecord.from_json(data))
            elif kind == "end" and header is not None:
                end = data
            else:
                raise RecordError("record", f"unexpected {kind!r} line here")
        except RecordError as exc:
            raise InputError(f"{path}:{number}: {exc}") from None
    assert header is not None  # read() saw the header line
    try:
        run = Run.from_json({**header, "status": end.get("status", "running"), "finished_at": end.get("finished_at")})
    except RecordError as exc:
        raise InputError(f"{path}:1: {exc}") from None
    run.cases = cases
    run.source = str(path)
    return run


def _check_version(header: dict[str, Any]) -> None:
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        upgrade({**header, "cases": []})  # raises the right message for newer or unknown versions
        if version != SCHEMA_VERSION:
            raise RecordError("schema_version", f"{version!r}: a line-per-case file must be version {SCHEMA_VERSION}")


def read_all(paths: Iterable[str | Path]) -> list[Run]:
    """Every run in the files, a fleet run split into one run per machine (see per_machine)."""
    return [part for p in expand_paths(paths) for part in per_machine(read(p))]


def per_machine(run: Run) -> list[Run]:
    """A fleet run (harness run --cluster) as one run per machine that measured cases, each with
    that machine's environment, so reports and compare see machines side by side exactly as for
    runs made on each machine. Cases no node measured (unavailable at once) stay with the driver's
    environment. A local run is returned as it is."""
    if not any(case.measured_on is not None for case in run.cases):
        return [run]
    groups: dict[str, list] = {}
    environments: dict[str, Environment] = {}
    for case in run.cases:
        on = case.measured_on
        key = on.node if on is not None else ""
        groups.setdefault(key, []).append(case)
        if on is not None and key not in environments:
            env = dict(on.environment)
            if on.node != env.get("hostname"):  # two nodes on one host are told apart by name
                env["fingerprint"] = f"{env.get('fingerprint') or 'unknown'}-{on.node}"
                env["hostname"] = on.node
            environments[key] = Environment.from_json(env, f"cases[{case.case_id}].measured_on.environment")
    return [replace(run, environment=environments.get(key, run.environment), cases=cases)
            for key, cases in groups.items()]


def write_document(path: Path, run: Run) -> Path:
    """A whole run written at once in the current format (baselines, tests, conversions)."""
    from ..files import write_atomic_bytes

    lines = [encode_line({"record": "run", **run.header_json()})]
    lines += [encode_line({"record": "case", **case.to_json()}) for case in run.cases]
    if run.status != "running":
        lines.append(encode_line({"record": "end", "finished_at": run.finished_at, "status": run.status,
                                  "cases": len(run.cases)}))
    return write_atomic_bytes(path, b"".join(lines))
