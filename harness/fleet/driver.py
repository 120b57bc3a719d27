"""``harness run SUITE --cluster ADDRESS``: the driver side of a fleet run.

The driver builds the plan, the variants and the reference outputs (once, here: every node
measures the very same files), ships the files by content hash, and submits one Ray task per
case that needs the case's target resource and a node's single benchmark slot. Each finished
case is written as it arrives, with the machine that measured it. A target no node offers is
``unavailable`` at once; a node lost mid-case fails that case (``node lost``) or, with the
suite's ``fleet.retry_lost``, runs it once more elsewhere; SIGINT or SIGTERM cancels what is
outstanding and keeps every finished case.
"""

from __future__ import annotations

import hashlib
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from ..plan import Case, Plan
from ..results import Accuracy, CaseRecord, utc_now
from ..run.case import base_record
from ..run.session import Reporter, RunOutcome, RunSession
from ..run.signals import Interrupted, interrupt_signals, reraise_interrupt
from ..variants import VariantError
from .resources import SLOT, alias_of, name_of, offered, target_resource, version_of

INSTALL = "pip install 'onnx-harness[fleet]' (or pip install ray)"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(f"--cluster: Ray is not installed here; {INSTALL}") from None
    return ray


def connect(address: str) -> Any:
    """Join the cluster as a driver; one clear line when there is none at that address."""
    ray = import_ray()
    reachable(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, namespace="onnx-harness", log_to_driver=False, logging_level="ERROR",
                     configure_logging=False)
        except Exception as exc:
            reraise_interrupt(exc)
            text = " ".join(str(exc).split())[:200]
            raise InputError(f"--cluster {address}: no Ray cluster reachable there ({text}); start one with "
                             "'harness node start --head' and pass its address") from None
    return ray


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """A HOST:PORT nobody listens on makes ray.init retry for many minutes: ask the port first."""
    import socket

    host, _, port = address.rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise InputError(f"--cluster {address}: nothing answers there ({exc.strerror or exc}); start a head with "
                         f"'harness node start --head --port {port}' or pass the head's HOST:PORT") from None


def alive_nodes(ray: Any) -> list[dict[str, Any]]:
    """Alive nodes: their harness name (label), Ray id and what they offer."""
    out = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        resources = node.get("Resources") or {}
        out.append({"node_id": node["NodeID"], "name": name_of(resources) or node["NodeID"][:8],
                    "resources": resources, "address": node.get("NodeManagerAddress")})
    return out


def resource_of(case: Case) -> str:
    return target_resource(alias_of(case.target))


def offering(nodes: list[dict[str, Any]], case: Case) -> bool:
    """Whether any of these nodes offers the case's target."""
    return any(resource_of(case) in n["resources"] for n in nodes)


def offers_text(nodes: list[dict[str, Any]]) -> str:
    return "; ".join(f"{n['name']}: {', '.join(offered(n['resources'])) or 'nothing'}"
                     for n in sorted(nodes, key=lambda n: n["name"])) or "no nodes"


def lost(ray: Any, exc: BaseException) -> bool:
    """Ray's ways of saying the process or node running a task went away."""
    kinds = tuple(getattr(ray.exceptions, name) for name in
                  ("NodeDiedError", "WorkerCrashedError", "ObjectLostError", "OwnerDiedError",
                   "LocalRayletDiedError", "ActorDiedError", "RaySystemError")
                  if hasattr(ray.exceptions, name))
    return isinstance(exc, kinds)


class Shipper:
    """Files into Ray's object store once each, named by content hash."""

    def __init__(self, ray: Any) -> None:
        self.ray, self.refs = ray, {}  # type: ignore[var-annotated]

    def __call__(self, path: str | Path) -> tuple[str, str, Any]:
        path = Path(path)
        if path not in self.refs:
            data = path.read_bytes()
            self.refs[path] = (hashlib.sha256(data).hexdigest(), path.suffix, self.ray.put(data))
        return self.refs[path]


def run_fleet(plan: Plan, out_dir: Path, address: str, reporter: Reporter, label: str | None = None) -> RunOutcome:
    ray = connect(address)
    from .task import measure_case

    nodes = alive_nodes(ray)
    session = RunSession(plan, out_dir, f"harness run --cluster {address}", reporter.message, label=label,
                         settings={"fleet": {"address": address, "nodes": [{"name": n["name"], "node_id": n["node_id"],
                                                                           "offers": offered(n["resources"])}
                                                                          for n in nodes],
                                             "retry_lost": plan.loaded.suite.fleet.retry_lost}})
    reporter.start(plan, session.path)
    reporter.message(f"cluster {address}: {len(nodes)} node(s); {offers_text(nodes)}")
    for node in nodes:
        theirs = version_of(node["resources"])
        if theirs != __version__:
            reporter.message(f"warning: node {node['name']} runs harness {theirs or 'unknown'}, this driver "
                             f"{__version__}: install the same version on every node, or its cases may fail")
    remote = ray.remote(measure_case)
    shipped = Shipper(ray)
    plan_ref = ray.put(plan)
    pending: dict[Any, tuple[Case, int]] = {}
    errors: dict[Any, str] = {}  # reference outputs the driver could not compute, by task
    done = 0

    def keep(case: Case, record: CaseRecord) -> None:
        nonlocal done
        session.keep(record)
        reporter.case_start(done, case)
        reporter.case_end(done, case, record)
        done += 1

    def cannot(case: Case, status: str, reason: str) -> None:
        now = utc_now()
        keep(case, replace(base_record(case), status=status, reason=reason, started_at=now, finished_at=now))

    def submit(case: Case, attempt: int) -> None:
        nodes_now = alive_nodes(ray)
        if not offering(nodes_now, case):
            cannot(case, "unavailable", f"no node of the cluster offers target {alias_of(case.target)} "
                                        f"(nodes offer: {offers_text(nodes_now)})")
            return
        try:
            model = shipped(session.variants.path(case))
        except VariantError as exc:
            cannot(case, "failed", f"variant {case.variant.name} could not be built: {exc}")
            return
        reference: dict[str, tuple[str, str, Any]] | None = None
        workdir = session.scratch / f"ref-{len(pending)}-{done}"
        try:
            found = session.variants.reference(case, workdir)
            reference = {key: shipped(path) for key, path in found.items()} if found else None
        except Exception as exc:  # speed is still worth having; the record says why accuracy is missing
            reraise_interrupt(exc)
            reference = {"error": str(exc)[:300]}  # type: ignore[dict-item]
        task = remote.options(num_cpus=0, resources={SLOT: 1, resource_of(case): 1}, max_retries=0,
                              name=f"harness:{case.case_id}")
        error = reference.pop("error", None) if reference else None
        ref = task.remote(case, plan_ref, model, reference)
        pending[ref] = (case, attempt)
        if error:
            errors[ref] = str(error)

    status, signum = "aborted", None
    received = None
    try:
        with interrupt_signals() as received:
            for case in plan.cases:
                submit(case, 0)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=2.0)
                for ref in ready:
                    case, attempt = pending.pop(ref)
                    try:
                        record = CaseRecord.from_json(ray.get(ref), f"node result for {case.case_id}")
                    except Exception as exc:
                        reraise_interrupt(exc)
                        if (lost(ray, exc) and plan.loaded.suite.fleet.retry_lost and attempt == 0
                                and offering(alive_nodes(ray), case)):
                            reporter.message(f"{case.case_id}: its node was lost mid-case; running it once more "
                                             "on another node that offers its target")
                            submit(case, 1)
                            continue
                        why = " ".join(str(exc).split())[:300]
                        reason = (f"node lost: the node measuring it left the cluster mid-case ({type(exc).__name__})"
                                  if lost(ray, exc) else f"the node could not run the case: {why}")
                        cannot(case, "failed", reason)
                        continue
                    if attempt:
                        record.notes = [*record.notes, "ran a second time: its first node was lost mid-case"]
                    if ref in errors:
                        record.accuracy = Accuracy(error=f"reference outputs could not be computed: {errors[ref]}",
                                                   verdict="error")
                    keep(case, record)
                if not ready:
                    starved(ray, pending, cannot)
        status = "complete"
    except KeyboardInterrupt as exc:
        status = "interrupted"
        signum = received.of(exc) if received is not None else (exc.signum if isinstance(exc, Interrupted)
                                                                 else signal.SIGINT)
        for ref in pending:
            ray.cancel(ref, force=True)
    finally:
        session.close(status)  # also removes the session's scratch (reference outputs)
    reporter.finish(session.run)
    return RunOutcome(session.run, session.path, signum)


def starved(ray: Any, pending: dict[Any, tuple[Case, int]], cannot: Any) -> None:
    """Cases whose target no alive node offers any more (its nodes left): never queued forever."""
    nodes = alive_nodes(ray)
    for ref, (case, _) in list(pending.items()):
        if not offering(nodes, case):
            ray.cancel(ref, force=True)
            del pending[ref]
            cannot(case, "failed", f"node lost: no node offering {alias_of(case.target)} is left in the cluster "
                                   f"(nodes offer: {offers_text(nodes)})")
