"""What the results page's table cells show: the dash of a missing value, percentages and
hours, mean ± SD over trials, a metric read at a labeled fraction, and the verdict of a
paired interval (``mtal_jax.paired``; docs/results.md says how verdicts read).
"""

from __future__ import annotations

import math

import numpy as np

from mtal_jax import significance

DASH = "—"


def finite(x):
    """Whether ``x`` is a finite int or float (not None, NaN or infinite)."""
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def pct(x, digits=1, missing="not reached"):
    """A fraction as a percentage (``0.671`` -> ``"67.1 %"``), or ``missing`` when not finite."""
    return f"{100 * x:.{digits}f} %" if finite(x) else missing


def hours(seconds):
    """Seconds in hours from one hour on, else in minutes; ``"n/a"`` for none."""
    if not seconds:
        return "n/a"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def mean_std(values, digits=3):
    """``mean ± SD`` over trials of ``values`` [T] (one trial: its value; none: a dash)."""
    if not len(values):
        return DASH
    if len(values) == 1:  # No spread from one trial.
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def interp(records, strategy, fraction, metric="mdsq"):
    """[T] the metric of each trial of ``strategy`` at ``fraction`` (linear between its
    cycles; trials not covering it are left out)."""
    by_trial = {}
    for r in records:
        if r["strategy"] == strategy and finite(r.get(metric)):
            by_trial.setdefault(r["trial"], []).append((r["labeled_fraction"], r[metric]))
    out = []
    for points in by_trial.values():
        xs, ys = zip(*sorted(points))
        if xs[0] - 1e-9 <= fraction <= xs[-1] + 1e-9:
            out.append(float(np.interp(fraction, xs, ys)))
    return np.asarray(out)


def verdict(stats):
    """``significance.verdict`` of ``stats``' interval; one trial has no interval, so no test."""
    if stats.get("trials", 0) < 2:
        return "one trial: no test"
    return significance.verdict(stats["ci95"])
