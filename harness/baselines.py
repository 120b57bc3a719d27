"""Named baselines: results files kept per machine, for nightly comparisons.

Layout: ``<root>/<NAME>/<fingerprint>/<results file>.json``. Keying by the hardware
fingerprint lets one baseline (say ``main``) hold results from every runner that uses it:
``harness compare --baseline main CANDIDATE`` picks the files of the candidate's machine,
because numbers from other hardware are not a baseline, only a different measurement.

The root is ``--dir``, else ``$HARNESS_BASELINES``, else ``./baselines``. Files are plain
results files, so a baseline folder can be committed, cached or uploaded as an artifact.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .files import write_atomic_bytes
from .results import Run, read, read_all
from .results.store import SUFFIXES
from .suite import NAME_PATTERN

ENV_VAR = "HARNESS_BASELINES"


@dataclass(frozen=True)
class BaselineMachine:
    """One machine's share of a named baseline."""

    name: str
    fingerprint: str
    hostname: str
    cpu_model: str
    runs: int
    cases: int
    latest: str  # started_at of the newest run
    folder: Path


def baselines_root(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else Path.cwd() / "baselines"


def check_name(name: str) -> str:
    """Names become folder names: the suite-name pattern keeps them portable and inside the root."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise InputError(f"baseline name {name!r}: use letters, digits and _ . + - (starting with a letter or digit)")
    return name


def save_baseline(name: str, paths: Iterable[str | Path], root: Path, append: bool = False,
                  if_missing: bool = False) -> list[Path]:
    """Copy results files into the baseline, per machine; by default they replace that machine's
    earlier files (a baseline is the reference now, not a log), with ``append`` they add to them
    (more runs per side give memory a real test). ``if_missing`` saves only for machines the
    baseline does not hold yet: the first night on a new runner seeds it, later nights do not
    move it."""
    check_name(name)
    documents = read_all(paths)
    for document in documents:
        if document.status != "complete":
            raise InputError(f"{document.source}: run status is {document.status!r}; a baseline needs a complete run")
        if not document.environment.fingerprint:
            raise InputError(f"{document.source}: no environment.fingerprint; cannot key a baseline on it")
    by_machine: dict[str, list[Run]] = {}
    for document in documents:
        by_machine.setdefault(str(document.environment.fingerprint), []).append(document)
    written: list[Path] = []
    for fingerprint, docs in by_machine.items():
        folder = root / name / fingerprint
        if if_missing and _results_in(folder):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        keep = {Path(str(d.source)).name for d in docs}
        if not append:
            for old in _results_in(folder):
                if old.name not in keep:
                    old.unlink()
        for document in docs:
            source = Path(str(document.source))
            written.append(write_atomic_bytes(folder / source.name, source.read_bytes()))
    return written


def _results_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES and not p.name.startswith(".")) \
        if folder.is_dir() else []


def list_baselines(root: Path) -> list[BaselineMachine]:
    out: list[BaselineMachine] = []
    if not root.is_dir():
        return out
    for name_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for machine_dir in sorted(p for p in name_dir.iterdir() if p.is_dir()):
            files = _results_in(machine_dir)
            if not files:
                continue
            docs = [read(f) for f in files]
            env = docs[-1].environment
            out.append(BaselineMachine(
                name=name_dir.name, fingerprint=machine_dir.name, hostname=str(env.hostname),
                cpu_model=str(env.cpu_model), runs=len(docs),
                cases=len({c.case_id for d in docs for c in d.cases}),
                latest=max(str(d.started_at or "") for d in docs), folder=machine_dir))
    return out


def baseline_files(name: str, root: Path, fingerprints: set[str], allow_other_machine: bool = False) -> list[Path]:
    """The baseline's files for the candidate's machine; one line naming what exists otherwise."""
    check_name(name)
    folder = root / name
    machines = {p.name: _results_in(p) for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else {}
    machines = {k: v for k, v in machines.items() if v}
    if not machines:
        raise InputError(f"baseline {name!r} not found in {root} (or empty); create it with "
                         f"'harness baseline save {name} RESULTS...'")
    if len(fingerprints) == 1 and (match := machines.get(next(iter(fingerprints)))):
        return match
    if allow_other_machine and len(machines) == 1:
        return next(iter(machines.values()))
    held = ", ".join(f"{fp} ({_hostname(files[-1])})" for fp, files in machines.items())
    wanted = ", ".join(sorted(fingerprints))
    raise InputError(f"baseline {name!r} has no results for the candidate's machine (fingerprint {wanted}); "
                     f"it holds {held}; save this machine's results with 'harness baseline save {name} RESULTS'")


def _hostname(path: Path) -> str:
    try:
        return str(read(path).environment.hostname)
    except InputError:
        return "?"
