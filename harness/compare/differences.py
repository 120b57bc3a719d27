"""What differs between the baseline's and the candidate's runs besides the code under test.

A verdict means "the candidate is slower" only if nothing else changed: the measurement
settings, session options, provider options, the onnxruntime build, the harness, the model
file, the ORT_/OMP_ variables. compare lists every such difference beside its verdicts, so a
reader sees "repeats 5 vs 1" before believing a regression.
"""

from __future__ import annotations

from typing import Any

from ..results import Run

IGNORED_SETTINGS = {"order_seed", "runner"}  # differ on every run by design
ENVIRONMENT_KEYS = ("harness_version", "python", "cpu_governor", "environment_variables")
MAX_LISTED = 12


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _values(runs: list[Run], pick: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for run in runs:
        for key, value in pick(run).items():
            found.setdefault(key, set()).add(repr(value) if not isinstance(value, str) else value)
    return found


def _run_facts(run: Run) -> dict[str, Any]:
    facts = {f"settings.{k}": v for k, v in flatten({k: v for k, v in run.settings.items()
                                                      if k not in IGNORED_SETTINGS}).items()}
    for key in ENVIRONMENT_KEYS:
        facts.update(flatten(run.environment.get(key), f"environment.{key}") if run.environment.get(key) else {})
    return facts


def _case_facts(run: Run, common: set[str]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for case in run.cases:
        if case.case_id not in common:
            continue
        where = case.case_id
        facts[f"{where}: onnxruntime"] = case.runtime.onnxruntime_version
        facts.update(flatten(case.runtime.provider_options, f"{where}: provider option"))
        facts.update(flatten(case.runtime.session_options, f"{where}: session option"))
        if case.model_file is not None:
            facts[f"{where}: model file bytes"] = case.model_file.size_bytes
    return facts


def differences(baseline: list[Run], candidate: list[Run]) -> list[str]:
    """'settings.measure.repeats: 5 vs 1', ...: each fact whose values differ between the sides."""
    common = {c.case_id for r in baseline for c in r.cases} & {c.case_id for r in candidate for c in r.cases}
    out = []
    for pick in (_run_facts, lambda run: _case_facts(run, common)):
        base, cand = _values(baseline, pick), _values(candidate, pick)
        for key in sorted(set(base) | set(cand)):
            b, c = base.get(key, {"(unset)"}), cand.get(key, {"(unset)"})
            if b != c:
                out.append(f"{key}: {' / '.join(sorted(b))} vs {' / '.join(sorted(c))}")
    if len(out) > MAX_LISTED:
        out = out[:MAX_LISTED] + [f"... and {len(out) - MAX_LISTED} more (see --json)"]
    return out
