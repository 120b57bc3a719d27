"""What a node runs for one case: the local run's CaseRun, in the node's runtimes.

Files travel by content hash: the driver puts each model or variant file (and the reference
outputs) into Ray's object store once; a node writes it under its cache the first time and
reads it from there after, so nothing is rebuilt or re-sent per case.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from ..files import write_atomic_bytes
from ..paths import cache_dir

NODE_NAME_ENV = "HARNESS_NODE_NAME"  # set by harness node start; Ray's workers inherit it


def node_name() -> str:
    return os.environ.get(NODE_NAME_ENV) or socket.gethostname()


def materialize(digest: str, suffix: str, ref: Any) -> Path:
    """The node's copy of a file the driver shipped, fetched from the object store only once."""
    import ray

    path = cache_dir() / "fleet" / f"{digest}{suffix}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic_bytes(path, ray.get(ref))
    return path


class ShippedVariant:
    """Stands in for the VariantStore on a node: the driver built the variant and the reference."""

    def __init__(self, model: Path, reference: dict[str, str] | None) -> None:
        self.model, self.found = model, reference

    def path(self, case: Any) -> Path:
        return self.model

    def reference(self, case: Any, workdir: Path) -> dict[str, str] | None:
        return self.found


def measure_case(case: Any, plan: Any, model: tuple[str, str, Any], reference: dict[str, tuple[str, str, Any]]) -> dict:
    """Run one case here; its record as JSON, with the machine that measured it."""
    import ray

    from ..environment import fingerprint
    from ..run.case import CaseRun, RuntimeCache

    model_path = materialize(*model)
    found = {key: str(materialize(*shipped)) for key, shipped in reference.items()} if reference else None
    workdir = Path(tempfile.mkdtemp(prefix="harness-fleet-"))
    try:
        run = CaseRun(case, plan, workdir)
        run.prepare(RuntimeCache(lambda _: None), ShippedVariant(model_path, found))  # type: ignore[arg-type]
        while run.pending:
            run.measure_one()
        record = run.finish()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    env = fingerprint()
    record_json = record.to_json()
    record_json["measured_on"] = {"node": node_name(), "node_id": ray.get_runtime_context().get_node_id(),
                                  "hostname": env.get("hostname"), "fingerprint": env.get("fingerprint"),
                                  "environment": env}
    return record_json
