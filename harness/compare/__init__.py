"""Regression detection: baseline vs candidate results, one verdict per case and metric.

``metrics`` (what is judged), ``config`` (settings), ``evidence`` (block statistics, the test, the
fast end), ``rules`` (the decision, with the reasoning behind it), ``pair`` and ``history`` (the
two modes), ``outputs`` (terminal, Markdown, JUnit, JSON). The names below are the public API.
"""

from __future__ import annotations

from .config import CaseRule, CompareConfig, HistoryConfig, MinEffects, Settings, load_config, make_settings
from .evidence import (
                       Finding,
                       Side,
                       block_values,
                       collect,
                       mann_whitney,
                       min_attainable_p,
                       quantile,
                       relative_change,
                       run_value,
                       segments,
                       worse_by,
)
from .history import compare_history, select_history
from .metrics import DEFAULT_MIN_EFFECT, FAST_END, METRIC_BY_NAME, METRICS, NOISE_K, TARGET_BLOCKS, Metric
from .pair import Comparison, check_comparable, compare_documents, exit_code, fingerprints, run_summaries
from .rules import adjust, busy_guard, decide, grid_sigma, noise_floor, speed_guard, within_noise

__all__ = ["CaseRule", "CompareConfig", "Comparison", "DEFAULT_MIN_EFFECT", "FAST_END", "Finding", "HistoryConfig",
           "METRICS", "METRIC_BY_NAME", "Metric", "MinEffects", "NOISE_K", "Settings", "Side", "TARGET_BLOCKS",
           "adjust", "block_values", "busy_guard", "check_comparable", "collect", "compare_documents", "compare_history", "decide", "exit_code",
           "fingerprints", "grid_sigma", "load_config", "make_settings", "mann_whitney", "min_attainable_p",
           "noise_floor", "quantile", "relative_change", "run_summaries", "run_value", "segments", "select_history",
           "speed_guard", "within_noise", "worse_by"]
