"""Paired comparisons of strategies over trials, with 95 % t confidence intervals (host side).

All strategies of a trial share its initial pool and its cycle-0 model (paper IV-A), so
the difference between two strategies *in the same trial* cancels what the trial's
initial pool and cycle-0 training contribute. The gain of a strategy over a baseline in
one trial is the mean, over cycles 1..K (K the last cycle of the experiment), of the
strategy's metric minus the baseline's at the same cycle; over the trials that have every
cycle 1..K for both, the gains give a mean, a 95 % confidence interval from Student's t
distribution and its p-value (``significance.t_interval``; one trial gives no interval:
``NaN``, ``null`` in JSON).

``paired_stats`` gives this for every strategy against random (mDSQ at the top level, mAP
and mIoU beside it) and, from the ``reporting.summarize`` summaries, the label efficiency
at 95 % of the reference mDSQ per trial with its paired savings against random (random's
fraction minus the strategy's in the same trial: positive = fewer labels).
``significance`` reads the intervals as verdicts and adjusts their p-values (Holm).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mtal_jax import metrics, significance
from mtal_jax import records as records_lib

METRICS = ("mdsq", "map", "miou")
"""Metrics compared in pairs; the first is the one at the top level of ``paired_stats``."""

BASELINE = "random"


def _by_trial(records: Iterable[Any]) -> dict[str, dict[Any, dict[int, dict[str, float]]]]:
    """``{strategy: {trial: {cycle: {metric: value}}}}``."""
    out: dict[str, dict[Any, dict[int, dict[str, float]]]] = collections.defaultdict(dict)
    for r in records_lib.as_records(list(records)):
        out[r.strategy].setdefault(r.trial, {})[r.cycle] = dict(r.metrics)
    return dict(out)


def paired_gain(
    records: Iterable[Any],
    strategy: str,
    baseline: str = BASELINE,
    *,
    last_cycle: int | None = None,
) -> dict[str, Any]:
    """The per-trial paired gain of ``strategy`` over ``baseline`` and its t interval.

    Args:
      records: result records (``records.CycleRecord`` or their JSON objects).
      strategy: the strategy compared.
      baseline: the strategy it is compared with, in the same trials.
      last_cycle: K, the last cycle of the comparison (default: the largest cycle in
        ``records``). A trial counts only when both strategies have every cycle 1..K in it
        (trials still running are listed in ``incomplete_trials``).

    Returns:
      ``{"baseline", "cycles": [1..K], "mean", "ci95", "trials", "p_value"}`` for mDSQ,
      the same under ``"map"`` and ``"miou"``, ``"per_trial"`` (``[{"trial", "mdsq", "map",
      "miou"}]``, the gains) and ``"incomplete_trials"``.
    """
    records = records_lib.as_records(list(records))
    data = _by_trial(records)
    if last_cycle is None:
        last_cycle = max((r.cycle for r in records), default=0)
    cycles = list(range(1, last_cycle + 1))
    mine, base = data.get(strategy, {}), data.get(baseline, {})
    per_trial, incomplete = [], []
    for trial in mine:
        if trial not in base:
            continue
        if not cycles or not all(c in mine[trial] and c in base[trial] for c in cycles):
            incomplete.append(trial)
            continue
        gains = {"trial": trial}
        for m in METRICS:
            diffs = [mine[trial][c][m] - base[trial][c][m] for c in cycles]
            gains[m] = float(np.mean(diffs)) if all(map(math.isfinite, diffs)) else math.nan
        per_trial.append(gains)
    out: dict[str, Any] = {"baseline": baseline, "cycles": cycles}
    out.update(significance.t_interval([g[METRICS[0]] for g in per_trial]))
    for m in METRICS[1:]:
        out[m] = significance.t_interval([g[m] for g in per_trial])
    out["per_trial"] = per_trial
    out["incomplete_trials"] = incomplete
    return out


def label_efficiency_savings(
    summaries: Mapping[str, records_lib.StrategySummary], strategy: str, baseline: str = BASELINE
) -> dict[str, Any]:
    """Label efficiency at 95 % of the reference mDSQ (paper IV-A) and savings against
    ``baseline``, from ``reporting.summarize``'s summaries.

    Returns:
      ``{"mean_curve"`` (the fraction at which the strategy's mean mDSQ curve reaches 95 %,
      NaN when it does not), ``"baseline_mean_curve"``, ``"savings_mean_curve"`` (the
      paper's "savings": the baseline's minus the strategy's), ``"per_trial"``
      (``[{"trial", "le95", "baseline_le95", "savings"}]`` over the trials both ran;
      NaN where either curve does not reach 95 %), ``"savings_mean"``, ``"savings_ci95"``,
      ``"savings_trials"``, ``"savings_p"`` (the t interval and test over the trials where
      both reach it), ``"trials_reached"`` (trials where the strategy reaches it) and
      ``"bounded"``: the savings over the trials where at least one of the two reaches 95 %,
      a curve that does not counted as reaching it somewhere between its last labeled
      fraction and 100 %: ``{"per_trial": [{"trial", "worst", "best"}], "worst", "best"}``
      (t intervals at the end least and most favourable to the strategy;
      ``significance.bounded_verdict`` reads them). Keeping only the trials where both reach
      it would keep those where the baseline did well. Only trials whose curves both
      have finished count (``StrategySummary.finished_per_trial``, from
      ``reporting.summarize``'s ``last_cycle``): a curve still running has not failed to
      reach 95 % (``"incomplete_trials"`` lists those left out).
    """
    mine = summaries[strategy]
    base = summaries.get(baseline)
    incomplete = _unfinished(mine, base)
    base_le = dict(zip(base.trials, base.le95_per_trial)) if base is not None else {}
    per_trial = []
    for trial, le in zip(mine.trials, mine.le95_per_trial):
        if trial in base_le and trial not in incomplete:
            b = base_le[trial]
            per_trial.append({"trial": trial, "le95": le, "baseline_le95": b, "savings": b - le})
    stats = significance.t_interval([p["savings"] for p in per_trial])
    base_curve = base.le95_mean_curve if base is not None else math.nan
    bounded = _bounded_savings(mine, base) if base is not None else []
    return {
        "bounded": {
            "per_trial": bounded,
            "worst": significance.t_interval([p["worst"] for p in bounded]),
            "best": significance.t_interval([p["best"] for p in bounded]),
        },
        "mean_curve": mine.le95_mean_curve,
        "baseline_mean_curve": base_curve,
        "savings_mean_curve": base_curve - mine.le95_mean_curve,
        "per_trial": per_trial,
        "savings_mean": stats["mean"],
        "savings_ci95": stats["ci95"],
        "savings_trials": stats["trials"],
        "savings_p": stats["p_value"],
        "trials_reached": mine.le95_trials_reached,
        "incomplete_trials": sorted(incomplete, key=str),
    }


def _unfinished(
    mine: records_lib.StrategySummary, base: records_lib.StrategySummary | None
) -> set[Any]:
    """Trials of ``mine`` or ``base`` whose curve has not reached the experiment's last
    cycle (``StrategySummary.finished_per_trial``: a trial still running)."""
    return {
        t
        for s in (mine, base)
        if s is not None
        for t, finished in zip(s.trials, s.finished_per_trial)
        if not finished
    }


def _bounded_savings(
    mine: records_lib.StrategySummary, base: records_lib.StrategySummary
) -> list[dict[str, Any]]:
    """Per trial where ``mine`` or ``base`` reaches 95 %: the baseline's fraction minus the
    strategy's at the end least (``worst``) and most (``best``) favourable to the strategy,
    an unreached curve reaching it in (its last fraction, 1]."""
    last_mine, last_base = max(mine.fractions, default=1.0), max(base.fractions, default=1.0)
    base_le = dict(zip(base.trials, base.le95_per_trial))
    incomplete = _unfinished(mine, base)
    out = []
    for trial, le in zip(mine.trials, mine.le95_per_trial):
        if trial not in base_le or trial in incomplete:
            continue
        if not (math.isfinite(le) or math.isfinite(base_le[trial])):
            continue
        b = base_le[trial]
        a_lo, a_hi = (le, le) if math.isfinite(le) else (last_mine, 1.0)
        b_lo, b_hi = (b, b) if math.isfinite(b) else (last_base, 1.0)
        out.append({"trial": trial, "worst": b_lo - a_hi, "best": b_hi - a_lo})
    return out


def match_final_savings(
    records: Iterable[Any],
    strategy: str,
    baseline: str = BASELINE,
    *,
    last_cycle: int | None = None,
) -> dict[str, Any]:
    """Labels saved, per trial, to reach the baseline's final mDSQ: the paired form of label
    efficiency at a level both can reach, for when no curve reaches 95 % of the reference.

    In each trial where both strategies have every cycle 0..K: the target is the baseline's
    mDSQ at cycle K in that trial; each curve's labeled fraction at which it first reaches
    the target is read as label efficiency is (``metrics.label_efficiency``, linear between
    cycles; the baseline's is at most its last fraction, earlier when its curve was
    already there); the savings are the baseline's fraction minus the strategy's (positive:
    fewer labels). A strategy that never reaches the target within the run counts as
    reaching it at 100 % labeled (``fraction`` NaN, ``censored`` True): there every
    strategy has labeled the whole pool and trains as the reference does, so it would reach
    the target by then, and its true savings in that trial are at least what is counted;
    the interval errs against the strategy, never for it (leaving such trials out would keep
    only the strategy's good ones). It reaches it after its last cycle, so its savings
    there are below ``savings_best`` (the baseline's fraction minus the strategy's last),
    and ``best_case`` is the interval with every such trial at that end: a claim holds, or
    fails, when it does at both ends (``significance.bounded_verdict``). ``reached`` counts
    the trials where it reaches the target.

    Returns:
      ``{"baseline", "last_cycle": K, "per_trial": [{"trial", "target", "fraction",
      "baseline_fraction", "savings", "savings_best", "censored"}], "mean", "ci95",
      "trials", "p_value"`` (the t interval and test of the savings) ``, "best_case"``
      (the same of ``savings_best``) ``, "reached", "compared"}`` (trials where the
      strategy reaches the target / trials compared).

    Examples:
      >>> rec = lambda s, c, f, v: {"trial": 0, "strategy": s, "cycle": c,
      ...     "labeled_fraction": f, "labeled_ids": [], "mdsq": v, "map": 0, "miou": 0}
      >>> rs = [rec("random", 0, .4, .7), rec("random", 1, .5, .8), rec("random", 2, .6, .9),
      ...       rec("ours", 0, .4, .7), rec("ours", 1, .5, .95), rec("ours", 2, .6, .97)]
      >>> out = match_final_savings(rs, "ours")
      >>> round(out["per_trial"][0]["fraction"], 3), round(out["mean"], 3), out["reached"]
      (0.48, 0.12, 1)
    """
    records = records_lib.as_records(list(records))
    if last_cycle is None:
        last_cycle = max((r.cycle for r in records), default=0)
    cycles = range(last_cycle + 1)
    curves: dict[str, dict[Any, dict[int, tuple[float, float]]]] = collections.defaultdict(dict)
    for r in records:
        point = (r.labeled_fraction, r.metrics.get("mdsq", math.nan))
        curves[r.strategy].setdefault(r.trial, {})[r.cycle] = point
    mine, base = curves.get(strategy, {}), curves.get(baseline, {})
    per_trial = []
    for trial, curve in mine.items():
        other = base.get(trial, {})
        if not all(c in curve and c in other for c in cycles):
            continue
        target = other[last_cycle][1]
        if not math.isfinite(target):
            continue
        fraction, baseline_fraction = (
            metrics.label_efficiency([p[0] for p in c.values()], [p[1] for p in c.values()], target)
            for c in (curve, other)
        )  # fmt: skip
        censored = not math.isfinite(fraction)
        per_trial.append(
            {
                "trial": trial,
                "target": float(target),
                "fraction": fraction,
                "baseline_fraction": baseline_fraction,
                "savings": baseline_fraction - (1.0 if censored else fraction),
                "savings_best": baseline_fraction
                - (curve[last_cycle][0] if censored else fraction),
                "censored": censored,
            }
        )
    out: dict[str, Any] = {"baseline": baseline, "last_cycle": last_cycle, "per_trial": per_trial}
    out.update(significance.t_interval([p["savings"] for p in per_trial]))
    out["best_case"] = significance.t_interval([p["savings_best"] for p in per_trial])
    out["reached"] = sum(math.isfinite(p["fraction"]) for p in per_trial)
    out["compared"] = len(per_trial)
    return out


def paired_stats(
    records: Iterable[Any],
    summaries: Mapping[str, records_lib.StrategySummary] | None = None,
    baseline: str = BASELINE,
) -> dict[str, dict[str, Any]]:
    """``paired.json``: for every strategy but ``baseline``, ``paired_gain`` against it,
    ``match_final_savings`` under ``"match_final"`` and, with ``summaries``, its label
    efficiency and savings under ``"le95"``.

    Returns:
      ``{}`` without a ``baseline`` run, else ``{strategy: {...}}`` in record order.
    """
    records = records_lib.as_records(list(records))
    names = list(dict.fromkeys(r.strategy for r in records))
    if baseline not in names:
        return {}
    out = {}
    for name in names:
        if name == baseline:
            continue
        out[name] = paired_gain(records, name, baseline)
        out[name]["match_final"] = match_final_savings(records, name, baseline)
        if summaries is not None:
            out[name]["le95"] = label_efficiency_savings(summaries, name, baseline)
    return out
