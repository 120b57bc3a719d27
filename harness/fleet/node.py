"""``harness node start|status|stop``: a Ray node that advertises what this machine can run.

``start`` probes the targets as ``harness doctor`` does and starts a Ray node (``ray start``)
with one resource per available target, one benchmark slot, and its harness name. ``status``
lists the cluster's nodes, what each offers and its fingerprint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from .resources import SLOT, node_resource, offered, target_resource, version_resource
from .task import NODE_NAME_ENV

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def ray_executable() -> str:
    """The ``ray`` next to this interpreter: the node's workers then run this harness."""
    found = Path(sys.executable).with_name("ray")
    if found.exists():
        return str(found)
    which = shutil.which("ray")
    if which is None:
        from .driver import INSTALL

        raise InputError(f"harness node: Ray is not installed here; {INSTALL}")
    return which


def probe_targets(names: list[str] | None, create: bool, say: Callable[[str], None]) -> list[dict[str, Any]]:
    from ..doctor import doctor

    return doctor(names, create, say)


def start_node(head: bool, address: str | None, port: int, name: str, targets: list[str] | None, create: bool,
               temp_dir: Path | None, say: Callable[[str], None]) -> dict[str, Any]:
    if head == bool(address):
        raise InputError("harness node start: give --head (start a cluster) or --address HEAD:PORT (join one)")
    if not NAME.fullmatch(name):
        raise InputError(f"--name {name!r}: letters, digits, _ . - (up to 63), starting with a letter or digit")
    rows = probe_targets(targets, create, say)
    offers = [row["target"] for row in rows if row.get("available")]
    resources = {SLOT: 1, node_resource(name): 1, version_resource(__version__): 1,
                 **{target_resource(alias): 1 for alias in offers}}
    command = [ray_executable(), "start", "--resources", json.dumps(resources), "--disable-usage-stats",
               "--num-cpus", str(os.cpu_count() or 1)]
    if head:
        command += ["--head", "--port", str(port), "--include-dashboard", "false"]
        if temp_dir is not None:
            command += ["--temp-dir", str(temp_dir)]
    else:
        command += ["--address", str(address)]
    env = {**os.environ, NODE_NAME_ENV: name}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        tail = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()][-1:] or ["no output"]
        raise InputError(f"harness node start: ray start failed: {tail[0].strip()[:300]}")
    return {"name": name, "offers": offers, "unavailable": {row["target"]: row.get("reason") for row in rows
                                                           if not row.get("available")}, "resources": resources}


def cluster_status(address: str) -> list[dict[str, Any]]:
    """Each alive node: name, what it offers, and its machine (asked of the node itself)."""
    from .driver import alive_nodes, connect

    ray = connect(address)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from ..environment import fingerprint

    nodes = alive_nodes(ray)
    probe = ray.remote(fingerprint)
    refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["node_id"], soft=False))
            .remote() for n in nodes]
    out = []
    for node, ref in zip(nodes, refs):
        try:
            env = ray.get(ref, timeout=60)
        except Exception as exc:
            env = {"error": " ".join(str(exc).split())[:200]}
        out.append({"name": node["name"], "node_id": node["node_id"], "offers": offered(node["resources"]),
                    "hostname": env.get("hostname"), "fingerprint": env.get("fingerprint"),
                    "cpu_model": env.get("cpu_model"), "gpus": len(env.get("gpus") or []), "error": env.get("error")})
    return out
