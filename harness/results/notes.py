"""The notes that must travel with a case's numbers, computed once when the case ends and
stored in the record (``notes``), so the terminal, Markdown and HTML reports say the same."""

from __future__ import annotations

from .record import CaseRecord


def fell_back_text(nodes: list[dict[str, str]], count: int) -> str:
    """"; off it: 12 DequantizeLinear, 3 Gather on CPUExecutionProvider" from the listed nodes."""
    if not nodes:
        return ""
    by_place: dict[str, dict[str, int]] = {}
    for node in nodes:
        ops = by_place.setdefault(node.get("provider", "?"), {})
        ops[node.get("op_type", "?")] = ops.get(node.get("op_type", "?"), 0) + 1
    parts = []
    for provider, ops in by_place.items():
        listed = ", ".join(f"{n} {op}" for op, n in sorted(ops.items(), key=lambda item: -item[1]))
        parts.append(f"{listed} on {provider}")
    more = f" (first {len(nodes)} of {count} listed)" if count > len(nodes) else ""
    return "; off it: " + "; ".join(parts) + more


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
        out.append(f"partial fallback: {p.on_requested}/{p.total} {p.unit or 'nodes'} on {case.runtime.provider}"
                   + fell_back_text(p.fell_back, p.total - p.on_requested if p.total and p.on_requested is not None else 0))
    q = case.precision
    if q is not None and q.requested and q.effective and q.requested not in q.effective.split(","):
        offered = "; ".join(f"{d} offers {c}" for d, c in q.device_capabilities.items())
        out.append(f"precision: asked {q.requested}, ran {q.effective}" + (f" ({offered})" if offered else ""))
    a = case.accuracy
    if a is not None and a.verdict == "fail":
        out.append("accuracy FAIL: " + "; ".join(a.problems))
    if a is not None:
        out.extend(a.unchecked)
    return out
