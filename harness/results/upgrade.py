"""Explicit migrations of older results documents, one function per version step (asv's
``update_to_2`` style). Each takes the JSON of version N and returns that of version N+1;
``upgrade`` chains them, so a file from any supported version reads as the current one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .notes import case_notes
from .record import SCHEMA_VERSION, CaseRecord, RecordError


def upgrade_1_to_2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 1 was one JSON document rewritten after each case; version 2 appends one line per
    case. The record itself gained per-case ``notes`` (computed once when the case ends, where
    version 1 readers recomputed them) and ``started_at``/``finished_at`` (unknown for v1: null)."""
    if not isinstance(document.get("cases"), list):
        return {**document, "schema_version": 2}  # the reader says what is wrong with it
    cases = []
    for index, raw in enumerate(document["cases"]):
        if isinstance(raw, dict) and "notes" not in raw:
            try:
                raw = {**raw, "notes": case_notes(CaseRecord.from_json(raw, f"cases[{index}]"))}
            except RecordError:
                pass  # left for the reader to report with the file name
        cases.append(raw)
    return {**document, "schema_version": 2, "cases": cases}


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: upgrade_1_to_2}


def upgrade(document: dict[str, Any]) -> dict[str, Any]:
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError("schema_version", f"expected a whole number, got {version!r}")
    if version > SCHEMA_VERSION:
        raise RecordError("schema_version", f"{version} is newer than this harness reads ({SCHEMA_VERSION}); "
                          "upgrade the harness")
    while version < SCHEMA_VERSION:
        if version not in UPGRADES:
            raise RecordError("schema_version", f"{version} is not supported (this harness reads 1 to {SCHEMA_VERSION})")
        document = UPGRADES[version](document)
        version = document["schema_version"]
    return document
