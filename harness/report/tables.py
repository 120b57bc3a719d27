"""The report's computed tables: pure functions over the frame from ``data.build_frame``.

Shared by the HTML, Markdown and terminal renderers so they never disagree. Only like is
compared with like: speedups and picks are taken within one model and one parameter set
("config": batch, streams, ...), against the baseline target/variant at that same config.
Latency comparisons use p50; the uncertainty of a p50 is its 95 % CI widened to cover every
repeat's median (``interval_low``/``interval_high``, see data.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..errors import InputError
from . import fmt

BAD_ACCURACY = ("fail", "error")
ORDER = ["model_rank", "config_rank", "machine_rank", "target_rank", "variant_rank"]
RENAME = {"latency_ms.p50": "p50", "latency_ms.p90": "p90", "latency_ms.p95": "p95", "latency_ms.p99": "p99",
          "latency_ms.p999": "p999", "latency_ms.max": "max", "latency_ms.n": "n", "latency_ms.cv_robust": "cv_robust",
          "latency_ms.median_ci_low": "ci_low", "latency_ms.median_ci_high": "ci_high",
          "latency_ms.median_ci_rel": "ci_rel", "throughput.samples_per_s": "samples_per_s",
          "throughput.inferences_per_s": "inferences_per_s", "memory_mb.peak_rss": "peak_rss",
          "memory_mb.rss_after_session": "rss_after_session", "memory_mb.rss_start": "rss_start",
          "timings_ms.session_create": "session_create", "timings_ms.first_inference": "first_inference",
          "accuracy.cosine": "cosine", "accuracy.top1": "top1", "accuracy_verdict": "verdict"}


@dataclass(frozen=True)
class Baseline:
    """What speedups are relative to: a target and variant, optionally on one machine.

    Without a machine, the first machine (in the order results were given) that measured it
    is used, so every speedup in a multi-machine report shares one reference number.
    """

    target: str
    variant: str
    machine: str | None = None

    def __str__(self) -> str:
        return f"{self.target}{f' @ {self.machine}' if self.machine else ''}/{self.variant}"


def parse_baseline(text: str) -> Baseline:
    """'cpu/fp32', 'cpu@host-b/fp32' or 'cpu @ host-b/fp32'; a bare target means its fp32 variant."""
    target, _, variant = text.rpartition("/") if "/" in text else (text, "", "fp32")
    target, _, machine = target.partition("@")
    if not target.strip() or not variant.strip():
        raise InputError(f"--baseline {text!r}: expected TARGET/VARIANT, e.g. cpu/fp32 or cpu@HOST/fp32")
    return Baseline(target.strip(), variant.strip(), machine.strip() or None)


def _view(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=RENAME)


LOADGEN = ("server", "offline")


def ok(frame: pd.DataFrame) -> pd.DataFrame:
    """Measured cases of the single- and multi-stream loops; serving scenarios have views of their own."""
    return _view(frame[(frame["status"] == "ok") & ~frame["scenario"].isin(LOADGEN)])


SERVING_RENAME = {"serving.validity": "validity", "serving.target_qps": "target_qps", "serving.peak_qps": "peak_qps",
                  "serving.completed_qps": "completed_qps", "serving.latency_at_bound_ms": "at_bound",
                  "serving.latency_bound_ms": "bound_ms", "serving.percentile": "percentile"}


def serving(frame: pd.DataFrame, baseline: Baseline) -> pd.DataFrame:
    """LoadGen cases, one row each: the load, LoadGen's verdict, the rate reached and what it costs.

    ``rate`` is the figure a serving choice is made on: the peak QPS at the bound for a peak
    search, the completed QPS otherwise; ``vs_baseline`` divides it by the baseline target and
    variant's at the same model, params and scenario kind."""
    cases = _view(frame[(frame["status"] == "ok") & frame["scenario"].isin(LOADGEN)]).rename(columns=SERVING_RENAME)
    if cases.empty:
        return cases
    cases = cases.copy()
    search = cases["peak_qps"].notna() | ((cases["scenario"] == "server") & cases["target_qps"].isna())
    cases["load"] = [("peak search" if is_search else f"{fmt.compact(qps)} QPS" if scenario == "server" else "offline")
                     for scenario, qps, is_search in zip(cases["scenario"], cases["target_qps"], search)]
    cases["bound"] = [f"p{pct:g} ≤ {bound:g} ms" if scenario == "server" and bound == bound else ""
                      for scenario, pct, bound in zip(cases["scenario"], cases["percentile"], cases["bound_ms"])]
    cases["kind"] = ["peak" if is_search else scenario for scenario, is_search in zip(cases["scenario"], search)]
    cases["rate"] = cases["peak_qps"].where(search, cases["completed_qps"])
    valid = cases["validity"] == "VALID"
    # What serving costs at a rate it really sustained: never at an INVALID run's rate.
    cases["cost_per_million_queries"] = [
        cost_per_million(price, rate) if ok and price == price and rate == rate and rate > 0 else math.nan
        for price, rate, ok in zip(cases["price_per_hour"], cases["rate"], valid)]
    keys = ["model", "serving_config", "kind", "target_qps"]
    base = cases[(cases["target"] == baseline.target) & (cases["variant"] == baseline.variant)]
    if baseline.machine is not None:
        base = base[base["machine"] == baseline.machine]
    base = base.sort_values("machine_rank").drop_duplicates(keys)[keys + ["rate"]]
    cases = cases.merge(base.rename(columns={"rate": "baseline_rate"}), on=keys, how="left")
    # A speedup only where the rate is the result (peak, offline); a fixed offered rate is the input.
    cases["vs_baseline"] = (cases["rate"] / cases["baseline_rate"]).where(cases["kind"] != "server")
    return cases.sort_values(ORDER, kind="stable", ignore_index=True)


def serving_points(frame: pd.DataFrame) -> pd.DataFrame:
    """Every LoadGen server run behind the serving cases: the latency-vs-offered-QPS curves."""
    cases = frame[(frame["status"] == "ok") & frame["serving_points"].notna()]
    rows = [{"model": case["model"], "curve": f"{case['target_label']} · {case['variant']}",
             "config": case["serving_config"], "case_id": case["case_id"], "bound_ms": case["serving.latency_bound_ms"],
             "percentile": case["serving.percentile"], **point}
            for case in cases.to_dict("records") for point in case["serving_points"]]
    columns = ["model", "curve", "config", "case_id", "bound_ms", "percentile", "qps", "latency_ms", "valid",
               "reasons", "peak"]
    return pd.DataFrame(rows, columns=columns).sort_values(["model", "config", "curve", "qps"], ignore_index=True)


def eligible(frame: pd.DataFrame) -> pd.DataFrame:
    """Cases a recommendation may name: measured, and not failing the suite's accuracy limits."""
    cases = ok(frame)
    return cases[~cases["verdict"].isin(BAD_ACCURACY)]


def choice(row: pd.Series | dict) -> str:
    return f"{row['target_label']} · {row['variant']}"


def choices(frame: pd.DataFrame) -> list[str]:
    """``choice`` for every row, without building a dict per row (slow on wide frames)."""
    return (frame["target_label"].astype(str) + " · " + frame["variant"].astype(str)).tolist()


def baseline_rows(frame: pd.DataFrame, baseline: Baseline) -> pd.DataFrame:
    """The baseline's numbers per (model, config); a model/config without it is simply absent."""
    cases = ok(frame)
    cases = cases[(cases["target"] == baseline.target) & (cases["variant"] == baseline.variant)]
    if baseline.machine:
        cases = cases[(cases["machine"] == baseline.machine) | (cases["machine_key"] == baseline.machine)]
    cases = cases.sort_values("machine_rank", kind="stable").drop_duplicates(["model", "config"])
    return cases.set_index(["model", "config"])[["p50", "interval_low", "interval_high", "samples_per_s",
                                                  "target_label", "variant"]].rename(
        columns=lambda c: f"base_{c}")


def baseline_label(frame: pd.DataFrame, baseline: Baseline) -> str:
    """The baseline as resolved, e.g. "cpu @ host-a · fp32"; as given when nothing matched."""
    rows = baseline_rows(frame, baseline)
    if rows.empty:
        return str(baseline)
    first = rows.iloc[0]
    return f"{first['base_target_label']} · {first['base_variant']}"


def with_speedups(frame: pd.DataFrame, baseline: Baseline, cases: pd.DataFrame | None = None) -> pd.DataFrame:
    """Ok cases plus speedup = baseline p50 / p50 (and its interval) and throughput speedup."""
    cases = ok(frame) if cases is None else cases
    base = baseline_rows(frame, baseline)
    out = cases.join(base, on=["model", "config"])
    out["speedup"] = out["base_p50"] / out["p50"]
    out["speedup_low"] = out["base_interval_low"] / out["interval_high"]
    out["speedup_high"] = out["base_interval_high"] / out["interval_low"]
    out["throughput_speedup"] = out["samples_per_s"] / out["base_samples_per_s"]
    return out


def fastest(frame: pd.DataFrame, baseline: Baseline) -> pd.DataFrame:
    """Per model and config, the lowest-p50 eligible case, its speedup and how clear the win is.

    ``decisive`` is True when the pick's interval lies wholly below the runner-up's: the ranking
    would survive a rerun. Faster cases excluded for failing accuracy are named in ``excluded``.
    """
    cases = _slim(with_speedups(frame, baseline)).sort_values(["p50", *ORDER], kind="stable")
    rows = []
    for (model, config), group in cases.groupby(["model", "config"], sort=False):
        good = group[~group["verdict"].isin(BAD_ACCURACY)]
        if good.empty:
            continue
        best = good.iloc[0]
        runner = good.iloc[1] if len(good) > 1 else None
        bad = group[group["verdict"].isin(BAD_ACCURACY) & (group["p50"] < best["p50"])]
        known = runner is not None and not (pd.isna(best["interval_high"]) or pd.isna(runner["interval_low"]))
        decisive = None if runner is None else known and bool(best["interval_high"] < runner["interval_low"])
        excluded = [choice(r) for _, r in bad.iterrows()]
        notes = [best["notes"], f"faster but failing accuracy: {', '.join(excluded)}" if excluded else ""]
        rows.append({
            "model": model, "config": config, "choice": choice(best), "target_label": best["target_label"],
            "target": best["target"], "variant": best["variant"], "machine": best["machine"], "p50": best["p50"],
            "interval_low": best["interval_low"], "interval_high": best["interval_high"],
            "speedup": best["speedup"], "speedup_low": best["speedup_low"], "speedup_high": best["speedup_high"],
            "speedup_range": fmt.times_range(best["speedup_low"], best["speedup_high"]),
            "samples_per_s": best["samples_per_s"], "throughput_speedup": best["throughput_speedup"],
            "runner_up": choice(runner) if runner is not None else "",
            "runner_up_p50": runner["p50"] if runner is not None else math.nan,
            "margin": runner["p50"] / best["p50"] - 1 if runner is not None else math.nan,
            "decisive": decisive,
            "confidence": ("only candidate" if decisive is None else "yes" if decisive else
                           "no: intervals overlap" if known else "no: fewer than 3 processes, no interval"),
            "baseline": f"{best['base_target_label']} · {best['base_variant']}" if pd.notna(best["base_p50"]) else "",
            "excluded": ", ".join(excluded), "notes": "; ".join(filter(None, notes)),
            "unstable": bool(best["unstable"]), "partial_fallback": bool(best["partial_fallback"]),
            "model_rank": best["model_rank"], "config_rank": best["config_rank"],
        })
    if not rows:
        return pd.DataFrame(columns=["model", "config", "choice", "baseline", "config_rank", "model_rank"])
    return pd.DataFrame(rows).sort_values(["model_rank", "config_rank"], kind="stable", ignore_index=True)


def _slim(cases: pd.DataFrame) -> pd.DataFrame:
    """The columns picks need: sorting and grouping a 70-column frame per model is what costs."""
    keep = ["model", "config", "target_label", "target", "variant", "machine", "p50", "interval_low",
            "interval_high", "speedup", "speedup_low", "speedup_high", "samples_per_s", "throughput_speedup",
            "verdict", "notes", "unstable", "partial_fallback", "base_p50", "base_target_label", "base_variant",
            "price_per_hour", "cost_per_million", *ORDER]
    return cases[[c for c in keep if c in cases.columns]]


@dataclass(frozen=True)
class Matrix:
    """Speedups (rows: model, config; columns: target labels) and which variant each cell used."""

    speedups: pd.DataFrame
    variants: pd.DataFrame
    title: str
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)


def speedup_matrix(frame: pd.DataFrame, baseline: Baseline, variant: str | None = None) -> Matrix:
    """``variant`` given: that precision on every target (like for like). None: each target's best
    eligible variant, so the matrix answers "how fast can this target get at acceptable accuracy"."""
    cases = with_speedups(frame, baseline, eligible(frame))
    if variant is not None:
        cases = cases[cases["variant"] == variant]
    cases = cases[cases["speedup"].notna()].sort_values(["speedup"], ascending=False, kind="stable")
    best = cases.drop_duplicates(["model", "config", "target_label"]).sort_values(ORDER, kind="stable")
    columns = list(dict.fromkeys(ok(frame).sort_values(["machine_rank", "target_rank"])["target_label"]))
    rows = pd.MultiIndex.from_frame(best[["model", "config"]].drop_duplicates()) if len(best) else None

    def pivot(values: str) -> pd.DataFrame:
        if rows is None:
            return pd.DataFrame(columns=columns)
        table = best.pivot(index=["model", "config"], columns="target_label", values=values)
        return table.reindex(index=rows, columns=[c for c in columns if c in table.columns])

    best = best.assign(interval=[fmt.times_range(lo, hi) for lo, hi in zip(best["speedup_low"], best["speedup_high"])])
    title = (f"{variant} on every target" if variant is not None else "best eligible variant per target")
    return Matrix(pivot("speedup"), pivot("variant"), f"Speedup over {baseline_label(frame, baseline)}: {title}",
                  pivot("interval"))


def percentiles(frame: pd.DataFrame) -> pd.DataFrame:
    cases = ok(frame).copy()
    # The interval a rerun's p50 is expected in (from the worker processes), not one run's sample CI.
    cases["ci"] = [f"{fmt.ms(lo)} – {fmt.ms(hi)}" if lo == lo and hi == hi else "fewer than 3 processes"
                   for lo, hi in zip(cases["interval_low"], cases["interval_high"])]
    cases["ci_rel"] = (cases["interval_high"] - cases["interval_low"]) / 2 / cases["p50"]
    return cases


def _without(config: str, key: str) -> str:
    parts = [p for p in config.split(" · ") if not p.startswith(f"{key} ")]
    return " · ".join(parts) or "-"


def throughput_vs(frame: pd.DataFrame, by: str = "batch") -> pd.DataFrame:
    """Long form: one row per ok case with ``by`` (batch or streams) and the other params as ``fixed``."""
    cases = ok(frame).copy()
    cases["fixed"] = [_without(c, by) for c in cases["config"]]
    cases["series"] = [c if f == "-" else f"{c} · {f}" for c, f in zip(choices(cases), cases["fixed"])]
    points = cases.groupby(["model", "series"])[by].transform("nunique")
    return cases[points > 1].sort_values([*ORDER], kind="stable")  # a single point is not a curve


def throughput_pivot(frame: pd.DataFrame, by: str = "batch") -> pd.DataFrame:
    """Rows: model x series; columns: samples/s at each value of ``by``; ``scaling``: last / first."""
    long = throughput_vs(frame, by)
    if long.empty:
        return pd.DataFrame()
    values = sorted(long[by].unique())
    table = long.pivot_table(index=["model_rank", "model", "fixed", "machine_rank", "target_rank", "target_label",
                                    "variant_rank", "variant"], columns=by, values="samples_per_s", aggfunc="first")
    table = table.reindex(columns=values).sort_index()
    table.columns = [f"{by} {v}" for v in values]
    table["scaling"] = table.iloc[:, -1] / table.iloc[:, 0]
    return table.reset_index().drop(columns=["model_rank", "machine_rank", "target_rank", "variant_rank"])


def memory(frame: pd.DataFrame) -> pd.DataFrame:
    cases = ok(frame).copy()
    cases["session_mb"] = cases["rss_after_session"] - cases["rss_start"]
    return cases


def cold_start(frame: pd.DataFrame) -> pd.DataFrame:
    """Never averaged into warm latency: session creation and the first run are reported apart."""
    cases = ok(frame).copy()
    cases["first_vs_warm"] = cases["first_inference"] / cases["p50"]
    return cases


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[bool]:
    """True where no other point is at least as good in both and better in one (minimising both).
    NaN coordinates are never on the front; identical points are all on it."""
    points = list(zip(x, y))
    valid = [not (math.isnan(a) or math.isnan(b)) for a, b in points]
    return [ok_ and not any(v and a2 <= a and b2 <= b and (a2 < a or b2 < b) for (a2, b2), v in zip(points, valid))
            for (a, b), ok_ in zip(points, valid)]


def quantization(frame: pd.DataFrame) -> pd.DataFrame:
    """Latency against accuracy loss (1 - cosine) per model and config, with the Pareto front marked."""
    cases = ok(frame)
    cases = cases[cases["loss"].notna()].copy()
    cases["pareto"] = False
    for _, group in cases.groupby(["model", "config"], sort=False):
        cases.loc[group.index, "pareto"] = pareto_front(group["p50"].tolist(), group["loss"].tolist())
    cases["verdict"] = cases["verdict"].fillna("reference")  # only the reference has a loss but no verdict
    return cases


def cost_per_million(price_per_hour: float, samples_per_s: float) -> float:
    """USD per million samples (input rows) at full load: price / (samples/s * 3600) * 1e6."""
    return price_per_hour / (samples_per_s * 3600.0) * 1e6


def cost(frame: pd.DataFrame) -> pd.DataFrame:
    """Cases with a known price: cost per million samples and samples per dollar (the column keeps
    its old name, ``inferences_per_dollar``)."""
    cases = eligible(frame)
    cases = cases[cases["price_per_hour"].notna() & (cases["samples_per_s"] > 0)].copy()
    cases["cost_per_million"] = [cost_per_million(p, s)
                                 for p, s in zip(cases["price_per_hour"], cases["samples_per_s"])]
    cases["inferences_per_dollar"] = cases["samples_per_s"] * 3600.0 / cases["price_per_hour"]
    cheapest = cases.groupby(["model", "config"], sort=False)["cost_per_million"].transform("min")
    cases["cheapest"] = cases["cost_per_million"] == cheapest
    return cases


def problems(frame: pd.DataFrame) -> pd.DataFrame:
    """Failed and unavailable cases, each with its reason: a report never drops a case silently."""
    return _view(frame[frame["status"] != "ok"])


def problems_grouped(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per target, status and reason: a missing CUDA library reads once, not once per case."""
    cases = problems(frame)
    if cases.empty:
        return pd.DataFrame(columns=["target_label", "status", "reason", "cases", "models", "variants", "params"])
    cases = cases.assign(reason=cases["reason"].fillna("no reason recorded"))

    def listed(values: pd.Series) -> str:
        return ", ".join(dict.fromkeys(values.astype(str)))

    grouped = cases.groupby(["target_label", "status", "reason"], sort=False).agg(
        cases=("case_id", "size"), models=("model", listed), variants=("variant", listed), params=("config", listed),
        rank=("machine_rank", "min"))
    return grouped.reset_index().sort_values(["status", "rank"], kind="stable", ignore_index=True)


def flagged(frame: pd.DataFrame) -> pd.DataFrame:
    """Ok cases whose numbers carry a warning (unstable, partial fallback, accuracy fail, ...)."""
    cases = ok(frame)
    return cases[cases["notes"].astype(bool)]


def machine_comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """Same model, config, target and variant on each machine side by side (p50), and the ratio."""
    cases = ok(frame)
    if cases["machine"].nunique() < 2:
        return pd.DataFrame()
    names = list(dict.fromkeys(cases.sort_values("machine_rank")["machine"]))
    table = cases.pivot_table(index=["model_rank", "model", "config_rank", "config", "target_rank", "target",
                                     "variant_rank", "variant"], columns="machine", values="p50", aggfunc="first")
    table = table.reindex(columns=names)
    table = table[table.notna().sum(axis=1) >= 2].sort_index()
    if table.empty:
        return pd.DataFrame()
    table["fastest"] = table[names].idxmin(axis=1)
    table["ratio"] = table[names].max(axis=1) / table[names].min(axis=1)
    return table.reset_index().drop(columns=["model_rank", "config_rank", "target_rank", "variant_rank"])


def counts(frame: pd.DataFrame) -> dict[str, int]:
    status = frame["status"]
    is_ok = status == "ok"
    return {"cases": len(frame), "ok": int(is_ok.sum()), "failed": int((status == "failed").sum()),
            "unavailable": int((status == "unavailable").sum()),
            "unstable": int((frame["unstable"] & is_ok).sum()),
            "partial_fallback": int((frame["partial_fallback"] & is_ok).sum()),
            "accuracy_fail": int((frame["accuracy_verdict"].isin(BAD_ACCURACY) & is_ok).sum()),
            "models": int(frame["model"].nunique()), "machines": int(frame["machine_key"].nunique())}


@dataclass(frozen=True)
class Pick:
    choice: str
    config: str
    value: float
    speedup: float = math.nan
    speedup_low: float = math.nan
    speedup_high: float = math.nan
    runner_up: str = ""
    margin: float = math.nan
    decisive: bool | None = None
    notes: str = ""


@dataclass(frozen=True)
class Verdict:
    """What a reader of one model wants first: what to use, by how much, and how sure we are."""

    model: str
    latency: Pick | None
    throughput: Pick | None
    cheapest: Pick | None
    confidence: str
    warnings: list[str]


def _confidence(row: pd.Series) -> str:
    if not row["runner_up"]:
        return "Only one eligible candidate was measured."
    margin = f"{row['margin'] * 100:.1f}%"
    if row["decisive"]:
        return (f"Clear: the runner-up ({row['runner_up']}) is {margin} slower and the ranges of their worker "
                "processes' medians do not overlap.")
    if "fewer than 3 processes" in str(row.get("confidence", "")):
        return (f"Undecided: the runner-up ({row['runner_up']}) is {margin} slower, but a case measured in fewer "
                "than 3 worker processes cannot show what a rerun will give; set measure.repeats to 3 or more.")
    return (f"Too close to call: the runner-up ({row['runner_up']}) is only {margin} slower, "
            "within the measurement uncertainty.")


def _best_of(cases: pd.DataFrame, column: str, ascending: bool) -> tuple[pd.Series, pd.Series | None]:
    ranked = cases.sort_values([column, *ORDER], ascending=[ascending] + [True] * len(ORDER), kind="stable")
    ranked = ranked.drop_duplicates(["target_label", "variant"])  # the runner-up is another target/variant
    return ranked.iloc[0], (ranked.iloc[1] if len(ranked) > 1 else None)


def verdicts(frame: pd.DataFrame, baseline: Baseline, picks: pd.DataFrame | None = None) -> list[Verdict]:
    """``picks``: ``fastest(frame, baseline)`` when the caller has it already."""
    picks = fastest(frame, baseline) if picks is None else picks
    speeds = _slim(with_speedups(frame, baseline, eligible(frame)))
    prices = _slim(cost(frame))
    out = []
    for model, cases in frame.groupby("model", sort=False):
        warnings = []
        model_picks = picks[picks["model"] == model] if len(picks) else picks
        latency = throughput = cheapest = None
        confidence = "No case of this model was measured successfully."
        if len(model_picks):
            row = model_picks.sort_values("config_rank").iloc[0]
            latency = Pick(row["choice"], row["config"], row["p50"], row["speedup"], row["speedup_low"],
                           row["speedup_high"], row["runner_up"], row["margin"], row["decisive"], row["notes"])
            confidence = _confidence(row)
        model_speeds = speeds[speeds["model"] == model]
        if len(model_speeds):
            best, runner = _best_of(model_speeds, "samples_per_s", ascending=False)
            throughput = Pick(choice(best), best["config"], best["samples_per_s"], best["throughput_speedup"],
                              runner_up=choice(runner) if runner is not None else "",
                              margin=1 - runner["samples_per_s"] / best["samples_per_s"] if runner is not None
                              else math.nan, notes=best["notes"])
        model_prices = prices[prices["model"] == model]
        if len(model_prices):
            best, runner = _best_of(model_prices, "cost_per_million", ascending=True)
            cheapest = Pick(choice(best), best["config"], best["cost_per_million"],
                            runner_up=choice(runner) if runner is not None else "",
                            margin=runner["cost_per_million"] / best["cost_per_million"] - 1 if runner is not None
                            else math.nan, notes=best["notes"])
        with_baseline = (set(model_picks.loc[model_picks["baseline"].astype(bool), "config"]) if len(model_picks)
                         else set())
        measured = (cases["status"] == "ok") & ~cases["scenario"].isin(LOADGEN)  # serving: see serving()
        missing = [c for c in dict.fromkeys(cases.loc[measured, "config"]) if c not in with_baseline]
        if missing:
            warnings.append(f"baseline {baseline} not measured for {', '.join(missing)}: no speedup there")
        c = counts(cases)
        for key, text in (("failed", "failed"), ("unavailable", "unavailable"), ("unstable", "unstable"),
                          ("partial_fallback", "with partial fallback"), ("accuracy_fail", "failing accuracy")):
            if c[key]:
                warnings.append(f"{c[key]} case{'s' if c[key] > 1 else ''} {text}")
        out.append(Verdict(str(model), latency, throughput, cheapest, confidence, warnings))
    return out
