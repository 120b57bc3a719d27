"""Input tensors from a plan: seeded random data, declared ranges, fixed values or real data.

Imported by the worker too, so only the standard library and numpy here. A plan is a list
of JSON dicts (one per graph input) made by ``harness.models.plan_inputs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def make_feeds(plan: list[dict[str, Any]], seed: int, sample: int = 0) -> dict[str, np.ndarray]:
    """Tensors for one sample; same (plan, seed, sample) gives the same bytes."""
    rng = np.random.default_rng([seed, sample])
    return {spec["name"]: _make(spec, rng, sample) for spec in plan}


def _make(spec: dict[str, Any], rng: np.random.Generator, sample: int) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    shape = tuple(spec["shape"])
    fill = spec["fill"]
    if fill == "value":
        return np.full(shape, spec["value"], dtype=dtype)
    if fill == "data":
        with np.load(spec["data"]) as archive:
            rows = archive[spec["key"]]
        batch = shape[0] if shape else 1
        start = (sample * batch) % max(len(rows), 1)
        index = (np.arange(batch) + start) % len(rows)
        return np.ascontiguousarray(rows[index].astype(dtype, copy=False))
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    low, high = spec.get("low", 0), spec.get("high", 1)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(int(low), int(high), size=shape, dtype=np.int64).astype(dtype)
    if fill == "range":
        return rng.uniform(low, high, size=shape).astype(dtype)
    return rng.standard_normal(size=shape, dtype=np.float32).astype(dtype)
