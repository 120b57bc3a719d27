"""Paired A/B runs: baseline and candidate measured round by round in the same time window.

Two runs made hours apart cannot cancel drift, neighbours or a VM's speed modes; a paired run
can. For each case of the suite with the A/B axis (two targets, two models or two variants) set
to the baseline and to the candidate, every round measures both sides:

- in ONE fresh worker process that opens both sessions and alternates short blocks of each
  (order shuffled per block), wherever the sides can share a process: the model and variant
  axes, and two targets on one runtime. The process's speed mode (up to 40% between processes on
  these VMs) and whatever the machine did meanwhile reach both sides alike and cancel in the ratio;
- otherwise (two onnxruntime builds, LoadGen scenarios, streams, plugin EPs) in one fresh process
  per side, in a random order per round: what slowed both processes of a round cancels, a
  process's own speed mode does not, so such verdicts need more rounds.

Rounds are shuffled across cases with the recorded seed. The verdict for each case uses only the
per-round ratios of the sides' medians, candidate over baseline.

Decision (per case, on p50): the round ratios' 95% interval, from 6 rounds the median's
distribution-free order-statistic interval (one odd round cannot move it), below that the
geometric mean's Student t interval on the log ratios (see ``interval``). ``slower`` when the interval lies wholly
above 1 + min_effect, ``faster`` when wholly below 1 - min_effect, ``same`` when it lies wholly
within [1 - min_effect, 1 + min_effect], otherwise ``inconclusive``. The data never decide when
to stop: the number of rounds is fixed in advance, or a time budget ends them (at least
MIN_ROUNDS), and time does not depend on the ratios' noise, so the interval keeps its nominal
95% (no optional stopping: looking at the interval after every round and stopping once it
clears would inflate the false alarm rate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import stats
from .errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, InputError
from .plan import Case, Plan, build_plan
from .report.terminal import case_line
from .results import CaseRecord
from .run.paired import PairedRun
from .run.session import RunSession
from .suite import LoadedSuite

AXES = {"target": "targets", "model": "models", "variant": "variants"}
MIN_ROUNDS = 3  # a time budget never cuts a comparison below this many rounds


@dataclass
class ABVerdict:
    key: str
    verdict: str  # slower | faster | same | inconclusive | failed
    ratio: float | None = None  # candidate / baseline: median of the rounds (geometric mean below 6)
    low: float | None = None
    high: float | None = None
    rounds: int = 0
    ratios: list[float] = field(default_factory=list)
    baseline_p50: float | None = None
    candidate_p50: float | None = None
    note: str = ""
    apart: str | None = None  # why the sides ran in separate processes (None: each round shared one)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class ABResult:
    axis: str
    baseline: str
    candidate: str
    min_effect: float
    rounds: int
    order_seed: int
    verdicts: list[ABVerdict]
    results_path: Path | None

    @property
    def exit_code(self) -> int:
        """Same contract as compare: 1 a regression (slower, or a newly failing case), 3 something
        undecided, 0 every case decided and none slower."""
        kinds = {v.verdict for v in self.verdicts}
        if "slower" in kinds or "failed" in kinds:
            return EXIT_FAILED
        if "inconclusive" in kinds:
            return EXIT_INCONCLUSIVE
        return EXIT_OK


def find_axis(loaded: LoadedSuite, baseline: str, candidate: str) -> str:
    """The axis (target, model or variant) that declares both names."""
    if baseline == candidate:
        raise InputError(f"{loaded.path}: --baseline and --candidate are both {baseline!r}; name two different ones")
    suite = loaded.suite
    found = [axis for axis, attr in AXES.items()
             if {baseline, candidate} <= {item.name for item in getattr(suite, attr)}]
    if not found:
        declared = "; ".join(f"{attr}: {', '.join(i.name for i in getattr(suite, attr))}" for attr in AXES.values())
        raise InputError(f"{loaded.path}: no axis declares both {baseline!r} and {candidate!r} ({declared})")
    return found[0]


def pair_key(case: Case, axis: str) -> str:
    parts = {"model": case.model.name, "variant": case.variant.name, "target": case.target.name}
    parts[axis] = "*"
    return "/".join([parts["model"], parts["variant"], parts["target"], case.case_id.rsplit("/", 1)[-1]])


def t_quantile_975(df: int) -> float:
    from scipy import stats as sps

    return float(sps.t.ppf(0.975, df))


def interval(ratios: list[float]) -> tuple[float, float, float] | None:
    """(centre, low, high) of the per-round ratios at 95%, or None with fewer than 2 rounds.

    From 6 rounds: the median and its distribution-free order-statistic interval (exact binomial
    ranks; 10 rounds give the 2nd and 9th smallest). One odd round, a process a neighbour hit in
    one side's blocks, moves neither, where it would stretch a t interval past the minimum
    effect (measured: a 10% slowdown read inconclusive in 2 of 20 trials for one such round).
    Below 6 rounds no order statistic reaches 95%: the geometric mean and its Student t interval
    on the log ratios."""
    n = len(ratios)
    if n < 2:
        return None
    if stats.median_ci_reached(n):
        low, high = stats.median_ci(ratios)
        return float(np.median(ratios)), low, high
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def decide(key: str, ratios: list[float], min_effect: float) -> ABVerdict:
    found = interval(ratios)
    verdict = ABVerdict(key, "inconclusive", found[0] if found else (ratios[0] if ratios else None),
                        rounds=len(ratios), ratios=ratios)
    if found is None:
        verdict.note = "one round gives no interval; run more rounds"
        return verdict
    _, low, high = found
    verdict.low, verdict.high = low, high
    if low > 1 + min_effect:
        verdict.verdict = "slower"
    elif high < 1 - min_effect:
        verdict.verdict = "faster"
    elif low >= 1 - min_effect and high <= 1 + min_effect:
        verdict.verdict = "same"
    else:
        verdict.note = (f"the 95% interval {low:.3f}-{high:.3f} reaches past the minimum effect "
                        f"+-{min_effect:.0%}; run more rounds")
    return verdict


def run_ab(loaded: LoadedSuite, baseline: str, candidate: str, rounds: int, min_effect: float, out_dir: Path,
           say: Callable[[str], None], budget_s: float | None = None) -> ABResult:
    axis = find_axis(loaded, baseline, candidate)
    flag = {"target": "targets", "model": "models", "variant": "variants"}[axis]
    plan: Plan = build_plan(loaded, **{flag: [baseline, candidate]})
    by_key: dict[str, dict[str, Case]] = {}
    for case in plan.cases:
        name = {"target": case.target.name, "model": case.model.name, "variant": case.variant.name}[axis]
        by_key.setdefault(pair_key(case, axis), {})[name] = case
    pairs = {key: (sides[baseline], sides[candidate]) for key, sides in by_key.items()
             if baseline in sides and candidate in sides}
    # Round r of the baseline pairs with round r of the candidate: the rounds are the cases' repeats.
    suite = plan.loaded.suite
    suite.measure = suite.measure.model_copy(update={"repeats": rounds})
    suite.serving = suite.serving.model_copy(update={"repeats": rounds})  # a LoadGen test per case and round
    session = RunSession(plan, out_dir, f"harness ab {axis} {baseline} vs {candidate}", say,
                         settings={"ab": {"axis": axis, "baseline": baseline, "candidate": candidate, "rounds": rounds,
                                          "budget_s": budget_s, "min_effect": min_effect}})
    records: dict[str, CaseRecord] = {}
    units: dict[str, PairedRun] = {}

    def ended(case: Case, record: CaseRecord) -> None:
        records[case.case_id] = record
        say(case_line(record))

    status = "aborted"  # a harness error; it is raised on
    try:
        runs = session.prepare([case for pair in pairs.values() for case in pair],
                               lambda case: say(f"{case.case_id}: up to {rounds} rounds, interleaved"))
        for index, key in enumerate(pairs):
            units[key] = PairedRun((runs[2 * index], runs[2 * index + 1]), seed=session.order.randrange(2**32))
        deadline = time.monotonic() + budget_s if budget_s else None
        session.interleave(list(units.values()), deadline, at_least=MIN_ROUNDS)
        session.finish(runs, ended)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        session.close(status)
    verdicts = []
    for key, (b, c) in pairs.items():
        verdict = judge(key, (records[b.case_id], records[c.case_id]), min_effect)
        verdict.apart = units[key].apart
        verdicts.append(verdict)
    return ABResult(axis, baseline, candidate, min_effect, rounds, session.order_seed, verdicts, session.path)


def serving_ratios(base: CaseRecord, cand: CaseRecord) -> list[float]:
    """Per round, the LoadGen figure of each side as a cost ratio (above 1: the candidate is worse):
    latency at the bound for a server at a fixed rate, inverted rates for peak and offline QPS."""
    assert base.serving is not None and cand.serving is not None
    b = base.serving.repeat_figures or [None]
    c = cand.serving.repeat_figures or [None]
    is_rate = base.serving.scenario == "offline" or bool(base.serving.settings.get("find_peak"))
    return [(bv / cv if is_rate else cv / bv) for bv, cv in zip(b, c) if bv and cv]


def judge(key: str, records: tuple[CaseRecord, CaseRecord], min_effect: float) -> ABVerdict:
    base, cand = records
    if not base.ok or not cand.ok:
        side, record = ("candidate", cand) if not cand.ok else ("baseline", base)
        kind = "failed" if side == "candidate" and record.status == "failed" else "inconclusive"
        return ABVerdict(key, kind, note=f"{side} {record.status}: {record.reason}")
    if base.serving is not None and cand.serving is not None:
        ratios = serving_ratios(base, cand)
    else:
        b = base.measurement.repeat_medians_ms if base.measurement else []
        c = cand.measurement.repeat_medians_ms if cand.measurement else []
        ratios = [cm / bm for bm, cm in zip(b, c) if bm > 0]
    if not ratios:
        return ABVerdict(key, "inconclusive", note="no round gave both sides a figure (a serving peak search "
                         "that found no VALID rate has none)")
    verdict = decide(key, ratios, min_effect)
    verdict.baseline_p50 = base.latency_ms.p50 if base.latency_ms else None
    verdict.candidate_p50 = cand.latency_ms.p50 if cand.latency_ms else None
    return verdict
