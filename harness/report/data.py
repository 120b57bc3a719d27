"""The report's view of results: one row per case from ``harness.results.to_frame``, completed.

``to_frame`` keeps the flat metrics; the report also needs what it flattens away or leaves out:
which machine a case ran on (results from several machines merge into one report, so the
machine becomes part of the target label), the unstable reasons and placement details that
must travel with a number, repeat medians (for the uncertainty interval), and prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from .. import stats
from ..results import CaseRecord, Environment, Run, to_frame

# Columns the tables read; a run without, say, p999 or accuracy still yields them (as NaN).
NUMERIC = [f"latency_ms.{k}" for k in ("n", "mean", "std", "cv", "cv_robust", "min", "p50", "p90", "p95", "p99",
                                       "p999", "max", "median_ci_low", "median_ci_high", "median_ci_rel")] + [
    "throughput.samples_per_s", "throughput.inferences_per_s", "memory_mb.peak_rss", "memory_mb.rss_start",
    "memory_mb.rss_after_session", "timings_ms.session_create", "timings_ms.first_inference",
    "timings_ms.session_create_median", "timings_ms.first_inference_median", "accuracy.cosine", "accuracy.top1",
    "accuracy.max_abs", "serving.target_qps", "serving.peak_qps", "serving.completed_qps",
    "serving.latency_at_bound_ms", "serving.latency_bound_ms", "serving.percentile"]
PARAM_ORDER = ("batch", "streams")  # shown first, in this order; other params follow by name
ADDED = ["machine", "machine_key", "machine_rank", "target_label", "config", "batch", "streams", "package",
         "unstable_reasons", "partial_fallback", "nodes", "precision", "accuracy_verdict", "loss", "interval_low", "interval_high",
         "price_per_hour", "notes", "serving_config", "serving_points", "serving_reasons", "runs", "profile_by_op"]
SCENARIO_PARAMS = ("scenario", "qps")  # what a serving case's rate and load are; the rest is its config


def precision_label(case: CaseRecord) -> str:
    """"bf16 asked, f32 ran", "f32" or "" (the provider's default, not reported)."""
    q = case.precision
    if q is None or (q.requested is None and q.effective is None):
        return ""
    if q.requested and q.effective and q.requested not in q.effective.split(","):
        return f"{q.requested} asked, {q.effective} ran"
    if q.requested and not q.effective:
        return f"{q.requested} asked (not reported)"
    return q.effective or ""


@dataclass(frozen=True)
class Machine:
    key: str
    label: str
    environment: Environment
    runs: list[str] = field(default_factory=list)


def machine_key(environment: Environment) -> str:
    """Fingerprint first: two runs on one host with another CPU or OS are different machines."""
    return str(environment.fingerprint or environment.hostname or "unknown")


def machines(documents: list[Run]) -> list[Machine]:
    """Machines in order of first appearance; a hostname seen with two fingerprints gets a suffix."""
    found: dict[str, Machine] = {}
    for document in documents:
        env = document.environment
        key = machine_key(env)
        if key not in found:
            found[key] = Machine(key, str(env.hostname or key), env)
        found[key].runs.append(str(document.run_id))
    hostnames = pd.Series([m.label for m in found.values()])
    duplicated = set(hostnames[hostnames.duplicated(keep=False)])
    return [Machine(m.key, f"{m.label} ({m.key[:6]})" if m.label in duplicated else m.label, m.environment, m.runs)
            for m in found.values()]


def config_label(params: dict[str, Any]) -> str:
    """'batch 4 · streams 2': every param but target/variant, so only like is compared with like."""
    keys = [k for k in PARAM_ORDER if k in params] + sorted(k for k in params if k not in PARAM_ORDER)
    text = " · ".join(f"{k} {params[k]}" for k in keys if not (k == "streams" and params[k] == 1))
    return text or "default"


def _config_sort(params: dict[str, Any]) -> tuple:
    return (int(params.get("batch", 1) or 1), int(params.get("streams", 1) or 1),
            tuple(sorted((k, str(v)) for k, v in params.items() if k not in PARAM_ORDER)))


def _interval(case: CaseRecord) -> tuple[float, float]:
    """Where a rerun's p50 is expected (stats.between_process_interval, as the record holds it; for
    records that lack it, the range of the worker processes' medians). A CI over one process's
    samples describes that process only (this VM's processes land in speed modes 40% apart), so
    with fewer than 3 processes there is no interval (NaN), and no pick is called clear."""
    m = case.measurement
    if m is None:
        return math.nan, math.nan
    if m.p50_interval_ms:
        return m.p50_interval_ms[0], m.p50_interval_ms[1]
    found = stats.between_process_interval(m.repeat_medians_ms) if m.repeat_medians_ms else None
    return (found[0], found[1]) if found else (math.nan, math.nan)


LOSS_EXACT = 1e-12  # 1 - cosine below this is float64 rounding in the cosine itself, i.e. an exact match


def _loss(case: CaseRecord) -> float:
    """1 - cosine against the fp32 reference; the reference itself (no accuracy block) loses nothing."""
    accuracy = case.accuracy
    if accuracy is not None and accuracy.cosine is not None:
        loss = 1.0 - accuracy.cosine
        return 0.0 if loss < LOSS_EXACT else loss
    if case.ok and accuracy is None and (case.variant_kind or case.variant) == "fp32":
        return 0.0
    return math.nan


def serving_points(case: CaseRecord) -> list[dict[str, Any]] | None:
    """Every server run behind a serving case (offered QPS, latency at the bound's percentile,
    validity): the points of the latency-vs-load chart."""
    serving = case.serving
    if serving is None or serving.scenario != "server" or not case.ok:
        return None
    key = f"p{serving.percentile:g}" if serving.percentile else "p99"
    return [{"qps": p.target_qps, "latency_ms": p.latency_ms.get(key), "valid": p.validity == "VALID",
             "reasons": "; ".join(p.reasons), "peak": serving.peak_qps is not None and p.target_qps == serving.peak_qps}
            for p in serving.points if p.target_qps is not None]


def short_reasons(case: CaseRecord) -> str:
    """LoadGen's reasons for a table cell: the unmet constraints and its advice, without the early
    stopping arithmetic (that stays in the results file and the LoadGen logs)."""
    s = case.serving
    if s is None:
        return ""
    reasons = s.reasons or ([s.peak_reason] if s.peak_reason else [])
    return "; ".join(r.rstrip(". ") for r in reasons if not r.startswith("Run unsuccessful"))


def configuration_key(document: Run, case: CaseRecord) -> tuple:
    """Runs of the same case on the same machine with the same build and model file are one
    configuration: a report shows it once, never as its own runner-up."""
    model = case.model_file
    return (machine_key(document.environment), case.case_id, case.runtime.onnxruntime_version,
            model.size_bytes if model else None)


def newest_per_configuration(documents: list[Run]) -> tuple[list[Run], dict[tuple, int]]:
    """Each configuration's cases from the newest run that has it, and how many runs had it.

    A run given twice (the same file, or a copy: same run id, machine and start) counts once."""
    unique: list[Run] = []
    seen: set[tuple] = set()
    for document in documents:
        identity = (document.run_id, machine_key(document.environment), document.started_at)
        if identity not in seen:
            seen.add(identity)
            unique.append(document)
    newest_first = sorted(range(len(unique)), key=lambda i: str(unique[i].started_at or ""), reverse=True)
    counts: dict[tuple, int] = {}
    kept: dict[int, list[CaseRecord]] = {}
    for i in newest_first:
        keys = [configuration_key(unique[i], case) for case in unique[i].cases]
        kept[i] = [case for case, key in zip(unique[i].cases, keys) if key not in counts]  # not in a newer run
        for key in set(keys):
            counts[key] = counts.get(key, 0) + 1
    return [replace(d, cases=kept[i]) for i, d in enumerate(unique) if kept[i]], counts


def runs_note(documents: list[Run], frame: pd.DataFrame) -> str:
    """How many runs stand behind the figures, in one line for the report's header."""
    unique = len({d.run_id for d in documents})
    several = int((frame["runs"] > 1).sum()) if "runs" in frame and len(frame) else 0
    if not several:
        return f"{unique} run{'s' if unique != 1 else ''}"
    return (f"{unique} runs; {several} of {len(frame)} configurations were measured in more than one: each "
            "figure is from the newest run that has it (the 'runs' column says how many had it)")


def build_frame(documents: list[Run], prices: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per case with the columns every table uses.

    ``prices`` (USD per hour) are keyed by target name or by target label ("cpu @ host-b") and
    override a case's own ``price_per_hour``.
    """
    prices = prices or {}
    documents, runs = newest_per_configuration(documents)
    found = machines(documents)
    labels = {m.key: m.label for m in found}
    rank = {m.key: i for i, m in enumerate(found)}
    several = len(found) > 1
    base = to_frame(documents).reset_index(drop=True)
    extra: list[dict[str, Any]] = []
    configs: dict[str, tuple] = {}
    models: dict[str, int] = {}
    targets: dict[str, int] = {}
    variants: dict[str, int] = {}
    for document in documents:
        key = machine_key(document.environment)
        for case in document.cases:
            params = dict(case.params)
            config = config_label(params)
            configs.setdefault(config, _config_sort(params))
            models.setdefault(case.model, len(models))
            targets.setdefault(case.target, len(targets))
            variants.setdefault(case.variant, len(variants))
            label = f"{case.target} @ {labels[key]}" if several else case.target
            placement, measurement = case.placement, case.measurement
            low, high = _interval(case)
            price = prices.get(label, prices.get(case.target, case.price_per_hour))
            extra.append({
                "machine": labels[key], "machine_key": key, "machine_rank": rank[key], "target_label": label,
                "config": config, "batch": case.batch, "streams": case.streams,
                "package": case.runtime.package,
                "unstable_reasons": "; ".join(measurement.unstable) if measurement else "",
                "partial_fallback": bool(placement and placement.partial_fallback),
                "nodes": f"{placement.on_requested}/{placement.total}" if placement and placement.total else "",
                "precision": precision_label(case),
                "accuracy_verdict": case.accuracy.verdict if case.accuracy else None,
                "loss": _loss(case), "interval_low": low, "interval_high": high,
                "price_per_hour": float(price) if isinstance(price, (int, float)) else math.nan,
                "notes": "; ".join(case.notes) if case.ok else "",
                "serving_config": config_label({k: v for k, v in params.items() if k not in SCENARIO_PARAMS}),
                "serving_points": serving_points(case),
                "serving_reasons": short_reasons(case),
                "runs": runs[configuration_key(document, case)],
                "profile_by_op": ({op: float(v.get("share", 0.0)) for op, v in case.profile.by_op_type.items()}
                                  if case.profile is not None and case.ok else None),
            })
    if len(extra) != len(base):
        raise AssertionError("to_frame and the documents disagree on the number of cases")
    frame = base.drop(columns=[c for c in ("machine", "batch", "streams", "notes") if c in base.columns])
    frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index, columns=ADDED)], axis=1)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else math.nan
    for column in ("case_id", "model", "variant", "target", "status", "reason", "run_id", "suite", "cpu_model",
                   "onnxruntime_version"):
        if column not in frame:
            frame[column] = None
    if "samples_ms" not in frame:
        frame["samples_ms"] = None
    if "serving.validity" not in frame:
        frame["serving.validity"] = None
    if "scenario" not in frame:
        frame["scenario"] = "single-stream"
    frame["unstable"] = frame["unstable_reasons"].fillna("").astype(str).str.len() > 0
    order = sorted(configs, key=configs.__getitem__)
    frame["config_rank"] = frame["config"].map({c: i for i, c in enumerate(order)})
    # Suite order (first appearance), not alphabetical: users list fp32 before int8 and cpu first.
    frame["model_rank"] = frame["model"].astype(str).map(models)
    frame["target_rank"] = frame["target"].astype(str).map(targets)
    frame["variant_rank"] = frame["variant"].astype(str).map(variants)
    return frame.sort_values(["model_rank", "config_rank", "machine_rank", "target_rank", "variant_rank"],
                             kind="stable", ignore_index=True)
