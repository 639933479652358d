"""Tests of mtal_jax.paired: paired gains over trials, label-efficiency savings."""

import math

import pytest

from mtal_jax import paired, reporting, significance
from tests.test_reporting import CURVES, FRACTIONS  # its hand-computed 95 % points apply here

T_0975_1 = 12.706204736  # Student t, 97.5 % quantile, 1 degree of freedom


def _records(curves=CURVES, map_scale=0.4, miou_scale=0.7):
    out = []
    for strategy, trials in curves.items():
        for trial, values in trials.items():
            for cycle, (fraction, value) in enumerate(zip(FRACTIONS, values)):
                out.append(
                    {"trial": trial, "strategy": strategy, "cycle": cycle,
                     "labeled_fraction": fraction, "labeled_ids": [], "mdsq": value,
                     "map": map_scale * value, "ap50": 0.6 * value, "miou": miou_scale * value}
                )  # fmt: skip
    return out


def test_paired_gain_hand_computed():
    # ours - random over cycles 1-6: t0 (0.05+0.06+0.05+0.04+0.02+0.01)/6 = 0.23/6,
    # t1 (0.07+0.08+0.04+0.03+0.02+0.00)/6 = 0.24/6
    g0, g1 = 0.23 / 6, 0.24 / 6
    mean, half = (g0 + g1) / 2, T_0975_1 * (abs(g1 - g0) / math.sqrt(2)) / math.sqrt(2)
    p = paired.paired_gain(_records(), "ours")
    assert p["cycles"] == [1, 2, 3, 4, 5, 6] and p["trials"] == 2
    assert [g["trial"] for g in p["per_trial"]] == [0, 1]
    assert [g["mdsq"] for g in p["per_trial"]] == pytest.approx([g0, g1])
    assert p["mean"] == pytest.approx(mean)
    assert p["ci95"] == pytest.approx([mean - half, mean + half])
    assert p["map"]["mean"] == pytest.approx(0.4 * mean)  # mAP = 0.4 mDSQ in these records
    assert p["miou"]["ci95"] == pytest.approx([0.7 * (mean - half), 0.7 * (mean + half)])
    assert significance.verdict(p["ci95"]) == significance.REPRODUCED
    # the same comparison the other way round: the interval flips sign
    q = paired.paired_gain(_records(), "random", baseline="ours")
    assert q["ci95"] == pytest.approx([-mean - half, -mean + half])
    assert significance.verdict(q["ci95"]) == significance.CONTRADICTED
    # it agrees with reporting.summarize's paired gain (same definition, complete trials)
    summary = reporting.summarize(_records())["ours"]
    assert summary.gain_vs_random_mean == pytest.approx(mean)


def test_only_trials_complete_for_both_count():
    records = [r for r in _records() if not (r["strategy"] == "random" and r["trial"] == 1)]
    records += [
        r for r in _records() if r["strategy"] == "random" and r["trial"] == 1 and r["cycle"] < 4
    ]  # trial 1 of random still running at cycle 3
    p = paired.paired_gain(records, "ours")
    assert p["trials"] == 1 and p["incomplete_trials"] == [1]
    assert p["mean"] == pytest.approx(0.23 / 6)
    # a strategy with fewer trials (al.trials_per_strategy) is paired on its own trials
    fewer = [r for r in _records() if not (r["strategy"] == "ours" and r["trial"] == 1)]
    p = paired.paired_gain(fewer, "ours")
    assert p["trials"] == 1 and p["incomplete_trials"] == []


def test_label_efficiency_savings_per_trial():
    # 95 % points (test_reporting.py): random t0 0.86667, t1 0.8; ours t0 0.65, t1 0.55;
    # mean curves: random 0.84, ours 0.58
    summaries = reporting.summarize(_records())
    le = paired.label_efficiency_savings(summaries, "ours")
    assert le["mean_curve"] == pytest.approx(0.58)
    assert le["baseline_mean_curve"] == pytest.approx(0.84)
    assert le["savings_mean_curve"] == pytest.approx(0.26)
    s0, s1 = 0.8 + 0.02 / 0.03 * 0.1 - 0.65, 0.8 - 0.55
    assert [p["savings"] for p in le["per_trial"]] == pytest.approx([s0, s1])
    half = T_0975_1 * (abs(s1 - s0) / math.sqrt(2)) / math.sqrt(2)
    assert le["savings_mean"] == pytest.approx((s0 + s1) / 2)
    assert le["savings_ci95"] == pytest.approx([(s0 + s1) / 2 - half, (s0 + s1) / 2 + half])
    assert le["trials_reached"] == 2 and le["savings_trials"] == 2


def test_label_efficiency_savings_leave_out_a_curve_still_running():
    """Trial 1 of ours stopped after cycle 2 (45 %): its curve has not reached 95 % yet,
    which is not the same as never reaching it, so trial 1 leaves the per-trial and the
    bounded savings (the bounded worst case would otherwise count it at 100 %)."""
    records = [r for r in _records() if not (r["strategy"] == "ours" and r["trial"] == 1
                                             and r["cycle"] > 2)]  # fmt: skip
    le = paired.label_efficiency_savings(reporting.summarize(records), "ours")
    assert le["incomplete_trials"] == [1]
    assert [p["trial"] for p in le["per_trial"]] == [0]
    assert [p["trial"] for p in le["bounded"]["per_trial"]] == [0]
    s0 = 0.8 + 0.02 / 0.03 * 0.1 - 0.65  # trial 0 alone, as in the complete case
    assert le["per_trial"][0]["savings"] == pytest.approx(s0)
    full = paired.label_efficiency_savings(reporting.summarize(_records()), "ours")
    assert full["incomplete_trials"] == [] and len(full["bounded"]["per_trial"]) == 2
    # the summaries count only trials whose outcome is known: reached (ours' trial 1 did,
    # at 55 %, before it stopped), or finished; random's trial 1 stopped at 60 %, before
    # its 80 %: not known yet
    summaries = reporting.summarize(records)
    assert (summaries["ours"].le95_trials_reached, summaries["ours"].le95_trials_known) == (2, 2)
    running = [r for r in _records() if not (r["strategy"] == "random" and r["trial"] == 1
                                             and r["cycle"] > 2)]  # fmt: skip
    summaries = reporting.summarize(running)
    assert summaries["random"].le95_trials_reached == 1
    assert summaries["random"].le95_trials_known == 1
    assert "(1/1 trials reach it, 1 still running)" in reporting.summary_markdown(running)


def test_a_run_stopped_early_is_still_running_with_the_planned_last_cycle():
    """Every curve stopped after cycle 2 (60 %; a lease's deadline) of the 7 planned: by
    default the last cycle is the largest recorded, so the curves read as finished and
    random's as never reaching 95 %; with ``last_cycle=6`` (``al.num_cycles`` - 1) they are
    still running: no savings, and the summary says so."""
    stopped = [r for r in _records() if r["cycle"] <= 2]
    # by 60 %: ours t1 reached 95 % at 55 %, ours t0 (0.94) and random (0.88, 0.90) not yet
    finished = reporting.summarize(stopped)
    assert finished["ours"].finished_per_trial == [True, True]
    assert (finished["random"].le95_trials_reached, finished["random"].le95_trials_known) == (0, 2)
    le = paired.label_efficiency_savings(finished, "ours")
    # trial 1 alone (trial 0: neither reaches): random at 60 % .. 100 %, ours at 55 %
    assert le["incomplete_trials"] == [] and [p["trial"] for p in le["bounded"]["per_trial"]] == [1]
    assert le["bounded"]["per_trial"][0]["worst"] == pytest.approx(0.6 - 0.55)
    running = reporting.summarize(stopped, last_cycle=6)
    assert running["ours"].finished_per_trial == [False, False]
    assert (running["ours"].le95_trials_reached, running["ours"].le95_trials_known) == (1, 1)
    assert (running["random"].le95_trials_reached, running["random"].le95_trials_known) == (0, 0)
    le = paired.label_efficiency_savings(running, "ours")
    assert le["incomplete_trials"] == [0, 1]
    assert le["per_trial"] == [] and le["bounded"]["per_trial"] == []
    text = reporting.summary_markdown(stopped, last_cycle=6)
    assert "(1/1 trials reach it, 1 still running)" in text  # ours
    assert "not reached (0 finished, 2 still running)" in text  # random
    assert "not reached (0 finished" not in reporting.summary_markdown(stopped)
    # the complete run reads the same with the planned last cycle as without it
    full = reporting.summarize(_records(), last_cycle=6)
    assert full["ours"].to_json() == reporting.summarize(_records())["ours"].to_json()


def test_label_efficiency_not_reached_gives_no_savings():
    curves = {"random": {0: [0.5] * 7}, "ours": {0: [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.96]}}
    le = paired.paired_stats(_records(curves), reporting.summarize(_records(curves)))["ours"]
    assert le["le95"]["mean_curve"] == pytest.approx(0.9)
    assert math.isnan(le["le95"]["savings_mean_curve"])  # random never reaches 95 %
    assert le["le95"]["savings_trials"] == 0


def test_paired_stats_shape_and_no_baseline():
    stats = paired.paired_stats(_records())
    assert list(stats) == ["ours"]  # random is the baseline, not compared with itself
    assert set(stats["ours"]) >= {"mean", "ci95", "trials", "map", "miou", "per_trial"}
    assert paired.paired_stats([r for r in _records() if r["strategy"] == "ours"]) == {}


def test_match_final_savings_hand_computed():
    # random's final mDSQ: t0 0.99, t1 1.00, both first reached at 100 % labeled.
    # ours reaches 0.99 in t0 at 0.9 + (0.99 - 0.98) / (1.00 - 0.98) * 0.1 = 0.95, and
    # 1.00 in t1 only at 100 %: savings 0.05 and 0.0.
    m = paired.match_final_savings(_records(), "ours")
    assert m["last_cycle"] == 6 and (m["reached"], m["compared"], m["trials"]) == (2, 2, 2)
    assert [p["target"] for p in m["per_trial"]] == pytest.approx([0.99, 1.00])
    assert [p["fraction"] for p in m["per_trial"]] == pytest.approx([0.95, 1.0])
    assert [p["baseline_fraction"] for p in m["per_trial"]] == pytest.approx([1.0, 1.0])
    half = T_0975_1 * (0.05 / math.sqrt(2)) / math.sqrt(2)
    assert m["mean"] == pytest.approx(0.025)
    assert m["ci95"] == pytest.approx([0.025 - half, 0.025 + half])
    # the baseline against itself saves nothing
    assert paired.match_final_savings(_records(), "random")["mean"] == pytest.approx(0.0)
    # paired.json carries it
    assert paired.paired_stats(_records())["ours"]["match_final"]["mean"] == pytest.approx(0.025)


def test_match_final_savings_plateau_unreached_and_incomplete():
    curves = {
        # random plateaus: its final 0.95 is first reached at 80 %, not at 100 %
        "random": {0: [0.8, 0.85, 0.9, 0.93, 0.95, 0.95, 0.95], 1: [0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]},
        # t0 never reaches 0.95: NaN, out of the interval; t1 reaches 0.9 at 50 %
        "ours": {0: [0.8, 0.85, 0.9, 0.9, 0.9, 0.9, 0.94], 1: [0.8, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9]},
    }  # fmt: skip
    m = paired.match_final_savings(_records(curves), "ours")
    t0, t1 = m["per_trial"]
    # t0: counted as reaching it at 100 % labeled (the whole pool): savings 0.8 - 1.0
    assert t0["baseline_fraction"] == pytest.approx(0.8) and math.isnan(t0["fraction"])
    assert t0["censored"] and t0["savings"] == pytest.approx(-0.2)
    assert t1["fraction"] == pytest.approx(0.4 + 0.1 / 0.15 * 0.1)  # 0.9 between 0.8 and 0.95
    assert t1["baseline_fraction"] == pytest.approx(0.5) and not t1["censored"]
    assert (m["reached"], m["compared"], m["trials"]) == (1, 2, 2)
    assert m["mean"] == pytest.approx((-0.2 + 0.5 - (0.4 + 0.1 / 0.15 * 0.1)) / 2)
    # a trial that misses a cycle of either strategy is not compared
    records = [r for r in _records(curves) if not (r["trial"] == 1 and r["cycle"] == 3)]
    assert paired.match_final_savings(records, "ours")["compared"] == 1


def _short(curves):
    """Records of curves over 40-90 % labeled (cycles 0-5): the run ends before 100 %."""
    return [
        {"trial": t, "strategy": s, "cycle": c, "labeled_fraction": 0.4 + 0.1 * c,
         "labeled_ids": [], "mdsq": v, "map": 0.4 * v, "ap50": 0.6 * v, "miou": 0.7 * v}
        for s, trials in curves.items() for t, values in trials.items()
        for c, v in enumerate(values)
    ]  # fmt: skip


def test_unreached_levels_are_read_at_both_ends():
    # match_final: random's final mDSQ t0 0.85 (reached at 60 %), t1 0.82 (at 60 %); ours t0
    # never reaches 0.85 within the run (last fraction 60 %): between 60 % and 100 %, so its
    # savings lie in [0.6 - 1.0, 0.6 - 0.6]; t1 reaches 0.82 at 0.4 + 0.12 / 0.15 * 0.1 = 0.48
    curves = {
        "random": {0: [0.7, 0.8, 0.85], 1: [0.7, 0.8, 0.82]},
        "ours": {0: [0.7, 0.75, 0.8], 1: [0.7, 0.85, 0.9]},
    }
    m = paired.match_final_savings(_short(curves), "ours")
    assert [p["savings"] for p in m["per_trial"]] == pytest.approx([-0.4, 0.12])
    assert [p["savings_best"] for p in m["per_trial"]] == pytest.approx([0.0, 0.12])
    assert m["best_case"]["mean"] == pytest.approx(0.06) and m["mean"] == pytest.approx(-0.14)
    # the ends disagree in sign: no verdict either way, p 1 (both tests must reject)
    assert significance.bounded_verdict(m, m["best_case"]) == (
        significance.NOT_DISTINGUISHABLE,
        1.0,
    )
    # without unreached trials both ends are the interval itself
    full = paired.match_final_savings(_records(), "ours")
    assert full["best_case"]["ci95"] == pytest.approx(full["ci95"])
    assert significance.bounded_verdict(full, full["best_case"]) == (
        significance.verdict(full["ci95"]),
        pytest.approx(full["p_value"]),
    )
    # label efficiency at 95 %: random t0 at 0.7 + 0.02 / 0.03 * 0.1, ours t0 not (in
    # (0.9, 1]); t1 neither (left out); t2 ours at 0.5 + 0.05 / 0.06 * 0.1, random not
    curves = {
        "random": {0: [0.8, 0.85, 0.9, 0.93, 0.96, 0.97], 1: [0.8] * 6, 2: [0.8, 0.9] + [0.92] * 4},
        "ours": {0: [0.8, 0.85, 0.9, 0.92, 0.93, 0.94], 1: [0.8] * 6, 2: [0.8, 0.9, 0.96] + [0.97] * 3},
    }  # fmt: skip
    le = paired.label_efficiency_savings(reporting.summarize(_short(curves)), "ours")
    r0, o2 = 0.7 + 0.02 / 0.03 * 0.1, 0.5 + 0.05 / 0.06 * 0.1
    bounded = le["bounded"]
    assert [p["trial"] for p in bounded["per_trial"]] == [0, 2]
    assert [p["worst"] for p in bounded["per_trial"]] == pytest.approx([r0 - 1.0, 0.9 - o2])
    assert [p["best"] for p in bounded["per_trial"]] == pytest.approx([r0 - 0.9, 1.0 - o2])
    assert le["savings_trials"] == 0  # no trial where both reach it: the old reading had none
    assert "unreached trials at best" in significance.format_bounded(
        bounded["worst"], bounded["best"]
    )
