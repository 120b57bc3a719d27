"""Matrix expansion: models x variants x targets x parameters into Cases with stable ids.

Everything that can be checked without running is checked here (model files, input
shapes, integer ranges, target names), so bad input stops the run before anything is
measured, with one line that names the field.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .models.sources import ModelError, ModelFile, plan_inputs, read_model, resolve_model_file
from .suite import LoadedSuite, ModelSpec, VariantSpec, suite_error
from .targets import Target, resolve_target


@dataclass(frozen=True)
class Case:
    case_id: str
    model: ModelSpec
    model_index: int
    variant: VariantSpec
    target: Target
    params: dict[str, Any]
    inputs: list[dict[str, Any]] = field(compare=False)  # the input plan for the base model


@dataclass(frozen=True)
class Plan:
    loaded: LoadedSuite
    cases: list[Case]
    model_files: dict[str, ModelFile]  # by model name
    warnings: list[str] = field(default_factory=list)  # legal but rarely meant (see plan_warnings)


def case_id(model: str, variant: str, target: str, params: dict[str, Any]) -> str:
    """Readable and stable: the same suite always yields the same ids (results merge on them)."""
    return "/".join([model, variant, target, ",".join(f"{k}={v}" for k, v in params.items())])


def expand(loaded: LoadedSuite) -> list[tuple[int, int, int, dict[str, Any]]]:
    """(model index, variant index, target index, params) for every case, after include/exclude."""
    suite = loaded.suite
    matrix = dict(suite.matrix)
    matrix.setdefault("batch", [1])
    matrix = {"batch": matrix.pop("batch"), **matrix}  # batch first in ids
    names = {"model": [m.name for m in suite.models], "variant": [v.name for v in suite.variants],
             "target": [t.name for t in suite.targets]}
    combos: list[tuple[int, int, int, dict[str, Any]]] = []
    seen: set[str] = set()

    def add(models: Iterable[int], variants: Iterable[int], targets: Iterable[int], grid: dict[str, list]) -> None:
        for m, v, t in itertools.product(models, variants, targets):
            for values in itertools.product(*grid.values()):
                params = dict(zip(grid, values))
                if params.get("scenario", "single-stream") != "server":
                    params.pop("qps", None)  # a rate only a server scenario is offered at
                key = case_id(names["model"][m], names["variant"][v], names["target"][t], params)
                if key not in seen:
                    seen.add(key)
                    combos.append((m, v, t, params))

    add(range(len(suite.models)), range(len(suite.variants)), range(len(suite.targets)), matrix)
    for position, rule in enumerate(suite.include):
        picks = {}
        for axis in ("model", "variant", "target"):
            if axis in rule:
                if str(rule[axis]) not in names[axis]:
                    raise suite_error(loaded, f"include[{position}].{axis}", f"no {axis} named {rule[axis]!r}")
                picks[axis] = [names[axis].index(str(rule[axis]))]
            else:
                picks[axis] = list(range(len(names[axis])))
        grid = {k: [rule[k]] if k in rule else values for k, values in matrix.items()}
        add(picks["model"], picks["variant"], picks["target"], grid)

    for position, rule in enumerate(suite.exclude):  # as strict as include: a typo must not pass
        for axis in ("model", "variant", "target"):
            if axis in rule and str(rule[axis]) not in names[axis]:
                raise suite_error(loaded, f"exclude[{position}].{axis}", f"no {axis} named {rule[axis]!r}; "
                                  f"declared: {', '.join(names[axis])}")
        for key in set(rule) - set(names):
            if str(rule[key]) not in {str(v) for v in matrix[key]}:
                raise suite_error(loaded, f"exclude[{position}].{key}", f"{rule[key]!r} is not a value of "
                                  f"matrix.{key} ({', '.join(map(str, matrix[key]))})")

    def matches(rule: dict[str, Any], m: int, v: int, t: int, params: dict[str, Any]) -> bool:
        here = {"model": names["model"][m], "variant": names["variant"][v], "target": names["target"][t],
                **{k: str(val) for k, val in params.items()}}
        return all(here.get(k) == str(val) for k, val in rule.items())

    for position, rule in enumerate(suite.exclude):
        if not any(matches(rule, *c) for c in combos):
            raise suite_error(loaded, f"exclude[{position}]", "matches no case; remove it or fix its values")
    return [c for c in combos if not any(matches(rule, *c) for rule in suite.exclude)]


def build_plan(loaded: LoadedSuite, targets: list[str] | None = None, models: list[str] | None = None,
               variants: list[str] | None = None) -> Plan:
    suite = loaded.suite
    for flag, wanted, declared in (("--target", targets, suite.targets), ("--model", models, suite.models),
                                   ("--variant", variants, suite.variants)):
        missing = sorted(set(wanted or []) - {d.name for d in declared})
        if missing:
            raise InputError(f"{loaded.path}: {flag} {missing[0]}: not in the suite (declared: "
                             f"{', '.join(d.name for d in declared)})")
    try:
        resolved = [resolve_target(spec, suite.session, i) for i, spec in enumerate(suite.targets)]
    except InputError as exc:
        raise InputError(f"{relative(loaded.path)}: {exc}") from None
    model_files: dict[str, ModelFile] = {}
    cases = []
    for m, v, t, params in expand(loaded):
        model, variant, target = suite.models[m], suite.variants[v], resolved[t]
        if (targets and target.name not in targets) or (models and model.name not in models) \
                or (variants and variant.name not in variants):
            continue
        if model.name not in model_files:
            path = resolve_model_file(loaded, model, m)
            try:
                model_files[model.name] = read_model(path)
            except ModelError as exc:
                source_field = "source" if model.source is not None else "path"
                raise suite_error(loaded, f"models[{m}].{source_field}", str(exc)) from None
        inputs = plan_inputs(loaded, model, m, model_files[model.name], params)
        cases.append(Case(case_id(model.name, variant.name, target.name, params), model, m, variant, target,
                          params, inputs))
    if not cases:
        raise InputError(f"{loaded.path}: the selection leaves no case to run (check include/exclude and filters)")
    return Plan(loaded, cases, model_files, warnings=plan_warnings(loaded, cases, model_files))


LARGE_PLAN = 5000  # cases; above this the user hears how long the run will take


def plan_warnings(loaded: LoadedSuite, cases: list[Case], model_files: dict[str, ModelFile]) -> list[str]:
    """Things that are legal but rarely meant: said once, before anything runs."""
    suite = loaded.suite
    out = []
    used: set[str] = {"batch", "streams", "scenario", "qps"}  # the runner reads these itself
    for model in suite.models:
        used |= {str(d) for spec in model.inputs.values() for d in (spec.shape or []) if isinstance(d, str)}
        used |= {str(v) for v in model.dims.values() if isinstance(v, str)}
        graph = model_files.get(model.name)
        if graph is not None:
            used |= {d for i in graph.inputs for d in i.dims if isinstance(d, str)}
    for key, values in suite.matrix.items():
        if key not in used and len(values) > 1:
            out.append(f"{relative(loaded.path)}: matrix.{key} is used by no model's inputs or dims, yet it "
                       f"multiplies the cases by {len(values)}; the cases differ only in their id")
    serving = suite.serving
    needed = early_stopping_minimum(serving.find_peak.percentile if serving.find_peak and
                                    serving.find_peak.percentile else serving.percentile)
    if any(c.params.get("scenario") == "server" for c in cases) and serving.min_queries < needed:
        out.append(f"{relative(loaded.path)}: serving.min_queries {serving.min_queries} is below the {needed} "
                   f"queries LoadGen's early stopping needs at that percentile even when no query is over the "
                   f"bound: every server run will be INVALID; raise it to {needed} or more")
    if len(cases) > LARGE_PLAN:
        m = suite.measure
        per_case = m.repeats * (max(m.min_s, 0.1) + m.warmup_s + 0.5)  # + worker start and the untimed pass
        out.append(f"{relative(loaded.path)}: {len(cases):,} cases; at about {per_case:.1f} s each that is "
                   f"{len(cases) * per_case / 3600:.1f} hours of measuring")
    return out


def early_stopping_minimum(percentile: float, confidence: float = 0.99) -> int:
    """Queries LoadGen's early stopping needs at a latency percentile with none over the bound:
    the smallest n with (percentile/100)**n <= 1 - confidence (459 at p99, 44 at p90)."""
    return math.ceil(math.log(1 - confidence) / math.log(percentile / 100))


def describe(plan: Plan) -> str:
    suite = plan.loaded.suite
    return (f"{len(plan.cases)} cases: {len(suite.models)} models x {len(suite.variants)} variants x "
            f"{len(suite.targets)} targets x params")


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
