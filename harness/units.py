"""The one formatter for units: terminal, Markdown, HTML and compare all print numbers through it,
so a latency or a change reads the same everywhere (pyperf's ``_formatter`` is the model)."""

from __future__ import annotations

import math
from typing import Any


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value >= 1000:
        return f"{value / 1e3:.2f} s"
    return f"{value * 1e3:.1f} us" if value < 1 else f"{value:.2f} ms"


def times(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def times_range(low: float | None, high: float | None) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f"{low:.2f}–{high:.2f}×"


def compact(value: float | None) -> str:
    """141.1k, 2.35M: rates span six orders of magnitude across targets and batch sizes."""
    if value is None or math.isnan(value):
        return "-"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f}{suffix}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value * 100:.1f}%"


def loss(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "0" if value == 0 else f"{value:.1e}"


def usd(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value >= 100:
        return f"${value:,.0f}"
    return f"${value:.2f}" if value >= 1 else f"${value:.3g}"


def mb(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.0f}"


def integer(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{int(value):,}"


def rate(value: float | None) -> str:
    """Samples or inferences per second in a terminal table: whole numbers from 100 up."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def signed_pct(value: float | None) -> str:
    """A relative change: '+4.1%', '+inf' from a zero baseline, '-' when unknown."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.1f}%"
