"""Untimed passes: outputs against the reference, and node placement from the profiler.

Part of the worker: standard library, numpy and onnxruntime only.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .session import create_session


def accuracy(session: Any, case: dict[str, Any]) -> dict[str, Any] | None:
    """Outputs of this case against reference outputs computed on the CPU provider for the same inputs."""
    ref = case.get("reference")
    if not ref:
        return None
    with np.load(ref["inputs"]) as archive:
        feeds_by_sample: dict[int, dict[str, np.ndarray]] = {}
        for key in archive.files:
            sample, name = key.split("/", 1)
            feeds_by_sample.setdefault(int(sample), {})[name] = archive[key]
    names = [o.name for o in session.get_outputs()]
    got = {sample: dict(zip(names, session.run(None, feeds))) for sample, feeds in sorted(feeds_by_sample.items())}
    result = compare_with(got, ref["outputs"])
    if ref.get("cpu_outputs"):
        result["vs_cpu_same_variant"] = compare_with(got, ref["cpu_outputs"])
    return result


def compare_with(got: dict[int, dict[str, np.ndarray]], path: str) -> dict[str, Any]:
    mine: dict[str, list[np.ndarray]] = {}
    want: dict[str, list[np.ndarray]] = {}
    with np.load(path) as outputs:
        for sample, values in got.items():
            for name, value in values.items():
                if f"{sample}/{name}" in outputs.files:
                    mine.setdefault(name, []).append(np.asarray(value))
                    want.setdefault(name, []).append(outputs[f"{sample}/{name}"])
    return compare_outputs(mine, want)


def compare_outputs(got: dict[str, list[np.ndarray]], want: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    per_output = {}
    for name in want:
        a = np.concatenate([np.asarray(x, np.float64).reshape(len(x) if np.ndim(x) else 1, -1) for x in got[name]])
        b = np.concatenate([np.asarray(x, np.float64).reshape(len(x) if np.ndim(x) else 1, -1) for x in want[name]])
        diff = np.abs(a - b)
        norm_b = float(np.linalg.norm(b))
        denom = float(np.linalg.norm(a) * norm_b)
        metrics = {
            "max_abs": float(diff.max()) if diff.size else 0.0,
            "mean_abs": float(diff.mean()) if diff.size else 0.0,
            "rel_l2": float(np.linalg.norm(a - b) / norm_b) if norm_b else float(np.linalg.norm(a - b)),
            "cosine": float(np.sum(a * b) / denom) if denom else (1.0 if not np.any(a - b) else 0.0),
            "rows": int(a.shape[0]),
        }
        if looks_like_class_scores(want[name]):
            top_a, top_b = np.argsort(-a, axis=1), np.argsort(-b, axis=1)
            metrics["top1"] = float(np.mean(top_a[:, 0] == top_b[:, 0]))
            k = min(5, a.shape[1])
            metrics["top5"] = float(np.mean([top_b[i, 0] in top_a[i, :k] for i in range(a.shape[0])]))
        per_output[name] = metrics
    worst = {
        "max_abs": max(m["max_abs"] for m in per_output.values()),
        "mean_abs": max(m["mean_abs"] for m in per_output.values()),
        "rel_l2": max(m["rel_l2"] for m in per_output.values()),
        "cosine": min(m["cosine"] for m in per_output.values()),
    }
    tops = [m for m in per_output.values() if "top1" in m]
    if tops:
        worst["top1"] = min(m["top1"] for m in tops)
        worst["top5"] = min(m["top5"] for m in tops)
    return {**worst, "outputs": per_output}


def looks_like_class_scores(arrays: list[np.ndarray]) -> bool:
    """A float [batch, classes] output with many classes: top-k agreement means something."""
    first = arrays[0]
    inner = [d for d in first.shape[1:] if d != 1]  # [batch, 1000, 1, 1] from a conv head counts too
    return first.ndim >= 2 and len(inner) == 1 and inner[0] >= 10 and np.issubdtype(first.dtype, np.floating)


PROFILE_RUNS = 5  # profiled runs after the first (cold) one, averaged per node
TOP_NODES = 10


def placement(ort: Any, model: str, case: dict[str, Any], feeds: dict[str, np.ndarray], workdir: str) -> dict[str, Any]:
    """Which provider ran each node, and how long each node's kernel took, from onnxruntime's
    profiler in a separate untimed session (the timed loop never runs with the profiler on).

    The first run is cold and left out; node times are the mean over the next PROFILE_RUNS runs.
    Returns the placement fields plus ``profile`` (per op type, the top nodes, the nodes that ran
    off the requested provider) and ``profile_nodes`` (every node: the side table)."""
    session = create_session(ort, model, case, profile_prefix=os.path.join(workdir, "profile"))
    for _ in range(1 + PROFILE_RUNS):
        session.run(None, feeds)
    profile = session.end_profiling()
    try:
        with open(profile) as f:
            events = json.load(f)
    finally:
        os.unlink(profile)
    events = sorted((e for e in events if isinstance(e, dict)), key=lambda e: e.get("ts", 0))
    nodes: dict[str, dict[str, Any]] = {}
    runs_ms: list[float] = []
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") == "Session" and event.get("name") == "model_run":
            runs_ms.append(float(event.get("dur", 0)) / 1e3)
        if event.get("cat") != "Node" or "provider" not in args:
            continue
        name = event["name"].removesuffix("_kernel_time").removesuffix("_fence_before").removesuffix("_fence_after")
        node = nodes.setdefault(name, {"name": name, "op_type": args.get("op_name", "?"),
                                       "provider": args["provider"], "times": []})
        if event["name"].endswith("_kernel_time"):
            node["times"].append(float(event.get("dur", 0)) / 1e3)
    out = assigned_placement(session, case["provider"]) or kernel_placement(list(nodes.values()), case["provider"])
    out.update(op_profile(list(nodes.values()), runs_ms[1:], case["provider"]))
    return out


FELL_BACK_LISTED = 50  # nodes named in the record; the count is always whole


def assigned_placement(session: Any, requested: str) -> dict[str, Any] | None:
    """Placement in nodes of the graph as onnxruntime partitioned it: every EP sees the same graph
    (the model after onnxruntime's basic rewrites such as constant folding), so 68/68 on OpenVINO
    means what 68/68 means on the CPU provider, although OpenVINO runs them as one fused subgraph.
    None where this onnxruntime cannot say (before 1.23)."""
    try:
        subgraphs = session.get_provider_graph_assignment_info()
    except Exception:
        return None
    if not subgraphs:
        return None
    counts: dict[str, int] = {}
    fell_back: list[dict[str, str]] = []
    for subgraph in subgraphs:
        for node in subgraph.get_nodes():
            counts[subgraph.ep_name] = counts.get(subgraph.ep_name, 0) + 1
            if subgraph.ep_name != requested:
                fell_back.append({"name": node.name, "op_type": node.op_type, "provider": subgraph.ep_name})
    return placement_fields(counts, requested, "graph nodes", fell_back)


def kernel_placement(nodes: list[dict[str, Any]], requested: str) -> dict[str, Any]:
    """Placement in the profiler's kernels (older onnxruntime): a fused subgraph counts as one."""
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["provider"]] = counts.get(node["provider"], 0) + 1
    fell_back = [{"name": n["name"], "op_type": n["op_type"], "provider": n["provider"]}
                 for n in nodes if n["provider"] != requested]
    return placement_fields(counts, requested, "profiled kernels", fell_back)


def placement_fields(counts: dict[str, int], requested: str, unit: str,
                     fell_back: list[dict[str, str]]) -> dict[str, Any]:
    total = sum(counts.values())
    on_requested = counts.get(requested, 0)
    return {"unit": unit, "nodes": counts, "total": total, "on_requested": on_requested,
            "fraction_on_requested": on_requested / total if total else None,
            "partial_fallback": bool(total) and on_requested < total,
            "fell_back": fell_back[:FELL_BACK_LISTED]}


def op_profile(nodes: list[dict[str, Any]], runs_ms: list[float], requested: str) -> dict[str, Any]:
    """Mean kernel time per node (the cold first run dropped) and the views made of it."""
    table = []
    for node in nodes:
        times = node["times"][1:] if len(node["times"]) > 1 else node["times"]
        table.append({"name": node["name"], "op_type": node["op_type"], "provider": node["provider"],
                      "ms": sum(times) / len(times) if times else 0.0})
    table.sort(key=lambda n: -n["ms"])
    kernel = sum(n["ms"] for n in table)
    for node in table:
        node["share"] = node["ms"] / kernel if kernel else 0.0
    by_op: dict[str, dict[str, Any]] = {}
    for node in table:
        entry = by_op.setdefault(node["op_type"], {"ms": 0.0, "nodes": 0})
        entry["ms"] += node["ms"]
        entry["nodes"] += 1
    for entry in by_op.values():
        entry["share"] = entry["ms"] / kernel if kernel else 0.0
    profile = {"runs": len(runs_ms), "kernel_ms": kernel,
               "model_run_ms": sum(runs_ms) / len(runs_ms) if runs_ms else None,
               "by_op_type": dict(sorted(by_op.items(), key=lambda item: -item[1]["ms"])),
               "top_nodes": table[:TOP_NODES],
               "fallback_nodes": [n for n in table if n["provider"] != requested]}
    return {"profile": profile, "profile_nodes": table}
