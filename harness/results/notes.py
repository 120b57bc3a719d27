"""The notes that must travel with a case's numbers, computed once when the case ends and
stored in the record (``notes``), so the terminal, Markdown and HTML reports say the same."""

from __future__ import annotations

from .record import CaseRecord


def case_notes(case: CaseRecord) -> list[str]:
    """Instability, warnings, unmet stopping rules, partial fallback and accuracy failures."""
    if not case.ok:
        return []
    out: list[str] = []
    m = case.measurement
    if m is not None:
        out.extend(f"unstable: {reason}" for reason in m.unstable)
        out.extend(m.warnings)
        if not m.minimums_met:
            out.append("stopped at max_s before minimums")
        if m.precision and not m.precision_met:
            out.append(f"precision +-{m.precision:.0%} not reached")
    p = case.placement
    if p is not None and p.partial_fallback:
        out.append(f"partial fallback: {p.on_requested}/{p.total} nodes on {case.runtime.provider}")
    a = case.accuracy
    if a is not None and a.verdict == "fail":
        out.append("accuracy FAIL: " + "; ".join(a.problems))
    if a is not None:
        out.extend(a.unchecked)
    return out
