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
