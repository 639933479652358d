"""Tests of mtal_jax.reporting: label efficiency, summaries, tables and plots."""

import json
import math

import numpy as np
import pytest

from mtal_jax import records as rec_lib
from mtal_jax import reporting

FRACTIONS = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
# mDSQ curves: {strategy: {trial: values at FRACTIONS}}. Hand-computed 95 % points:
#   random t0: 0.8 + (0.95 - 0.93) / (0.96 - 0.93) * 0.1 = 0.86667;  t1: exactly 0.8
#   random mean curve (0.94 at 0.8, 0.965 at 0.9): 0.8 + 0.01 / 0.025 * 0.1 = 0.84
#   ours t0: 0.6 + 0.01 / 0.02 * 0.1 = 0.65;  t1: 0.5 + 0.03 / 0.06 * 0.1 = 0.55
#   ours mean curve (0.91 at 0.5, 0.96 at 0.6): 0.5 + 0.04 / 0.05 * 0.1 = 0.58
CURVES = {
    "random": {
        0: [0.80, 0.85, 0.88, 0.91, 0.93, 0.96, 0.99],
        1: [0.82, 0.85, 0.90, 0.93, 0.95, 0.97, 1.00],
    },
    "ours": {
        0: [0.85, 0.90, 0.94, 0.96, 0.97, 0.98, 1.00],
        1: [0.87, 0.92, 0.98, 0.97, 0.98, 0.99, 1.00],
    },
}


def _records(curves=CURVES):
    records = []
    for strategy, trials in curves.items():
        for trial, values in trials.items():
            for cycle, (fraction, value) in enumerate(zip(FRACTIONS, values)):
                records.append(
                    {
                        "trial": trial,
                        "strategy": strategy,
                        "cycle": cycle,
                        "labeled_fraction": fraction,
                        "labeled_ids": list(range(cycle)),
                        "map": 0.4 * value,
                        "ap50": 0.6 * value,
                        "miou": 0.7 * value,
                        "mdsq": value,
                    }
                )
    return records


def test_label_efficiency_interpolates_between_points():
    assert reporting.label_efficiency([0.4, 0.5, 0.6], [0.8, 0.9, 1.0]) == pytest.approx(0.55)
    assert reporting.label_efficiency(FRACTIONS, CURVES["random"][0]) == pytest.approx(
        0.8 + 2 / 3 * 0.1
    )
    # Unsorted input is sorted by fraction first; an exact hit returns that fraction.
    assert reporting.label_efficiency([0.6, 0.4, 0.5], [0.96, 0.9, 0.95]) == pytest.approx(0.5)


def test_label_efficiency_first_point_and_never_reached():
    assert reporting.label_efficiency([0.4, 0.5], [0.97, 0.99]) == 0.4
    assert math.isnan(reporting.label_efficiency([0.4, 0.5, 0.6], [0.5, 0.9, 0.94]))
    assert math.isnan(reporting.label_efficiency([], []))
    # The first crossing counts, even if the curve dips again later.
    assert reporting.label_efficiency([0.4, 0.5, 0.6], [0.9, 1.0, 0.9]) == pytest.approx(0.45)
    assert reporting.label_efficiency([0.4, 0.5], [0.5, 0.8], target=0.6) == pytest.approx(
        0.4 + 0.1 / 3
    )


def _summarize(records):
    """``reporting.summarize`` in its flat JSON form (checks the typed form on the way)."""
    typed = reporting.summarize(records)
    for s in typed.values():
        assert isinstance(s, rec_lib.StrategySummary)
        again = rec_lib.StrategySummary.from_fields(s.to_json())
        assert json.dumps(again.to_json()) == json.dumps(s.to_json())  # NaN-safe comparison
        assert s.to_json()["mdsq_mean"] == s.means["mdsq"]
    return {k: v.to_json() for k, v in typed.items()}


def test_summarize_two_strategies_two_trials():
    summary = _summarize(_records())
    assert list(summary) == ["random", "ours"]
    random, ours = summary["random"], summary["ours"]
    assert random["fractions"] == FRACTIONS and random["num_trials"] == [2] * 7
    np.testing.assert_allclose(random["mdsq_mean"], np.mean(list(CURVES["random"].values()), 0))
    np.testing.assert_allclose(
        random["mdsq_std"], np.std(list(CURVES["random"].values()), 0, ddof=1)
    )
    np.testing.assert_allclose(ours["map_mean"], 0.4 * np.asarray(ours["mdsq_mean"]))
    np.testing.assert_allclose(ours["miou_mean"], 0.7 * np.asarray(ours["mdsq_mean"]))
    assert random["le95_mean_curve"] == pytest.approx(0.84)
    assert ours["le95_mean_curve"] == pytest.approx(0.58)
    np.testing.assert_allclose(random["le95_per_trial"], [0.8 + 2 / 3 * 0.1, 0.8])
    np.testing.assert_allclose(ours["le95_per_trial"], [0.65, 0.55])
    assert ours["le95_trial_mean"] == pytest.approx(0.60)
    assert ours["le95_trial_std"] == pytest.approx(np.std([0.65, 0.55], ddof=1))
    assert ours["le95_trials_reached"] == 2
    assert ours["savings_vs_random"] == pytest.approx(0.26)
    assert random["savings_vs_random"] == pytest.approx(0.0)
    # random's final mean mDSQ: 0.995 at 100 %; ours' mean curve passes it between 90 %
    # (0.985) and 100 % (1.0): 0.9 + 0.01 / 0.015 * 0.1
    assert ours["reach_random_final"] == pytest.approx(0.9 + 0.1 * 2 / 3)
    assert ours["savings_at_random_final"] == pytest.approx(0.1 / 3)
    assert random["reach_random_final"] == pytest.approx(1.0)
    assert random["savings_at_random_final"] == pytest.approx(0.0)
    # Paired gain: t0 mean over cycles 1.. of (ours - random), t1 likewise
    ours_c, rand_c = CURVES["ours"], CURVES["random"]
    gains = [np.mean(np.subtract(ours_c[t][1:], rand_c[t][1:])) for t in (0, 1)]
    np.testing.assert_allclose(ours["gain_vs_random_per_trial"], gains)
    assert ours["gain_vs_random_mean"] == pytest.approx(np.mean(gains))
    assert ours["gain_vs_random_std"] == pytest.approx(np.std(gains, ddof=1))
    assert random["gain_vs_random_per_trial"] == [0.0, 0.0]
    # A plateau: random reaches its final value before its last point; savings count from there.
    plateau = {
        "random": {0: [0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9]},
        "ours": {0: [0.5, 0.7, 0.9, 0.9, 0.9, 0.9, 0.9]},
    }
    flat = _summarize(_records(plateau))
    assert flat["random"]["reach_random_final"] == pytest.approx(0.8)
    assert flat["random"]["savings_at_random_final"] == 0.0
    assert flat["ours"]["savings_at_random_final"] == pytest.approx(0.2)


def test_summarize_without_random_and_never_reached():
    curves = {"entropy": {0: [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.94]}}
    summary = _summarize(_records(curves))["entropy"]
    assert math.isnan(summary["le95_mean_curve"]) and math.isnan(summary["savings_vs_random"])
    assert summary["le95_trials_reached"] == 0 and math.isnan(summary["le95_trial_mean"])
    assert summary["mdsq_std"] == [0.0] * 7  # one trial: no spread
    markdown = reporting.summary_markdown(_records(curves))
    assert "| entropy | 1 | not reached | not reached | — | — |" in markdown
    assert math.isnan(summary["reach_random_final"])  # no random run to match
    assert "match random" not in markdown


def test_summary_markdown_tables():
    markdown = reporting.summary_markdown(_records(), fractions_of_interest=(0.3, 0.45, 0.9))
    assert "| random | 2 | 84.0 % | 83.3 % ± 4.7 pp | +0.0 pp | — |" in markdown
    # paired savings per trial (random's 95 % point minus ours, same trial; see
    # test_paired.py): 21.7 and 25.0 pp, mean 23.3, t interval [+2.2, +44.5] pp
    assert (
        "| ours | 2 | 58.0 % | 60.0 % ± 7.1 pp | +26.0 pp | +23.3 [+2.2, +44.5] pp (2 trials "
        "where either reaches it) |" in markdown
    )
    assert "| strategy | 30% | 45% | 90% |" in markdown
    assert (
        "## Labeled fraction to match random's final mDSQ (0.995 at 100%, mean curves)" in markdown
    )
    assert "| ours | 96.7 % | +3.3 pp |" in markdown
    assert "## Paired gain over random" in markdown
    # ours - random per trial over cycles 1-6: t0 0.23 / 6, t1 0.24 / 6 (test_paired.py)
    assert "| ours | 2 | +0.039 [+0.029, +0.050] | +0.0157 [+0.0114, +0.0199] |" in markdown
    assert "+0.038, +0.040 |" in markdown
    assert "| random | 2 |" not in markdown.split("## Paired gain")[1]  # no self-comparison
    # 0.3 is before the first cycle ('—'); 0.45 interpolates each trial, then averages.
    ours_45 = np.mean([(0.85 + 0.90) / 2, (0.87 + 0.92) / 2])
    assert f"| ours | — | {ours_45:.3f} ± 0.014 | 0.985 ± 0.007 |" in markdown


def test_mean_curves_average_the_finished_trials(tmp_path):
    """A third trial of ours still running (cycles 0-1 of 0-6, far below the others) stays
    out of the mean curve, its label efficiency, the mDSQ-at-fraction table and the plots;
    while no trial has finished, the mean covers the running ones."""
    running = {"ours": {2: [0.10, 0.20]}}
    records = _records() + _records(running)
    for last_cycle in (None, 6):  # the default, the largest recorded cycle, is 6 here too
        ours = reporting.summarize(records, last_cycle=last_cycle)["ours"]
        assert ours.trials == [0, 1, 2] and ours.finished_per_trial == [True, True, False]
        assert ours.fractions == FRACTIONS and ours.num_trials == [2] * 7
        np.testing.assert_allclose(ours.means["mdsq"], np.mean(list(CURVES["ours"].values()), 0))
        assert ours.le95_mean_curve == pytest.approx(0.58)
        assert ours.savings_vs_random == pytest.approx(0.26)
    text = reporting.summary_markdown(records, fractions_of_interest=(0.45,), last_cycle=6)
    assert "average the finished trials only (ours 2 of 3)" in text
    ours_45 = np.mean([(0.85 + 0.90) / 2, (0.87 + 0.92) / 2])
    assert f"| ours | {ours_45:.3f} ± 0.014 |" in text
    assert "finished trials only" not in reporting.summary_markdown(_records())
    with_running = reporting.plot_curves(records, tmp_path / "running", last_cycle=6)
    without = reporting.plot_curves(_records(), tmp_path / "finished")
    for a, b in zip(with_running, without):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read(), a
    alone = reporting.summarize(_records(running), last_cycle=6)["ours"]
    assert alone.finished_per_trial == [False] and alone.num_trials == [1, 1]
    assert alone.means["mdsq"] == pytest.approx([0.1, 0.2])


def _assert_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def _pixels_of(path, rgb):
    import PIL.Image

    image = np.asarray(PIL.Image.open(path).convert("RGB"))
    return int((image == rgb).all(-1).sum())


def test_plot_curves_writes_three_pngs(tmp_path):
    paths = reporting.plot_curves(_records(), tmp_path / "plots")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["mdsq.png", "map.png", "miou.png"]
    for path in paths:
        _assert_png(path)
    # Each strategy's curve is drawn in its colour of the default cycle (random first, then
    # ours: tab10 blue, orange); without ours' records no orange pixel is left.
    blue, orange = (31, 119, 180), (255, 127, 14)
    for path in paths:
        assert _pixels_of(path, blue) > 100 and _pixels_of(path, orange) > 100, path
    only_random = [r for r in _records() if r["strategy"] == "random"]
    for path in reporting.plot_curves(only_random, tmp_path / "random"):
        assert _pixels_of(path, blue) > 100 and _pixels_of(path, orange) == 0, path


def test_write_summary(tmp_path):
    records = _records()
    records.append({**records[0], "strategy": "broken", "mdsq": None, "map": float("nan")})
    paths = reporting.write_summary(records, tmp_path)
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["map.png", "mdsq.png", "miou.png", "paired.json", "summary.json", "summary.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary files left
    summary = json.loads((tmp_path / "summary.json").read_text())  # strict JSON, NaN -> null
    assert summary["ours"]["le95_mean_curve"] == pytest.approx(0.58)
    assert summary["broken"]["mdsq_mean"] == [None]
    assert "| ours | 2 | 58.0 % |" in (tmp_path / "summary.md").read_text()
    for name in ("mdsq.png", "map.png", "miou.png"):
        _assert_png(tmp_path / name)
    paired = json.loads((tmp_path / "paired.json").read_text())
    assert set(paired) == {"ours", "broken"}
    assert paired["ours"]["mean"] == pytest.approx((0.23 / 6 + 0.24 / 6) / 2)
    assert paired["ours"]["trials"] == 2 and paired["ours"]["map"]["trials"] == 2
    assert paired["broken"]["trials"] == 0  # a cycle-0 point only: no complete trial
    assert paired["broken"]["incomplete_trials"] == [0]
