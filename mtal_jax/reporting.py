"""Active-learning curves, label-efficiency tables and plots (host side, paper IV-A, IV-D, IV-E).

Input: the result records of an AL experiment, ``records.CycleRecord``s or their JSON
objects (``workdir/results.json``), one per (trial, strategy, cycle)::

    {"trial": 0, "strategy": "ours", "cycle": 2, "labeled_fraction": 0.6,
     "labeled_ids": [...], "mdsq": 0.93, "map": 0.31, "ap50": 0.55, "miou": 0.62}

The metrics come from ``records.RECORD_METRICS`` (mDSQ and the evaluation metrics).

Output: ``summarize`` (mean/std curves over trials, the labeled fraction at which mDSQ
first reaches 95 % of full supervision, savings against random), ``summary_markdown``
(the paper's label-efficiency and Table-I style tables), ``plot_curves`` (Figures 3/4)
and ``write_summary`` (all of it written atomically to a directory).

Conventions: spreads are sample standard deviations over trials (``ddof=1``; 0 with one
trial); fractions are in [0, 1] and printed as percentages; missing or ``None`` metric
values count as NaN and are skipped by the means.
"""

from __future__ import annotations

import collections
import math
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.figure
import numpy as np

from mtal_jax import jsonio, metrics, paired, significance
from mtal_jax import records as records_lib

METRICS = tuple(m.name for m in records_lib.RECORD_METRICS if m.plot)
"""Metrics plotted, in plot order."""

TARGET = metrics.LABEL_EFFICIENCY_TARGET
"""mDSQ level that defines label efficiency (paper IV-A: 95 % of full supervision)."""

label_efficiency = metrics.label_efficiency  # where the summaries' curves are read

_METRIC_TITLES = {m.name: m.title for m in records_lib.RECORD_METRICS}
_ALL_METRICS = records_lib.metric_names(records_lib.RECORD_METRICS)
_BASELINE = "random"
_DASH = "—"


def summarize(
    records: Iterable[Any], *, last_cycle: int | None = None
) -> dict[str, records_lib.StrategySummary]:
    """Per-strategy mean/std curves and label efficiency over trials.

    Args:
      records: result records (see the module docstring).
      last_cycle: the experiment's last cycle as planned (``al.num_cycles`` - 1): a trial
        whose curve has no record of it is still running (default: the largest cycle in
        ``records``, which reads every curve of a run stopped early, all at one cycle, as
        finished).

    Returns:
      ``{strategy: records.StrategySummary}`` in order of first appearance; a summary holds
      ``fractions`` (sorted labeled fractions of the mean curve), ``num_trials`` (trials
      averaged at each fraction), ``means`` / ``stds`` (per ``records.RECORD_METRICS`` name,
      lists aligned with ``fractions``: the mean curve, over the strategy's finished trials
      once one has finished, so that a running trial's early points do not enter the mean
      at some fractions only; ``_averaged``), ``trials`` (trial ids),
      ``le95_mean_curve`` (label efficiency of the mean mDSQ curve), ``le95_per_trial``
      (one per trial, NaN when not reached), ``last_fraction_per_trial`` (the labeled
      fraction of each trial's last point), ``finished_per_trial`` (whether the trial
      has a record of ``last_cycle``),
      ``le95_trials_known`` (trials that reach 95 % or have finished: a running trial that
      has not reached it yet is left out),
      ``le95_trial_mean`` / ``le95_trial_std``
      (over the trials that reach it), ``le95_trials_reached`` and
      ``savings_vs_random`` (random's ``le95_mean_curve`` minus this strategy's; NaN
      when either is NaN or no random run exists), ``reach_random_final`` (labeled
      fraction at which the mean mDSQ curve first reaches random's final mean mDSQ: the
      comparison that still works when no curve reaches 95 %) and
      ``savings_at_random_final`` (random's own ``reach_random_final``, which is earlier
      than its last fraction when its curve plateaus, minus this strategy's; NaN when
      not reached or without random), ``gain_vs_random_per_trial`` /
      ``gain_vs_random_mean`` / ``gain_vs_random_std`` (per trial, the mean over cycles
      1.. of this strategy's mDSQ minus random's in the same trial: a paired comparison,
      NaN without random).
    """
    records = records_lib.as_records(list(records))
    curves = _curves(records)
    last_cycle, last_cycles = _last_cycles(records, last_cycle)
    averaged = _averaged(curves, last_cycles, last_cycle)
    out: dict[str, dict[str, Any]] = {}
    for strategy, trials in curves.items():
        mean_trials = averaged[strategy]
        fractions = sorted({f for curve in mean_trials.values() for f in curve})
        summary: dict[str, Any] = {"fractions": fractions, "trials": list(trials)}
        summary["num_trials"] = [sum(f in c for c in mean_trials.values()) for f in fractions]
        for metric in _ALL_METRICS:
            table = _table(mean_trials, fractions, metric)  # [trials averaged, fractions]
            summary[f"{metric}_mean"] = _nan_mean(table, axis=0).tolist()
            summary[f"{metric}_std"] = _nan_std(table, axis=0).tolist()
        summary["le95_mean_curve"] = label_efficiency(fractions, summary["mdsq_mean"])
        per_trial = []
        for curve in trials.values():
            xs = sorted(curve)
            per_trial.append(label_efficiency(xs, [curve[x].get("mdsq", math.nan) for x in xs]))
        per_trial = np.asarray(per_trial)
        summary["le95_per_trial"] = per_trial.tolist()
        summary["last_fraction_per_trial"] = [max(c, default=math.nan) for c in trials.values()]
        summary["finished_per_trial"] = [last_cycles[strategy, t] >= last_cycle for t in trials]
        summary["le95_trials_reached"] = int(np.isfinite(per_trial).sum())
        summary["le95_trial_mean"] = float(_nan_mean(per_trial[None], axis=1)[0])
        summary["le95_trial_std"] = float(_nan_std(per_trial[None], axis=1)[0])
        out[strategy] = summary
    for summary in out.values():
        summary["le95_trials_known"] = sum(
            math.isfinite(le) or finished
            for le, finished in zip(summary["le95_per_trial"], summary["finished_per_trial"])
        )
    baseline = out.get(_BASELINE, {}).get("le95_mean_curve", math.nan)
    random_final = math.nan
    if _BASELINE in out and out[_BASELINE]["fractions"]:
        random_final = float(out[_BASELINE]["mdsq_mean"][-1])
    for summary in out.values():
        summary["savings_vs_random"] = float(baseline - summary["le95_mean_curve"])
        summary["reach_random_final"] = (
            label_efficiency(summary["fractions"], summary["mdsq_mean"], target=random_final)
            if math.isfinite(random_final)
            else math.nan
        )
    random_reach = out.get(_BASELINE, {}).get("reach_random_final", math.nan)
    for summary in out.values():
        summary["savings_at_random_final"] = float(random_reach - summary["reach_random_final"])
    for strategy, summary in out.items():
        diffs = _paired_gain(curves[strategy], curves.get(_BASELINE, {}))
        summary["gain_vs_random_per_trial"] = diffs.tolist()
        summary["gain_vs_random_mean"] = float(_nan_mean(diffs[None], axis=1)[0])
        summary["gain_vs_random_std"] = float(_nan_std(diffs[None], axis=1)[0])
    return {strategy: records_lib.StrategySummary.from_fields(s) for strategy, s in out.items()}


def _paired_gain(
    trials: Mapping[Any, Mapping[float, Mapping[str, float]]],
    baseline: Mapping[Any, Mapping[float, Mapping[str, float]]],
) -> np.ndarray:
    """[T] per trial: mean mDSQ over the cycles after cycle 0 minus the baseline's, at the
    fractions both curves have (same trial = same initial pool and cycle-0 model, so the
    difference cancels what the trials share); NaN when a trial has no common point."""
    out = []
    for trial, curve in trials.items():
        base = baseline.get(trial, {})
        common = sorted(set(curve) & set(base))[1:]  # drop cycle 0 (shared by both)
        values = [curve[f]["mdsq"] - base[f]["mdsq"] for f in common]
        values = [v for v in values if math.isfinite(v)]
        out.append(float(np.mean(values)) if values else math.nan)
    return np.asarray(out, np.float64)


def summary_markdown(
    records: Iterable[Any],
    fractions_of_interest: Sequence[float] = (0.5, 0.7, 0.8, 0.9),
    *,
    last_cycle: int | None = None,
) -> str:
    """Markdown label-efficiency table and mDSQ-at-fraction table.

    Args:
      records: result records (see the module docstring).
      fractions_of_interest: labeled fractions of the second table's columns; values
        between cycles are interpolated per trial, values outside a trial's range are
        left out (``—`` when no trial covers them).
      last_cycle: the experiment's last cycle as planned (``summarize``).

    Returns:
      Markdown text with two tables.
    """
    records = records_lib.as_records(list(records))
    summaries = summarize(records, last_cycle=last_cycle)
    summary = {k: v.to_json() for k, v in summaries.items()}
    pairs = paired.paired_stats(records, summaries)
    last_cycle, last_cycles = _last_cycles(records, last_cycle)
    curves = _averaged(_curves(records), last_cycles, last_cycle)
    lines = [
        f"## Label efficiency (labeled fraction at {TARGET:.0%} of full-supervision mDSQ)",
        "",
        (
            f"| strategy | trials | labeled fraction at {TARGET:.0%} full mDSQ (mean curve) "
            "| per-trial mean ± std | savings vs random | paired savings per trial [95 % CI] |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for strategy, s in summary.items():
        num_trials = len(s["trials"])
        reached, known = s["le95_trials_reached"], s["le95_trials_known"]
        running = f", {num_trials - known} still running" if known < num_trials else ""
        if reached:
            per_trial = f"{_pct(s['le95_trial_mean'])} ± {_pct(s['le95_trial_std'], unit='pp')}"
            if reached < num_trials:
                per_trial += f" ({reached}/{known} trials reach it{running})"
        else:
            per_trial = f"not reached ({known} finished{running})" if running else "not reached"
        savings = s["savings_vs_random"]
        savings_text = _DASH if math.isnan(savings) else f"{100 * savings:+.1f} pp"
        le = pairs.get(strategy, {}).get("le95")
        paired_text = _DASH
        if le is not None and le["bounded"]["worst"]["trials"]:
            b = le["bounded"]
            paired_text = significance.format_bounded(b["worst"], b["best"])
            paired_text += f" ({b['worst']['trials']} trials where either reaches it)"
        lines.append(
            f"| {strategy} | {num_trials} | {_pct(s['le95_mean_curve'], missing='not reached')} "
            f"| {per_trial} | {savings_text} | {paired_text} |"
        )
    partial = {
        strategy: (len(curves[strategy]), len(s["trials"]))
        for strategy, s in summary.items()
        if len(curves[strategy]) < len(s["trials"])
    }
    if partial:
        counts = ", ".join(f"{k} {n} of {t}" for k, (n, t) in partial.items())
        lines += [
            "",
            (
                "Mean curves, and the table of mDSQ at labeled fractions, average the "
                f"finished trials only ({counts}): a running trial has only its early points."
            ),
        ]
    if _BASELINE in summary:
        final = summary[_BASELINE]["mdsq_mean"][-1]
        last = summary[_BASELINE]["fractions"][-1]
        lines += [
            "",
            (
                f"## Labeled fraction to match random's final mDSQ ({final:.3f} at {last:.0%}, "
                "mean curves)"
            ),
            "",
            "| strategy | labeled fraction | savings vs random |",
            "| --- | --- | --- |",
        ]
        for strategy, s in summary.items():
            reach, saved = s["reach_random_final"], s["savings_at_random_final"]
            saved_text = _DASH if math.isnan(saved) else f"{100 * saved:+.1f} pp"
            lines.append(f"| {strategy} | {_pct(reach, missing='not reached')} | {saved_text} |")
    if pairs:
        lines += [
            "",
            (
                "## Paired gain over random (mean of cycles 1.. minus random's in the same "
                f"trial; mean [{significance.LEVEL:.0%} t interval] over trials)"
            ),
            "",
            "| strategy | trials | mDSQ | mAP | mIoU | mDSQ per trial |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for strategy, p in pairs.items():
            per = ", ".join(
                _DASH if not math.isfinite(g["mdsq"]) else f"{g['mdsq']:+.3f}"
                for g in p["per_trial"]
            )
            cells = [significance.format_interval(p),
                     significance.format_interval(p["map"], 4),
                     significance.format_interval(p["miou"], 4)]  # fmt: skip
            lines.append(f"| {strategy} | {p['trials']} | " + " | ".join(cells) + f" | {per} |")
    header = " | ".join(f"{f:.0%}" for f in fractions_of_interest)
    lines += [
        "",
        "## mDSQ at labeled fractions (mean ± std over trials, linear interpolation)",
        "",
        f"| strategy | {header} |",
        "| --- |" + " --- |" * len(fractions_of_interest),
    ]
    for strategy, trials in curves.items():
        cells = []
        for f in fractions_of_interest:
            values = np.asarray([_interp(curve, f, "mdsq") for curve in trials.values()])
            values = values[np.isfinite(values)]
            cells.append(_DASH if not len(values) else f"{values.mean():.3f} ± {_std(values):.3f}")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(
    records: Iterable[Any], out_dir: str | os.PathLike, *, last_cycle: int | None = None
) -> list[str]:
    """Plots mDSQ, mAP and mIoU against the labeled fraction (paper Figures 3 and 4).

    One line per strategy (mean over trials) with a shaded min-max band over trials; the
    mDSQ plot has a dashed line at the 95 % target.

    Args:
      records: result records (see the module docstring).
      out_dir: directory to write ``mdsq.png``, ``map.png`` and ``miou.png`` into
        (created if missing; files replaced atomically).
      last_cycle: the experiment's last cycle as planned (``summarize``): the lines and
        bands cover a strategy's finished trials once one has finished.

    Returns:
      The three PNG paths, in ``METRICS`` order.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = records_lib.as_records(list(records))
    last_cycle, last_cycles = _last_cycles(records, last_cycle)
    curves = _averaged(_curves(records), last_cycles, last_cycle)
    many = len(curves) > 10  # past the 10 colours of the default cycle: 20, legend outside
    colours = matplotlib.colormaps["tab20" if many else "tab10"].colors
    paths = []
    for metric in METRICS:
        # Figure without pyplot: no global state, no backend switch (Agg canvas).
        fig = matplotlib.figure.Figure(figsize=(7.2 if many else 5.0, 3.6), dpi=100)
        ax = fig.add_subplot()
        ax.set_prop_cycle(color=colours)
        for strategy, trials in curves.items():
            fractions = sorted({f for curve in trials.values() for f in curve})
            table = _table(trials, fractions, metric)  # [trials, fractions]
            x = 100 * np.asarray(fractions)
            finite = np.isfinite(table).any(axis=0)
            if not finite.any():
                continue
            with np.errstate(all="ignore"):
                low = np.nanmin(np.where(np.isfinite(table), table, np.inf), axis=0)
                high = np.nanmax(np.where(np.isfinite(table), table, -np.inf), axis=0)
            (line,) = ax.plot(
                x[finite], _nan_mean(table, axis=0)[finite], marker="o", ms=3, label=strategy
            )
            ax.fill_between(x[finite], low[finite], high[finite], color=line.get_color(), alpha=0.2)
        if metric == "mdsq":
            ax.axhline(
                TARGET, color="black", linestyle="--", linewidth=1, label=f"{TARGET:.0%} of full"
            )
        ax.set_xlabel("labeled fraction of the pool (%)")
        ax.set_ylabel(_METRIC_TITLES[metric])
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0] and many:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{metric}.png"
        jsonio.write_file_atomic(
            str(path), lambda f, fig=fig: fig.savefig(f, format="png"), binary=True
        )
        paths.append(str(path))
    return paths


def write_summary(
    records: Iterable[Any], out_dir: str | os.PathLike, *, last_cycle: int | None = None
) -> list[str]:
    """Writes ``summary.md``, ``summary.json``, ``paired.json`` (``paired.paired_stats``:
    gains over random with 95 % intervals, label-efficiency savings) and the three plots
    into ``out_dir``.

    Args:
      records: result records (see the module docstring).
      out_dir: output directory (created if missing). Every file is written to a
        temporary file in the same directory and renamed over (``jsonio.write_file_atomic``).
      last_cycle: the experiment's last cycle as planned (``al.num_cycles`` - 1; default:
        the largest in ``records``): label efficiency reads a curve without it as still
        running, not as one that fails to reach 95 % (``summarize``).

    Returns:
      Paths written: ``summary.md``, ``summary.json``, ``paired.json``, then the PNGs.
    """
    records = list(records)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = summary_markdown(records, last_cycle=last_cycle)
    summaries = summarize(records, last_cycle=last_cycle)
    summary = {k: v.to_json() for k, v in summaries.items()}
    md_path, json_path = out_dir / "summary.md", out_dir / "summary.json"
    paired_path = out_dir / "paired.json"
    jsonio.write_file_atomic(str(md_path), lambda f: f.write(markdown))
    jsonio.write_atomic(str(json_path), summary)  # strict JSON: NaN -> null
    jsonio.write_atomic(str(paired_path), paired.paired_stats(records, summaries))
    return [str(md_path), str(json_path), str(paired_path)] + plot_curves(
        records, out_dir, last_cycle=last_cycle
    )


# ---------------------------------------------------------------------------- helpers


def _curves(
    records: Iterable[Any],
) -> dict[str, dict[Any, dict[float, dict[str, float]]]]:
    """Groups records as ``{strategy: {trial: {fraction: {metric: value}}}}``.

    Fractions are rounded to 6 decimals so that equal cycles of different trials align.
    """
    curves: dict[str, dict[Any, dict[float, dict[str, float]]]] = collections.defaultdict(dict)
    for record in records_lib.as_records(list(records)):
        trial = curves[record.strategy].setdefault(record.trial, {})
        fraction = round(record.labeled_fraction, 6)
        trial[fraction] = {m: _float(record.metrics.get(m)) for m in _ALL_METRICS}
    return dict(curves)


def _last_cycles(
    records: Sequence[records_lib.CycleRecord], last_cycle: int | None
) -> tuple[int, dict[tuple[str, Any], int]]:
    """The planned last cycle (default: the largest in ``records``) and each
    ``(strategy, trial)``'s last recorded cycle."""
    if last_cycle is None:
        last_cycle = max((r.cycle for r in records), default=0)
    last_cycles: dict[tuple[str, Any], int] = {}
    for r in records:
        key = (r.strategy, r.trial)
        last_cycles[key] = max(last_cycles.get(key, r.cycle), r.cycle)
    return last_cycle, last_cycles


def _averaged(
    curves: Mapping[str, Mapping[Any, Mapping[float, Mapping[str, float]]]],
    last_cycles: Mapping[tuple[str, Any], int],
    last_cycle: int,
) -> dict[str, dict[Any, Mapping[float, Mapping[str, float]]]]:
    """The trials each strategy's mean curve averages: those that have reached
    ``last_cycle``, or all of them while none has.

    A trial still running has only its early points; averaging it in would mix different
    sets of trials at different fractions (a mean curve that steps where the running
    trial's last point is, and label efficiency read off it).
    """
    out = {}
    for strategy, trials in curves.items():
        finished = {t: c for t, c in trials.items() if last_cycles[strategy, t] >= last_cycle}
        out[strategy] = finished or dict(trials)
    return out


def _table(
    trials: Mapping[Any, Mapping[float, Mapping[str, float]]],
    fractions: Sequence[float],
    metric: str,
) -> np.ndarray:
    """[num_trials, num_fractions] float64 values, NaN where a trial lacks a point."""
    return np.asarray(
        [[curve.get(f, {}).get(metric, math.nan) for f in fractions] for curve in trials.values()],
        np.float64,
    ).reshape(len(trials), len(fractions))


def _interp(curve: Mapping[float, Mapping[str, float]], fraction: float, metric: str) -> float:
    """Metric of one trial at ``fraction`` (linear between points, NaN outside the range)."""
    xs = np.asarray([x for x in sorted(curve) if math.isfinite(curve[x][metric])])
    if not len(xs) or not xs[0] - 1e-9 <= fraction <= xs[-1] + 1e-9:
        return math.nan
    ys = np.asarray([curve[x][metric] for x in xs])
    return float(np.interp(fraction, xs, ys))


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _nan_mean(table: np.ndarray, axis: int) -> np.ndarray:
    """Mean over finite entries; NaN where there is none (no warning)."""
    finite = np.isfinite(table)
    count = finite.sum(axis=axis)
    total = np.where(finite, table, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nan_std(table: np.ndarray, axis: int) -> np.ndarray:
    """Sample std (ddof=1) over finite entries; 0 for one entry, NaN for none."""
    finite = np.isfinite(table)
    count = finite.sum(axis=axis)
    mean = np.expand_dims(_nan_mean(table, axis), axis)
    sq = np.where(finite, (table - np.where(finite, mean, 0.0)) ** 2, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(sq / np.maximum(count - 1, 1))
    return np.where(count > 0, std, np.nan)


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _pct(value: float, missing: str = _DASH, unit: str = "%") -> str:
    return missing if not math.isfinite(value) else f"{100 * value:.1f} {unit}"
