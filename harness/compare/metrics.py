"""What compare judges: each metric, its direction, where its evidence comes from, default minimum effects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    higher_is_better: bool
    kind: Literal["samples", "per_run", "exact"]  # where its evidence comes from
    quantile: float | None = None  # latency percentile, for kind "samples"
    relative: bool = True  # min effect is a fraction of the baseline (else an absolute difference)


METRICS: tuple[Metric, ...] = (
    Metric("latency_p50", "latency p50", "ms", False, "samples", 50.0),
    Metric("latency_p90", "latency p90", "ms", False, "samples", 90.0),
    Metric("latency_p99", "latency p99", "ms", False, "samples", 99.0),
    Metric("throughput", "throughput", "samples/s", True, "samples"),
    Metric("peak_memory", "peak memory", "MB", False, "per_run"),
    # Serving scenarios (MLPerf LoadGen): the peak QPS of a search or the offline QPS, the latency at
    # the bound's percentile of a server at a fixed rate, and LoadGen's verdict (1 VALID, 0 INVALID).
    Metric("serving_qps", "serving QPS", "QPS", True, "per_run"),
    Metric("server_latency", "server latency at the bound's percentile", "ms", False, "per_run"),
    Metric("loadgen_valid", "LoadGen verdict (1 VALID)", "", True, "exact", relative=False),
    Metric("accuracy_cosine", "accuracy cosine", "", True, "exact", relative=False),
    Metric("accuracy_top1", "accuracy top-1", "", True, "exact", relative=False),
)


METRIC_BY_NAME = {m.name: m for m in METRICS}


# Relative for speed and memory; absolute for accuracy (a 5 % drop of a cosine of 0.9999 would
# be a broken model long before it counted).
DEFAULT_MIN_EFFECT: dict[str, float] = {"latency_p50": 0.05, "latency_p90": 0.05, "latency_p99": 0.05,
                                        "throughput": 0.05, "peak_memory": 0.05, "serving_qps": 0.05,
                                        "server_latency": 0.05, "loadgen_valid": 0.5,
                                        "accuracy_cosine": 0.001, "accuracy_top1": 0.01}


# Run-to-run noise of the whole grid (see noise_floor): at least this many cases to estimate it,
# and a change must exceed NOISE_K of its robust sigma as well as the minimum effect.
NOISE_MIN_CASES = 8


NOISE_K = 5.0  # heavy tails: whole processes land slow more often than a normal law says


TARGET_BLOCKS = 24  # blocks on the smaller side; enough for MWU, long enough to absorb bursts


FAST_END = 5.0  # percentile of the raw samples that stands for the model's own cost
