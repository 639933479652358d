"""Tests of mtal_jax.significance: t intervals and tests, Holm's adjustment, verdicts."""

import itertools
import math

import pytest

from mtal_jax import significance

T_0975_2 = 4.302652730  # Student t, 97.5 % quantile, 2 degrees of freedom


def test_t_interval_hand_computed():
    r = significance.t_interval([1.0, 2.0, 6.0])  # mean 3, std sqrt(7), n 3
    half = T_0975_2 * math.sqrt(7) / math.sqrt(3)
    assert r["mean"] == pytest.approx(3.0) and r["trials"] == 3
    assert r["ci95"] == pytest.approx([3 - half, 3 + half])
    r = significance.t_interval([0.5, float("nan")])  # NaN left out: one value, no interval
    assert r["mean"] == 0.5 and r["trials"] == 1 and all(math.isnan(x) for x in r["ci95"])
    assert math.isnan(significance.t_interval([])["mean"])


def test_t_test_p_hand_computed_and_matches_interval():
    # [1, 2, 6]: t = 3 / (sqrt(7) / sqrt(3)) = 1.9640, 2 df; two-sided p = 1 - 1 / sqrt(1 +
    # 2 / t^2) for 2 df (the t(2) cdf in closed form: 0.5 + t / (2 sqrt(2 + t^2))).
    t = 3 / (math.sqrt(7) / math.sqrt(3))
    values = [1.0, 2.0, 6.0]
    assert significance.t_test_p(values) == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert significance.t_interval(values)["p_value"] == significance.t_test_p(values)
    assert math.isnan(significance.t_test_p([0.3]))
    assert math.isnan(significance.t_interval([0.3])["p_value"])
    assert (
        significance.t_test_p([0.2, 0.2, 0.2]) == 0.0 and significance.t_test_p([0.0, 0.0]) == 1.0
    )
    # The interval excludes 0 exactly when p < 0.05 (the same test), on both sides of 0.
    for shift in (-0.9, -0.5, -0.2, 0.0, 0.2, 0.5, 0.9, 1.4):
        r = significance.t_interval([shift + d for d in (-0.3, 0.1, 0.4, -0.1, 0.25)])
        assert (r["ci95"][0] > 0 or r["ci95"][1] < 0) == (r["p_value"] < 0.05)


def test_welch_interval_matches_scipy_and_hand_computed():
    import numpy as np
    import scipy.stats

    rng = np.random.default_rng(0)
    for na, nb in ((5, 10), (2, 3), (12, 4)):
        a, b = rng.normal(0.08, 0.04, na), rng.normal(0.03, 0.05, nb)
        r = significance.welch_interval(list(a) + [math.nan], b)
        want = scipy.stats.ttest_ind(a, b, equal_var=False)
        ci = want.confidence_interval(0.95)
        assert r["trials"] == [na, nb] and r["mean"] == pytest.approx(a.mean() - b.mean())
        assert r["p_value"] == pytest.approx(want.pvalue, rel=1e-9)
        assert r["ci95"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    # hand-computed: a = [2, 4] (var 2), b = [0, 2, 4] (var 4): difference 1,
    # se^2 = 2/2 + 4/3 = 7/3, df = (7/3)^2 / (1^2/1 + (4/3)^2/2) = 2.882, t = 0.6547
    r = significance.welch_interval([2.0, 4.0], [0.0, 2.0, 4.0])
    df = (7 / 3) ** 2 / (1 + (4 / 3) ** 2 / 2)
    assert r["mean"] == pytest.approx(1.0)
    assert r["p_value"] == pytest.approx(2 * scipy.stats.t.sf(1 / math.sqrt(7 / 3), df))
    # too few values, no spread
    assert math.isnan(significance.welch_interval([1.0], [0.0, 1.0])["p_value"])
    assert math.isnan(significance.welch_interval([], [0.0, 1.0])["mean"])
    flat = significance.welch_interval([1.0, 1.0], [0.0, 0.0])
    assert flat["ci95"] == [1.0, 1.0] and flat["p_value"] == 0.0
    assert significance.welch_interval([1.0, 1.0], [1.0, 1.0])["p_value"] == 1.0


def test_holm_hand_computed_and_properties():
    # Sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4 * 0.005 = 0.02, 3 * 0.01 = 0.03,
    # 2 * 0.03 = 0.06, max(0.06, 1 * 0.04) = 0.06; "e" has no test and does not count.
    out = significance.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": None})
    assert {k: round(v, 6) for k, v in out.items() if k != "e"} == {
        "a": 0.03,
        "b": 0.06,
        "c": 0.06,
        "d": 0.02,
    }
    assert math.isnan(out["e"])
    assert significance.holm({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}  # capped at 1
    assert significance.holm({}) == {} and significance.holm({"x": 0.02}) == {"x": 0.02}
    # Never below the raw p, never below Bonferroni's smallest, order kept.
    raw = {i: p for i, p in enumerate((0.001, 0.2, 0.04, 0.04, 0.5, 0.013))}
    adj = significance.holm(raw)
    assert all(adj[i] >= raw[i] for i in raw)
    ranked = sorted(raw, key=raw.get)
    assert all(adj[a] <= adj[b] for a, b in itertools.pairwise(ranked))
    assert min(adj.values()) == pytest.approx(len(raw) * min(raw.values()))


def test_verdict_and_format():
    assert significance.verdict([0.01, 0.02]) == significance.REPRODUCED
    assert significance.verdict([-0.02, -0.01]) == significance.CONTRADICTED
    assert significance.verdict([-0.02, -0.01], direction=-1) == significance.REPRODUCED
    assert significance.verdict([-0.01, 0.02]) == significance.NOT_DISTINGUISHABLE
    assert significance.verdict([0.0, 0.02]) == significance.NOT_DISTINGUISHABLE  # 0 is inside
    assert significance.verdict([None, None]) == significance.NOT_DISTINGUISHABLE
    with pytest.raises(ValueError, match="direction"):
        significance.verdict([0.1, 0.2], direction=0)
    assert significance.format_interval({"mean": 0.0123, "ci95": [-0.004, 0.0286]}) == (
        "+0.012 [-0.004, +0.029]"
    )
    assert significance.format_interval({"mean": 0.5, "ci95": [None, None]}) == "+0.500"
    assert significance.format_interval({"mean": None}) == "—"


def test_bounded_verdict_needs_both_ends():
    above = {"mean": 0.05, "ci95": [0.01, 0.09], "p_value": 0.02}
    more = {"mean": 0.08, "ci95": [0.03, 0.13], "p_value": 0.01}
    assert significance.bounded_verdict(above, more) == (significance.REPRODUCED, 0.02)
    straddles = {"mean": 0.01, "ci95": [-0.02, 0.04], "p_value": 0.4}
    assert significance.bounded_verdict(straddles, more) == (significance.NOT_DISTINGUISHABLE, 0.4)
    below = {"mean": -0.05, "ci95": [-0.09, -0.01], "p_value": 0.03}
    assert (
        significance.bounded_verdict(below, {**below, "p_value": 0.04})[0]
        == significance.CONTRADICTED
    )
    none = {"mean": math.nan, "ci95": [math.nan, math.nan], "p_value": math.nan}
    assert significance.bounded_verdict(none, none)[0] == significance.NOT_DISTINGUISHABLE


def test_t_test_power_is_the_rejection_rate_of_the_t_test():
    # An independent reference: the rejection rate of scipy's one-sample t test over many
    # simulated experiments of n normal values (20 000 experiments: SE of a rate <= 0.0036).
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(0)
    # (2, 0.1, 2): far in the noncentral t's tail, where scipy's nct gives NaN (the fallback).
    cases = ((0.7, 1.0, 6), (0.02, 0.043, 10), (0.0, 0.5, 5), (-0.3, 0.2, 3), (2.0, 0.1, 2))
    for effect, sd, n in cases:
        draws = rng.normal(effect, sd, size=(20_000, n))
        rate = float(np.mean(stats.ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05))
        assert significance.t_test_power(effect, sd, n) == pytest.approx(rate, abs=0.012)
    assert significance.t_test_power(0.0, 1.0, 8) == pytest.approx(0.05)  # the test's level
    for bad in ((0.1, 0.0, 5), (0.1, float("nan"), 5), (0.1, 1.0, 1), (float("inf"), 1.0, 5)):
        assert math.isnan(significance.t_test_power(*bad))


def test_the_fallback_for_scipy_s_nan_tails_equals_the_noncentral_t():
    # Where scipy's nct is finite, the integral the power falls back to agrees with it.
    from scipy import stats

    for df in (1, 2, 4, 9, 30):
        for nc in (-6.0, -1.5, 0.0, 0.7, 2.5, 8.0):
            crit = float(stats.t.ppf(0.975, df))
            want = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
            if math.isfinite(want):
                assert significance._two_tails(crit, df, nc) == pytest.approx(want, abs=1e-7)


def test_trials_needed_matches_the_planning_tables_and_is_the_fewest():
    # One-sample (paired) t, two-sided 5 %, 80 % power: Cohen's d = 0.5 needs 34, d = 1 needs 10
    # (the values of G*Power and Cohen's tables).
    assert significance.trials_needed(0.5, 1.0) == 34
    assert significance.trials_needed(1.0, 1.0) == 10
    for effect, sd in ((0.034, 0.043), (0.0107, 0.0036), (-0.05, 0.085), (2.0, 0.1)):
        n = significance.trials_needed(effect, sd)
        assert significance.t_test_power(effect, sd, n) >= significance.POWER
        if n > 2:
            assert significance.t_test_power(effect, sd, n - 1) < significance.POWER
        assert significance.trials_needed(-effect, sd) == n  # two-sided: the sign is no matter
    assert significance.trials_needed(0.0, 1.0) is None
    assert significance.trials_needed(0.1, float("nan")) is None
    assert significance.trials_needed(1e-4, 1.0, max_trials=1000) is None  # beyond the cap
    assert significance.trials_needed(0.5, 1.0, power=0.9) > 34
    with pytest.raises(ValueError, match="power must be in"):
        significance.trials_needed(0.5, 1.0, power=0.01)


def test_detectable_effect_inverts_the_power():
    for sd, n in ((1.0, 10), (0.043, 5), (0.0036, 5), (0.2, 3)):
        e = significance.detectable_effect(sd, n)
        assert significance.t_test_power(e, sd, n) == pytest.approx(significance.POWER, abs=1e-6)
        assert significance.detectable_effect(2 * sd, n) == pytest.approx(2 * e)  # scales
        assert significance.detectable_effect(sd, n + 5) < e  # more trials, finer
    assert math.isnan(significance.detectable_effect(1.0, 1))
    assert math.isnan(significance.detectable_effect(0.0, 5))
    # Any scale: a tiny sd scales like a unit one.
    tiny = significance.detectable_effect(1e-13, 5) / 1e-13
    assert tiny == pytest.approx(significance.detectable_effect(1.0, 5), rel=1e-9)


def test_the_module_examples_hold():
    import doctest

    result = doctest.testmod(significance)
    assert result.failed == 0 and result.attempted >= 10  # the module's examples ran
