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

A verdict "not distinguishable from noise" is only as strong as the trials behind it:
``t_test_power`` is the chance that the same t test detects a given true mean,
``detectable_effect`` the smallest mean it detects with 80 % probability, and
``trials_needed`` the trials a given mean would need (planning an experiment's size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.special
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


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """Difference of the means of two independent samples, ``mean(a) - mean(b)``, with
    Welch's t interval and two-sided p-value (no equal-variance assumption; degrees of
    freedom by Welch-Satterthwaite). For two groups of trials, e.g. the trials an
    experiment added later against its first ones.

    Args:
      a, b: per-trial values of each group (NaN entries are left out).
      level: confidence level.

    Returns:
      ``{"mean", "ci95": [lo, hi], "p_value", "trials": [len(a), len(b)]}``: NaN mean when
      a group is empty, NaN bounds and p when a group has fewer than two values; without
      any spread, the interval is the difference itself and p is 0 (1 when it is 0).

    Examples:
      >>> r = welch_interval([1.0, 2.0, 3.0], [0.0, 0.0])  # b has no spread: a's t alone
      >>> round(r["mean"], 3), [round(v, 3) for v in r["ci95"]], r["trials"]
      (2.0, [-0.484, 4.484], [3, 2])
    """
    va, vb = (
        np.asarray([x for x in v if x is not None and math.isfinite(x)], np.float64) for v in (a, b)
    )
    na, nb = len(va), len(vb)
    diff = float(va.mean() - vb.mean()) if na and nb else math.nan
    out = {"mean": diff, "ci95": [math.nan, math.nan], "p_value": math.nan, "trials": [na, nb]}
    if na < 2 or nb < 2:
        return out
    sa, sb = float(va.var(ddof=1)) / na, float(vb.var(ddof=1)) / nb
    se = math.sqrt(sa + sb)
    if se == 0:
        return dict(out, ci95=[diff, diff], p_value=0.0 if diff != 0 else 1.0)
    df = (sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1))
    half = float(scipy.stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * scipy.stats.t.sf(abs(diff) / se, df))
    return dict(out, ci95=[diff - half, diff + half], p_value=p)


POWER = 0.8
"""Power at which ``detectable_effect`` and ``trials_needed`` plan (the usual 80 %)."""


def t_test_power(effect: float, sd: float, n: int, level: float = LEVEL) -> float:
    """Probability that the two-sided one-sample t test at ``level`` rejects mean 0 when
    ``n`` per-trial values have true mean ``effect`` and standard deviation ``sd``.

    The t statistic then follows the noncentral t distribution with ``n - 1`` degrees of
    freedom and noncentrality ``effect * sqrt(n) / sd``. NaN for ``n < 2`` or a ``sd`` that
    is not finite and positive (with no spread the test is degenerate).

    Examples:
      >>> round(t_test_power(1.0, 1.0, 10), 3)  # Cohen's d = 1, 10 trials
      0.803
      >>> round(t_test_power(0.0, 1.0, 10), 3)  # no effect: the test's level
      0.05
    """
    if n < 2 or not (math.isfinite(sd) and sd > 0) or not math.isfinite(effect):
        return math.nan
    df = n - 1
    crit = float(scipy.stats.t.ppf(0.5 + level / 2, df))
    nc = effect * math.sqrt(n) / sd
    power = float(scipy.stats.nct.sf(crit, df, nc) + scipy.stats.nct.cdf(-crit, df, nc))
    return power if math.isfinite(power) else _two_tails(crit, df, nc)


def _two_tails(crit: float, df: int, nc: float) -> float:
    """P(|T| > crit) for T noncentral t (``df``, ``nc``), where scipy's ``nct`` gives NaN (far
    in its tails: a large noncentrality on few degrees of freedom). T = (Z + nc) /
    sqrt(V / df) with Z standard normal and V ~ chi2(df), so the probability is the mean
    over V of two normal tails.

    The integral over V is split where ``scipy.stats.chi2.expect`` splits it (at V's 5 % and
    95 % quantiles), with the integrand written with ``scipy.special`` on scalars: the same
    values as ``expect`` to ~1e-14, about 70 times faster (``expect`` calls the frozen
    distribution's ``pdf`` and ``norm``'s methods at every point).
    """
    log_norm = -(df / 2) * math.log(2) - math.lgamma(df / 2)  # chi2(df) density's constant

    def integrand(v: float) -> float:
        if v <= 0:
            return 0.0
        c = crit * math.sqrt(v / df)
        density = math.exp(log_norm + (df / 2 - 1) * math.log(v) - v / 2)
        return float(scipy.special.ndtr(nc - c) + scipy.special.ndtr(-c - nc)) * density

    lo, hi = (float(q) for q in scipy.stats.chi2.ppf([0.05, 0.95], df))
    pieces = ((0.0, lo), (lo, hi), (hi, math.inf))
    return float(min(1.0, sum(scipy.integrate.quad(integrand, a, b)[0] for a, b in pieces)))


def _check_power(power: float, level: float) -> None:
    if not 1 - level < power < 1:
        raise ValueError(f"power must be in ({1 - level}, 1), got {power}")


def detectable_effect(sd: float, n: int, power: float = POWER, level: float = LEVEL) -> float:
    """The smallest true mean that ``n`` trials detect with probability ``power`` (two-sided
    t test at ``level``) when the per-trial values have standard deviation ``sd``: what a
    verdict "not distinguishable from noise" can rule out. NaN where ``t_test_power`` is.

    Examples:
      >>> round(detectable_effect(1.0, 10), 3)
      0.996
    """
    _check_power(power, level)
    if math.isnan(t_test_power(sd, sd, n, level)):
        return math.nan
    # In units of sd (the power depends on effect / sd only): exact scaling, any sd.
    hi = 1.0
    while t_test_power(hi, 1.0, n, level) < power:
        hi *= 2
    unit = scipy.optimize.brentq(
        lambda e: t_test_power(e, 1.0, n, level) - power, 0.0, hi, xtol=1e-12
    )
    return float(sd * unit)


def trials_needed(
    effect: float, sd: float, power: float = POWER, level: float = LEVEL, max_trials: int = 100_000
) -> int | None:
    """The fewest trials (at least 2) whose two-sided t test at ``level`` detects a true
    mean ``effect`` with probability ``power`` when the per-trial values have standard
    deviation ``sd``; None when ``effect`` is 0, the inputs are not finite, or more than
    ``max_trials`` would be needed.

    Examples:
      >>> trials_needed(1.0, 1.0), trials_needed(0.5, 1.0)  # Cohen's d = 1 and 0.5
      (10, 34)
    """
    _check_power(power, level)
    if effect == 0 or math.isnan(t_test_power(effect, sd, 2, level)):
        return None
    if t_test_power(effect, sd, max_trials, level) < power:
        return None
    lo, hi = 1, 2  # power grows with n: double, then bisect (lo fails, hi passes)
    while t_test_power(effect, sd, hi, level) < power:
        lo, hi = hi, min(2 * hi, max_trials)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if t_test_power(effect, sd, mid, level) >= power else (mid, hi)
    return hi


def over_looks(p_value: float | None, looks: int) -> float:
    """A p-value of a test read at ``looks`` planned looks at accumulating trials (an
    experiment extended after a look at its first trials), adjusted by Bonferroni:
    ``min(1, looks * p)``.

    Rejecting when the adjusted value is below alpha keeps the probability that any of the
    looks rejects a true null hypothesis at most alpha, whatever rule decided to go on after
    each look and however the looks' tests depend on one another (they share trials);
    group-sequential boundaries are less conservative but need the rule fixed in advance.

    Args:
      p_value: the test's p-value at the look read (NaN or None: no test).
      looks: planned looks, this one included (>= 1).

    Returns:
      The adjusted p-value (NaN without a test).

    Raises:
      ValueError: ``looks`` < 1.

    Examples:
      >>> round(over_looks(0.008, 3), 6), over_looks(0.5, 3), math.isnan(over_looks(None, 3))
      (0.024, 1.0, True)
    """
    if looks < 1:
        raise ValueError(f"looks must be at least 1, got {looks}")
    if p_value is None or not math.isfinite(p_value):
        return math.nan
    return min(1.0, looks * float(p_value))


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
