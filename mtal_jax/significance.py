"""Student's t intervals and tests over trials, and the verdicts they give claims (host side).

A claim about a difference (a strategy's paired gain over random, its labels saved, a
correlation between models) is read from its per-trial values: their mean and a 95 %
confidence interval from Student's t distribution,
``mean +- t(0.975, n - 1) * std / sqrt(n)`` (sample std, ``ddof=1``). One trial gives no
interval (``NaN``, ``null`` in JSON). ``verdict`` turns an interval into the plain reading
of a claim (``bounded_verdict`` when the per-trial values are known only within bounds).

Each interval comes with the two-sided p-value of the same t test (``p_value``: below 0.05
exactly when the interval excludes 0). A page that reads many claims at 95 % each expects
some to exclude 0 by chance; ``holm`` adjusts a family of p-values (Holm 1979) so that the
chance of any false verdict in the family stays at 5 %. ``format_p``, ``format_interval``
and ``format_bounded`` write them into tables. The paired comparisons of strategies that
use them are in ``paired`` (docs/design.md, section 6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats

LEVEL = 0.95
"""Confidence level of the intervals."""

REPRODUCED = "reproduced"
CONTRADICTED = "contradicted"
NOT_DISTINGUISHABLE = "not distinguishable from noise at this power"


def t_interval(values: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """Mean and two-sided t confidence interval of the finite ``values``.

    Args:
      values: [T] per-trial values (NaN entries are left out).
      level: confidence level.

    Returns:
      ``{"mean": float, "ci95": [lo, hi], "trials": n, "p_value": p}``: NaN mean without
      values, NaN bounds and p with fewer than two; ``p_value`` is the two-sided p of the
      one-sample t test of mean 0 (``t_test_p``).

    Examples:
      >>> r = t_interval([1.0, 3.0])  # mean 2, std sqrt(2), t(0.975, 1) = 12.706
      >>> [round(v, 3) for v in r["ci95"]]
      [-10.706, 14.706]
    """
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci95": [math.nan, math.nan], "trials": n, "p_value": math.nan}
    half = float(scipy.stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci95": [mean - half, mean + half], "trials": n, "p_value": t_test_p(v)}


def t_test_p(values: Sequence[float]) -> float:
    """Two-sided p-value of the one-sample t test that the finite ``values`` have mean 0.

    ``NaN`` with fewer than two values; with no spread, 0 for a nonzero mean and 1 for a
    zero one (the t statistic is then infinite or undefined).

    Examples:
      >>> round(t_test_p([1.0, 2.0, 6.0]), 4)  # t = 3 / (sqrt(7) / sqrt(3)) = 1.964, 2 df
      0.1885
    """
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if len(v) < 2:
        return math.nan
    if np.ptp(v) == 0:
        return 0.0 if v[0] != 0 else 1.0
    t = float(v.mean()) / (float(v.std(ddof=1)) / math.sqrt(len(v)))
    return float(2 * scipy.stats.t.sf(abs(t), len(v) - 1))


def holm(p_values: Mapping[Any, float]) -> dict[Any, float]:
    """Holm's step-down adjustment of a family of p-values (Holm 1979).

    The m finite p-values, in increasing order p_(1) <= ... <= p_(m), become
    ``min(1, max_{j <= i} (m - j + 1) p_(j))``; rejecting where the adjusted value is below
    alpha keeps the probability of any false rejection in the family at most alpha, whatever
    the dependence between the tests. Entries that are not finite (no test) are returned
    as NaN and do not count in m.

    Args:
      p_values: claim -> p-value (NaN or None: no test).

    Returns:
      claim -> adjusted p-value, same keys.

    Examples:
      >>> out = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": float("nan")})
      >>> [round(out[k], 2) for k in "abc"], math.isnan(out["d"])
      ([0.03, 0.06, 0.06], True)
    """
    finite = {k: float(p) for k, p in p_values.items() if p is not None and math.isfinite(p)}
    order = sorted(finite, key=finite.get)
    m, running, out = len(order), 0.0, {k: math.nan for k in p_values}
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * finite[k]))
        out[k] = running
    return out


def verdict(ci95: Sequence[float], direction: int = 1) -> str:
    """The reading of a claim "the difference has the sign of ``direction``" from its
    interval: ``reproduced`` when the interval excludes 0 on that side, ``contradicted``
    when it excludes 0 on the other side, otherwise not distinguishable from noise (also
    without an interval).

    Examples:
      >>> verdict([0.01, 0.05]), verdict([0.01, 0.05], direction=-1), verdict([-0.01, 0.05])
      ('reproduced', 'contradicted', 'not distinguishable from noise at this power')
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be 1 or -1, got {direction}")
    lo, hi = (math.nan if x is None else float(x) for x in ci95)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return NOT_DISTINGUISHABLE
    if lo > 0 or hi < 0:
        return REPRODUCED if (lo > 0) == (direction > 0) else CONTRADICTED
    return NOT_DISTINGUISHABLE


def bounded_verdict(
    worst: Mapping[str, Any], best: Mapping[str, Any], direction: int = 1
) -> tuple[str, float]:
    """The reading of a claim whose per-trial values are known only within bounds (a curve
    that does not reach a level within the run reaches it somewhere after its last cycle):
    ``verdict`` of the interval at each end (``worst``: every such trial at the end least
    favourable to the strategy; ``best``: at the most favourable), reproduced or
    contradicted only when both agree. The p-value is the larger of the two when their
    means lie on one side of 0 (both tests must reject: an intersection-union test), else 1.

    Examples:
      >>> w = {"ci95": [-0.147, -0.001], "mean": -0.074, "p_value": 0.048}
      >>> b = {"ci95": [-0.011, 0.023], "mean": 0.006, "p_value": 0.38}
      >>> bounded_verdict(w, b)
      ('not distinguishable from noise at this power', 1.0)
    """
    v_w, v_b = verdict(worst["ci95"], direction), verdict(best["ci95"], direction)
    means = [m if m is not None else math.nan for m in (worst["mean"], best["mean"])]
    ps = [p if p is not None else math.nan for p in (worst["p_value"], best["p_value"])]
    if not all(math.isfinite(x) for x in means + ps):
        return NOT_DISTINGUISHABLE, math.nan
    one_side = (means[0] > 0) == (means[1] > 0) and means[0] != 0 and means[1] != 0
    return (v_w if v_w == v_b else NOT_DISTINGUISHABLE), (max(ps) if one_side else 1.0)


def format_p(p: float | None) -> str:
    """A p-value for tables: three decimals, ``<0.001`` below that, ``—`` without a test.

    Examples:
      >>> format_p(0.0312), format_p(2e-5), format_p(float("nan"))
      ('0.031', '<0.001', '—')
    """
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_interval(stats: Mapping[str, Any], digits: int = 3, scale: float = 1.0) -> str:
    """``+0.012 [-0.004, +0.028]`` (mean and 95 % interval; ``—`` without a mean; the
    interval is left out with fewer than two trials)."""
    mean = stats.get("mean", math.nan)
    mean = math.nan if mean is None else mean
    if not math.isfinite(mean):
        return "—"
    lo, hi = (math.nan if x is None else x for x in stats.get("ci95", [math.nan, math.nan]))
    text = f"{scale * mean:+.{digits}f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f" [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]"
    return text


def format_bounded(worst: Mapping[str, Any], best: Mapping[str, Any]) -> str:
    """Savings in pp (``paired.match_final_savings``, ``paired.label_efficiency_savings``'
    ``bounded``): the reading least favourable to the strategy, and the most favourable
    beside it when trials that do not reach the level make them differ (``bounded_verdict``).

    Examples:
      >>> w = {"mean": -0.074, "ci95": [-0.147, -0.001]}
      >>> format_bounded(w, {"mean": 0.006, "ci95": [-0.011, 0.023]})
      '-7.4 [-14.7, -0.1] pp (unreached trials at best: +0.6 [-1.1, +2.3] pp)'
    """
    text = f"{format_interval(worst, 1, 100)} pp"
    if format_interval(best, 1, 100) != format_interval(worst, 1, 100):
        text += f" (unreached trials at best: {format_interval(best, 1, 100)} pp)"
    return text
