"""Regression detection: baseline vs candidate results, one verdict per case and metric.

Why this is not a single percentage
-----------------------------------
On shared runners a case's latency moves by several percent between two runs with no code
change, and a whole case sometimes runs 20-50 % slower because a neighbour took the CPU for a
second or two (measured on this project's 2-core CI machine: 4 of 72 case-runs). Tools that
gate on one percentage drown their users in such alarms; tools that gate on a significance
test alone flag 1 % shifts once there are 50k samples. So a change is a regression only when
all of these hold (asv's rule, test AND effect, made robust to contention):

1. **Significance.** Mann-Whitney U (two-sided, scipy) on *block statistics*, not on raw
   samples: each worker process's samples are cut into contiguous blocks of a common size
   (about 24 blocks on the smaller side, at least ``5 / (1 - q)`` samples so a block's
   ``q``-quantile has data above it) and each block gives one value (its p50/p90/p99, or its
   throughput). Raw samples are autocorrelated (bursts of preemption are consecutive), so a
   test on them reports absurd certainty; block values are close to independent. The
   p-values of the whole grid are adjusted with Benjamini-Hochberg; a test whose smallest
   attainable p-value is above alpha (too few blocks or runs) cannot make a discovery and is
   left out of the family (Tarone's argument).
2. **Effect.** The pooled change (the number the results file reports) must exceed a minimum
   effect (default 5 %, per metric, per case by glob) in the bad direction.
3. **The model, not the machine.** Other processes only ever add time, so the fast end of the
   latency distribution (p5 of the raw samples) is what the code costs here. A speed change
   counts only if p5 moved too; if only the slow part moved (p50 within the minimum) it is
   ``ok`` (with a note). If p50 moved much further than p5 (a little or not at all), a
   neighbour disturbed one run throughout: that is ``inconclusive`` (rerun), neither a
   regression nor ok. If p5 moved the other way, the
   distribution changed shape (more threads than free cores, say): the model's doing, so
   a regression stands (an improvement does not: see fast_end_guard); and p50 must have moved with p5, or a tail/throughput change is riding
   on a small shift of the whole process (memory layout, clock) and is not counted. Measured
   on 19 runs x 8 cases of the CI machine (162 ordered pairs): MWU on blocks + 5 % alone
   gave a false regression in 134 pairs, the full rule in none (8 pairs inconclusive, all
   from one disturbed case-run), and a 25 %-deeper model was caught in 15 of 15.

With too few values for the test to reach alpha, a change above the minimum effect is
``inconclusive``; so is a slowdown above it that the test does not confirm (a test that fails
to reject has not shown there is no change: CI once read 2 -> 1 threads as +63% "ok, not
significant"); a change below it is ``ok`` whatever a test could say, since both conditions
are needed for a regression. Peak memory has one value per run, so it is decided only with several
runs per side (or with ``--history``); accuracy is deterministic, so it is a threshold on the
absolute difference. History mode replaces the test with a robust rule on per-run values.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from scipy import stats as sps

from ..stats import MAD_SCALE
from ..units import signed_pct as fmt_pct
from .evidence import Finding, worse_by
from .metrics import METRICS, NOISE_K, NOISE_MIN_CASES, Metric


def decide(finding: Finding, metric: Metric, alpha: float) -> Finding:
    """Apply the rule to evidence whose q-value (BH) is already filled in."""
    if finding.verdict:
        return finding
    worse = worse_by(metric, finding.change) or 0.0
    t = finding.threshold or 0.0
    if metric.kind == "exact":
        return replace(finding, verdict="regression" if worse > t else "improvement" if worse < -t else "ok")
    if abs(worse) < t:
        return replace(finding, verdict="ok")
    direction = "regression" if worse > 0 else "improvement"
    guarded = speed_guard(finding, metric)
    if guarded is not None and guarded.verdict:
        return guarded
    finding = guarded or finding  # a guard may only have added to the note
    if not finding.testable:
        what = "blocks" if metric.kind == "samples" else "runs"
        return replace(finding, verdict="inconclusive", note=(
            f"too few {what} for the test to reach alpha {alpha:g}: {finding.note}"))
    if finding.q_value is not None and finding.q_value <= alpha:
        return replace(finding, verdict=direction)
    q = "-" if finding.q_value is None else f"{finding.q_value:.2g}"
    if worse > 0:  # a test that fails to confirm a large slowdown has not shown there is none (CI: +63% "ok")
        return replace(finding, verdict="inconclusive", note=(
            f"{fmt_pct(finding.change)} but not significant (q={q}): the runs overlap too much to tell; rerun "
            f"with more repeats, or use harness ab; {finding.note}"))
    return replace(finding, verdict="ok", note=f"not significant (q={q}); {finding.note}")


def speed_guard(finding: Finding, metric: Metric) -> Finding | None:
    """Overrule a speed change that is not the model's (None: the change stands), but never call a
    change ok that every process shows (see every_process_guard). A disturbed run stays
    inconclusive even then: a neighbour there for the whole run slows every process of it."""
    guarded = fast_end_guard(finding, metric)
    if guarded is None or guarded.verdict != "ok":
        return guarded
    return every_process_guard(finding, metric) or guarded


def every_process_guard(finding: Finding, metric: Metric) -> Finding | None:
    """A median beyond the minimum effect in every process, baseline and candidate alike, is what a
    rerun will see too; the fast end staying put does not make it ok. It is a regression, or
    inconclusive when the harness measured either run on a busy machine (say which)."""
    worse = worse_by(metric, finding.change) or 0.0
    if not every_process_agrees(finding, metric):
        return None
    if finding.busy:
        return replace(finding, verdict="inconclusive", note=(
            f"{fmt_pct(finding.change)} in every process, but {finding.busy}; rerun on a quiet machine; "
            f"{finding.note}"))
    if worse > 0:
        return replace(finding, verdict="", note=(  # decided by the test and the noise floor, as usual
            f"every process {finding.every_process} by more than the minimum although the fast end (p5) moved "
            f"{fmt_pct(finding.floor_change)}: the whole body of the distribution moved; {finding.note}"))
    return None


def every_process_agrees(finding: Finding, metric: Metric) -> bool:
    """Whether every candidate process median lies beyond every baseline one (by the minimum
    effect) in the direction of this metric's change: no process speed mode explains it."""
    worse = worse_by(metric, finding.change) or 0.0  # positive is bad for every metric, throughput too
    bad = {"slower": 1, "faster": -1}.get(finding.every_process, 0)  # slower processes: worse on every metric
    return bad * worse > 0


def fast_end_guard(finding: Finding, metric: Metric) -> Finding | None:
    """Overrule a speed change that is not the model's (None: the change stands).

    Only the fast end (p5) tells the model's cost from time other processes added. It did not
    move -> ok, unless p50 itself moved far more (``disturbed``): then a neighbour slowed the run
    throughout or the typical inference changed and the best one did not, and a guard may call
    that inconclusive, never ok (CI: 2 -> 1 threads on a contended host, p50 +44% with p5 +3.2%,
    was called ok). It moved the other way -> for a regression the distribution changed shape
    (threads, say): the model's doing, the change stands; an improvement whose fast end got
    slower is inconclusive (measured: a 10% slower model read 22% faster when 3 of the baseline's
    5 processes landed in a slow speed mode, while p5 said +5.7%). It moved the same way -> a
    slower model moves p5 and p50 alike, so: p50 moved much more -> a disturbed run,
    inconclusive for a regression (rerun), no improvement claimed; p50 moved less than the minimum -> a tail or throughput change
    riding on a small shift of the whole process (layout, frequency), ok."""
    worse = worse_by(metric, finding.change) or 0.0
    floor = worse_by(metric, finding.floor_change)
    if floor is None:
        return None
    tf = finding.floor_threshold if finding.floor_threshold is not None else (finding.threshold or 0.0)
    typical = worse_by(metric, finding.median_change)
    if abs(floor) < tf:
        if worse > 0 and finding.disturbed and typical is not None and typical > 0:
            return replace(finding, verdict="inconclusive", note=(  # p50 itself moved far: never ok
                f"{fmt_pct(finding.change)} but {finding.disturbed}; rerun, or use harness ab; {finding.note}"))
        return replace(finding, verdict="ok", note=(
            f"{fmt_pct(finding.change)}, but the fast end (p5) did not move ({fmt_pct(finding.floor_change)}): the "
            f"kind of change other processes cause (a tail-only change of the model looks the same; compare "
            f"against --history or on a quiet machine to tell them apart); {finding.note}"))
    if floor * worse < 0:
        if worse < 0:  # faster typical runs, slower fast end: not an improvement anyone can bank on
            return replace(finding, verdict="inconclusive", note=(
                f"{fmt_pct(finding.change)}, but the fast end (p5) moved {fmt_pct(finding.floor_change)}: the "
                f"baseline's processes may have landed in slower speed modes than the candidate's; "
                f"rerun, or use harness ab; {finding.note}"))
        return None  # the shape changed (more threads than free cores, say): the model's doing
    if finding.disturbed:
        return replace(finding, verdict="inconclusive" if worse > 0 else "ok",
                       note=f"{fmt_pct(finding.change)} but {finding.disturbed}; rerun; {finding.note}")
    if typical is not None and abs(typical) < tf:
        return replace(finding, verdict="ok", note=(
            f"{fmt_pct(finding.change)} with the fast end {fmt_pct(finding.floor_change)} but p50 only "
            f"{fmt_pct(finding.median_change)}: not the whole distribution moving, as a change of the model would; "
            f"{finding.note}"))
    return None


def busy_guard(finding: Finding, metric: Metric) -> Finding:
    """A speed verdict from a run that the harness measured on a busy machine (other processes over
    a quarter of the CPU) is never ok or an improvement: the load slows what it touches, so it can
    hide a regression as well as fake an improvement. It is inconclusive, naming the busy run. A
    regression stands only when the baseline alone was busy: the candidate was slower even than a
    slowed baseline. An inconclusive verdict for another reason is told about the busy run too."""
    if metric.kind != "samples" or not finding.busy or finding.busy in finding.note:
        return finding
    if finding.verdict == "regression" and "candidate" not in finding.busy:
        return finding
    return replace(finding, verdict="inconclusive", note=(
        f"{finding.busy}: {fmt_pct(finding.change)} cannot be told from the load; rerun on a quiet machine; "
        f"{finding.note}"))


def adjust(findings: list[Finding]) -> list[Finding]:
    """Benjamini-Hochberg over every test that could reach alpha (Tarone: the others cannot
    make a discovery, so counting them would only cost power)."""
    family = [i for i, f in enumerate(findings) if f.testable and f.p_value is not None and not f.verdict]
    if not family:
        return findings
    q = sps.false_discovery_control([findings[i].p_value for i in family], method="bh")
    out = list(findings)
    for i, value in zip(family, q):
        out[i] = replace(out[i], q_value=float(value))
    return out


def grid_sigma(shifts: np.ndarray) -> float:
    """Robust sigma of the run-to-run noise from the grid's log changes.

    Two estimates, the smaller wins: the MAD around the median (right when every case moved
    together: a global change shifts the centre, not the spread) and the median |shift| around
    zero (right when a minority of cases really changed: they sit in the upper half of |shift|
    and leave its median alone; for normal noise median |x| = 0.6745 sigma). Under pure noise
    both estimate sigma. A change that hits between about half and nearly all cases unevenly
    can inflate both: the note on each verdict shows the floor used, and --history avoids it.
    """
    centred = MAD_SCALE * float(np.median(np.abs(shifts - np.median(shifts))))
    around_zero = float(np.median(np.abs(shifts))) / 0.6745
    return min(centred, around_zero)


def noise_floor(findings: list[Finding]) -> list[Finding]:
    """Attach to each speed finding a noise floor: NOISE_K robust sigmas of the grid's changes.

    Samples within one run cannot show how much the NEXT process on the same machine differs
    (frequency, memory placement, neighbours): on a shared 2-core VM whole runs of identical code
    move by 3-8 %, past a 5 % minimum and significant on any within-run test. The other cases of
    the same comparison can show it: with no real change their shifts scatter around a common
    centre, and the spread of that scatter (1.4826 MAD) is the run-to-run noise. A real regression
    in a few cases stands out from the scatter; a regression of every case moves the centre, not
    the spread, and is still caught against the minimum effect. A change between the minimum
    effect and the floor is inconclusive (see within_noise), never silently ok.
    """
    out = list(findings)
    for metric in METRICS:
        if metric.kind == "exact" or not metric.relative:
            continue
        index = [i for i, f in enumerate(out) if f.metric == metric.name and not f.verdict
                 and f.change is not None and math.isfinite(f.change) and f.change > -1]
        if len(index) < NOISE_MIN_CASES:
            continue
        sigma = grid_sigma(np.log1p([out[i].change or 0.0 for i in index]))  # index holds finite changes only
        floor = math.expm1(NOISE_K * sigma)
        for i in index:
            if floor > (out[i].threshold or 0.0):
                out[i] = replace(out[i], noise_threshold=floor, note=(
                    f"run-to-run noise of this comparison: {sigma:.1%} robust sigma over {len(index)} cases, "
                    f"floor {floor:.1%}; {out[i].note}"))
    return out


def within_noise(finding: Finding, metric: Metric) -> Finding:
    """A significant change past the minimum effect but inside the run-to-run noise cannot be told
    from the next process being a little slower: inconclusive (rerun with repeats, or use
    --history), never a regression; an improvement that small is not claimed. The noise is the
    larger of two: the grid's floor (noise_floor, from the other cases' changes) and the change
    reruns stay inside given both runs' own process spread (rerun_threshold: the candidate's p50
    within the baseline's printed rerun interval).

    The rerun bound treats a rerun as one more process, so a run whose processes land in two speed
    modes (2 threads on a 2-core VM: 0.72-1.19 ms over 5 processes) gets a bound of 40-80%. When
    every candidate process lies beyond every baseline process by the minimum effect, no speed
    mode explains the change and the bound is not applied; the grid's floor, which measures whole
    runs shifting together, still is (CI: 2 -> 1 intra-op threads, +61% with every process slower, was
    called inconclusive against an 83% bound). That holds for a slowdown only: a whole run of the
    baseline landing slow moves every one of its processes alike, and an improvement is not claimed
    on that (CI: an identical pair read -17% at p50, every process faster, 3 per side)."""
    worse = worse_by(metric, finding.change) or 0.0
    rerun = finding.rerun_threshold
    if rerun is not None and 0 < worse <= rerun and every_process_agrees(finding, metric):
        finding = replace(finding, note=(  # say why a change inside the bound still counts
            f"every process {finding.every_process}: the rerun bound ({rerun:.1%}, from the runs' process "
            f"spread) does not apply; {finding.note}"))
        rerun = None
    floors = [(t, what) for t, what in ((finding.noise_threshold, "this comparison's run-to-run noise (floor"),
                                        (rerun, "what reruns differ by, from both runs' "
                                         "process spread (90%:")) if t is not None]
    if not floors:
        return finding
    floor, what = max(floors)
    if abs(worse) > floor:
        return finding
    if finding.verdict == "regression":
        return replace(finding, verdict="inconclusive", note=(
            f"{fmt_pct(finding.change)} is within {what} {floor:.1%}); rerun with repeats or compare with "
            f"--history or harness ab; {finding.note}"))
    if finding.verdict == "improvement":
        return replace(finding, verdict="ok", note=f"within {what} {floor:.1%}); {finding.note}")
    return finding
