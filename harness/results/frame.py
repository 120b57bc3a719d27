"""Results as a pandas DataFrame: one row per case, flat metric columns (``results.load``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .record import Run

FLAT_PARTS = ("latency_ms", "throughput", "memory_mb", "timings_ms")


def to_frame(runs: list[Run]) -> pd.DataFrame:
    rows = []
    for run in runs:
        env = run.environment
        for case in run.cases:
            row: dict[str, Any] = {
                "run_id": run.run_id, "suite": run.suite.name,
                "machine": env.hostname, "fingerprint": env.fingerprint, "cpu_model": env.cpu_model,
                "case_id": case.case_id, "model": case.model, "variant": case.variant,
                "target": case.target, "status": case.status, "reason": case.reason,
                "provider": case.runtime.provider, "onnxruntime_version": case.runtime.onnxruntime_version,
            }
            row.update(case.params)
            for group in FLAT_PARTS:
                part = getattr(case, group)
                if part is not None:
                    for key, value in part.to_json().items():
                        if isinstance(value, (int, float)) or value is None:
                            row[f"{group}.{key}"] = value
            if case.accuracy is not None:
                for key, value in case.accuracy.to_json().items():
                    if isinstance(value, (int, float, str)):
                        row[f"accuracy.{key}"] = value
            m = case.measurement
            row["unstable"] = bool(m and m.unstable)
            row["stop_reason"] = m.stop_reason if m else None
            row["placement.fraction_on_requested"] = case.placement.fraction_on_requested if case.placement else None
            row["precision.requested"] = case.precision.requested if case.precision else None
            row["precision.effective"] = case.precision.effective if case.precision else None
            row["scenario"] = case.scenario
            if case.serving is not None:
                for key in ("validity", "target_qps", "peak_qps", "completed_qps", "latency_at_bound_ms",
                            "latency_bound_ms", "percentile"):
                    row[f"serving.{key}"] = getattr(case.serving, key)
            row["notes"] = "; ".join(case.notes)
            row["samples_ms"] = case.samples_ms or None
            rows.append(row)
    return pd.DataFrame(rows)
