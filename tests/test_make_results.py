"""docs/make_results.py and its parts (docs/results_lib/) on fabricated run directories:
paired intervals, verdicts, Table I for both S_cls modes, label efficiency, the regime
section (no training, seconds)."""

import itertools
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from docs.results_lib import (
    analyses,
    claims_table,
    gpu_parallel,
    gpu_serial,
    main_comparison,
    regime,
    results_page,
    run_dirs,
    score_makeup,
    table1_scores,
    table_cells,
    variants,
)
from mtal_jax import paired, reporting, significance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T_0975_2 = 4.302652730  # Student t, 97.5 % quantile, 2 degrees of freedom
FRACTIONS = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
RANDOM = {0: [0.70, 0.74, 0.78, 0.82, 0.85, 0.88], 1: [0.72, 0.75, 0.79, 0.83, 0.86, 0.90],
          2: [0.69, 0.73, 0.77, 0.80, 0.84, 0.87]}  # fmt: skip


def _records(gains):
    """Records of random and of strategies whose mDSQ is random's plus a per-trial gain at
    every cycle after 0 (cycle 0 shared): {strategy: [gain of trial 0, 1, 2, ...]} (random's
    curves repeat every 3 trials)."""
    out = []
    trials = max(map(len, gains.values()), default=3)
    for strategy, per_trial in {"random": [0.0] * trials, **gains}.items():
        for trial, gain in enumerate(per_trial):
            for cycle, (f, v) in enumerate(zip(FRACTIONS, RANDOM[trial % 3])):
                value = v + (gain if cycle else 0.0)
                out.append({"trial": trial, "strategy": strategy, "cycle": cycle,
                            "labeled_fraction": f, "labeled_ids": [], "mdsq": value,
                            "map": 0.3 * value, "ap50": 0.5 * value, "miou": 0.7 * value})  # fmt: skip
    return out


def _run_dir(path, records, config=None, wall=(10.0, 20.0)):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump(records, f)
    config = config or {"al": {"strategy": {"kwargs": {}}}}
    config.setdefault("train", {"cycle_epochs": 3.0, "steps": 0, "initial_epochs": 10.0,
                                "initial_steps": 0, "reference_epochs": 12.0, "full_steps": 0,
                                "batch_size": 16, "learning_rate": 0.002})  # fmt: skip
    config.setdefault("data", {"builder_kwargs": {"num_train": 2400}})
    config["al"].update(num_cycles=6, initial_fraction=0.4, budget_fraction=0.1)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    for i, seconds in enumerate(wall):
        os.makedirs(os.path.join(path, f"trial_{i}", "cycle_0"), exist_ok=True)
        with open(os.path.join(path, f"trial_{i}", "cycle_0", "wall.json"), "w") as f:
            json.dump({"seconds": seconds}, f)


def _interval(values):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T_0975_2 * std / math.sqrt(n)
    return mean, mean - half, mean + half


def _lines_glued_to_tables(markdown):
    """Non-table lines right after a table row: GitHub renders each as one more row."""
    lines = markdown.splitlines()
    return [f"{i + 2}: {b[:60]}" for i, (a, b) in enumerate(itertools.pairwise(lines))
            if a.startswith("|") and b.strip() and not b.startswith("|")]  # fmt: skip


def test_committed_page_ends_every_table_with_a_blank_line():
    page = os.path.join(os.path.dirname(__file__), "..", "docs", "results.md")
    if not os.path.exists(page):
        pytest.skip("docs/results.md not built")
    with open(page) as f:
        assert _lines_glued_to_tables(f.read()) == []


def test_page_from_fabricated_runs(tmp_path):
    # ours: +0.02, +0.03, +0.025 -> mean 0.025, std 0.005, CI [0.0126, 0.0374]: reproduced
    # ll4al: -0.01, +0.02, -0.04 -> mean -0.01, std 0.03: interval holds 0
    # cald: -0.03, -0.02, -0.025 -> mean -0.025: ours - cald = +0.05 every trial
    gains = {
        "ours": [0.02, 0.03, 0.025],
        "ll4al": [-0.01, 0.02, -0.04],
        "cald": [-0.03, -0.02, -0.025],
    }
    _run_dir(tmp_path / "main", _records(gains))
    kwargs = {  # Table I: js: S_seg +0.02 over S_loc in every trial; kl: S_seg below S_cls
        f"ours_{m}_{s}": {"base": "ours", "weights": w, "cls_divergence": m}
        for m, s, w in (("js", "loc", [1, 0, 0]), ("js", "seg", [0, 0, 1]),
                        ("kl", "loc", [1, 0, 0]), ("kl", "cls", [0, 1, 0]), ("kl", "seg", [0, 0, 1]))
    }  # fmt: skip
    # without S_cls a kl setting copies the js one (share.share_within): the same records
    t1 = _records({"ours_js_loc": [0.0, 0.01, 0.0], "ours_js_seg": [0.02, 0.03, 0.02],
                   "ours_kl_loc": [0.0, 0.01, 0.0], "ours_kl_seg": [0.02, 0.03, 0.02],
                   "ours_kl_cls": [0.03, 0.05, 0.04]})  # fmt: skip
    _run_dir(tmp_path / "t1", t1, {"al": {"strategy": {"kwargs": kwargs}}})
    results = tmp_path / "results"
    os.makedirs(results / "synthetic")
    (results / "synthetic" / "noise_floor.json").write_text(json.dumps(
        {"mdsq_std": {"40": 0.0116}, "min_detectable_diff": {"3": 0.041, "5": 0.020}}))  # fmt: skip
    (results / "synthetic" / "reference.json").write_text(json.dumps(
        {"map": 0.2746, "ap50": 0.5944, "miou": 0.7047, "steps": 1800, "passes": 12.0, "wall_s": 3714}))  # fmt: skip
    (results / "synthetic" / "table2_boxmask_accuracy.json").write_text(json.dumps(
        {"rows": [{"tau": 0.1, "miou": 0.45}, {"tau": 0.3, "miou": 0.37}]}))  # fmt: skip
    (results / "synthetic" / "fig6_correlation.json").write_text(json.dumps({"claims": [
        {"claim": "S_seg measures the segmentation loss best", "statistic": 0.2,
         "ci95": [0.1, 0.3], "num_images": 1440, "resamples": 2000},
        {"claim": "S_loc measures the detection localization loss best", "statistic": -0.5,
         "ci95": [-0.6, -0.4], "num_images": 1440, "resamples": 2000},
        {"claim": "S_loc and S_seg are the least correlated pair of scores", "statistic": 0.01,
         "ci95": [-0.03, 0.05], "num_images": 1440, "resamples": 2000}]}))  # fmt: skip
    (results / "synthetic" / "fig5_compare.png").write_bytes(b"png")
    (results / "synthetic" / "fig6_correlation.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    (results / "synthetic" / "analysis_wall.json").write_text(json.dumps({"fig5": {
        "seconds": 98.04, "analyses_together": ["fig5"], "cpus": 2, "load_1min": 3.2,
        "date": "2026-12-03 06:00 UTC"}}))  # fmt: skip
    page = results_page.build(
        {"synthetic": (str(tmp_path / "main"), str(tmp_path / "t1"))}, str(results),
        str(tmp_path / "src"), composition=False,
    )  # fmt: skip
    assert _lines_glued_to_tables(page) == []

    mean, lo, hi = _interval([0.02, 0.03, 0.025])
    assert f"+{mean:.3f} [+{lo:.3f}, +{hi:.3f}] (n=3) | **reproduced**" in page
    assert "| ours > random in mDSQ (+3.39 % at 80 % labeled) |" in page
    # the gains are the same at every cycle here, so at 80 % (cycle 4) alone too
    assert (
        f"At 80 % labeled alone (cycle 4; the paper quotes its mDSQ gains there), the paired "
        f"mDSQ gains are: ours - random +{mean:.3f} [+{lo:.3f}, +{hi:.3f}] (n=3, reproduced); "
        "ours - ll4al +"
    ) in page
    mean, lo, hi = _interval([0.03, 0.01, 0.065])  # ours - ll4al per trial
    assert (
        f"| ours > LL4AL in mDSQ (+1.07 % at 80 % labeled) | +{mean:.3f} [{lo:+.3f}, +{hi:.3f}] (n=3) | not distinguishable"
        in page
    )
    mean, lo, hi = _interval([0.05, 0.05, 0.05])  # ours - cald: no spread, a point interval
    assert (
        "| ours > CALD in mDSQ (outperforms all baselines) | +0.050 [+0.050, +0.050] (n=3) | **reproduced** |"
        in page
    )
    assert "| ours > EquAL in mDSQ | — | not run |" in page
    # mAP = 0.3 mDSQ in these records: ours - cald in mAP is 0.015 in every trial
    assert (
        "| ours >= CALD in mAP (on par, better later) | +0.0150 [+0.0150, +0.0150] (n=3) | **reproduced** |"
        in page
    )
    # the paper's "later": the same mAP gain after the last cycle alone, its own row
    assert f"| {main_comparison.LATER_CLAIM} | +0.0150 [+0.0150, +0.0150] (n=3; cycle " in page
    mean, lo, hi = _interval([0.02, 0.02, 0.02])  # js: seg - loc = 0.02, 0.02, 0.02
    assert (
        "| Table I (js): S_seg > S_loc (S_seg best single score) | +0.020 [+0.020, +0.020] (n=3) | **reproduced** |"
        in page
    )
    mean, lo, hi = _interval([-0.01, -0.02, -0.02])  # kl: seg - cls
    assert (
        f"| Table I (kl): S_seg > S_cls (S_seg best single score) | {mean:+.3f} [{lo:+.3f}, {hi:+.3f}] (n=3) | **contradicted** |"
        in page
    )
    # kl S_seg against kl S_loc: both copy the js runs, so the js row's test, not a second
    # one in the kl family's Holm count (its one test: S_seg > S_cls)
    assert (
        "| Table I (kl): S_seg > S_loc (S_seg best single score) | the js row's test (without "
        "S_cls both settings copy the js runs) | same test as js | — |"
    ) in page
    assert "Table I (js) 1, Table I (kl) 1" in page
    assert (
        "0.45 / 0.37" not in page
        and "45.0 / 37.0 (best tau 0.1) | no interval (one model): other best tau" in page
    )
    # main table: trials, mDSQ at 50 % (random: 0.74, 0.75, 0.73 -> 0.740 ± 0.010)
    assert "| random | 3 | 0.740 ± 0.010 |" in page
    # ours at 50 %: 0.76, 0.78, 0.755 -> 0.765 ± sqrt(0.00035 / 2) = 0.013
    assert "| ours | 3 | 0.765 ± 0.013 |" in page and "better (n=3) |" in page
    # label efficiency: no curve reaches 95 %; paper column present
    assert "| ours | 0/3 | not reached | — | — | 67 % |" in page
    assert (
        "95 % not reached in any trial (ours reaches it in 0/3, random in 0/3) | not testable"
        in page
    )
    # Labels to reach random's final mDSQ (0.88 / 0.90 / 0.87 at 90 %), per trial: ours
    # 0.8 + 0.01 / 0.03 * 0.1, 0.8 + 0.01 / 0.04 * 0.1, 0.8 + 0.005 / 0.03 * 0.1 -> savings
    # 0.0667 / 0.075 / 0.0833: mean 0.075, std 0.00833; ll4al reaches it in trial 1 only
    # (at 85 %), trials 0 and 2 count at 100 %: savings -0.1, +0.05, -0.1.
    half = T_0975_2 * (0.025 / 3) / math.sqrt(3)
    assert (
        f"+7.5 [{100 * (0.075 - half):+.1f}, {100 * (0.075 + half):+.1f}] pp (n=3; reached in 3/3)"
        " | **reproduced**" in page
    )
    assert "| ours | 3 | 3/3 | 82.5 % | 90.0 % | +7.5 [" in page
    # Fig. 6 readings: in the side-by-side and under the figure
    assert (
        "| Fig. 6: S_seg measures the segmentation loss best | +0.20 [+0.10, +0.30] (one "
        "model, 1440 images) | **reproduced** |" in page
    )
    assert (
        "loss best | -0.50 [-0.60, -0.40] (one model, 1440 images; "
        f"{analyses.LOSS_NOTE}) | **contradicted** |"
    ) in page  # a detection loss: the cell says which losses
    assert (
        "| S_loc and S_seg are the least correlated pair of scores | +0.01 [-0.03, +0.05]" in page
    )
    assert "| ll4al | 3 | 1/3 | 85.0 % | 90.0 % | -5.0 [" in page
    # at the other end, trials 0 and 2 reach it just after their last cycle (90 %): savings
    # 0, +0.05, 0: mean 0.0167, std 0.0289, half 4.303 * 0.0289 / sqrt(3) = 0.0717
    assert "(unreached trials at best: +1.7 [-5.5, +8.8] pp) |" in page
    # Table I rows with the paper's values; both modes
    assert "| js | S_seg | 3 |" in page and "| kl | S_loc | 3 |" in page
    assert "87.1 / 94.4 / 96.9 |" in page
    # regime and wall time (10 + 20 s of wall.json)
    assert "mDSQ std 40 %: 0.0116" in page and "0.041 with 3 trials" in page
    assert "mAP 0.2746" in page and "wall time 0.5 min" in page
    assert "cycles 3.0 (steps 0), cycle 0 10.0" in page
    # Fig. 5: its caption (panels, colours) above the figure; the synthetic data's pixels shown
    assert (
        analyses.FIG5_CAPTION + " Wall time" in page
        and "![Figure 5](results/synthetic/fig5_compare.png)" in page
    )
    # figures are linked relative to the page (here beside the results folder) and exist
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    assert len(links) >= 4 and all((tmp_path / link).is_file() for link in links), links
    assert analyses.FIG5_GRAY not in page
    assert "Wall time: 1.6 min (2026-12-03 06:00 UTC, 2 CPUs, load 3.2; loading the dataset" in page
    assert page.count("Wall time: not recorded") == 1  # Fig. 6, made earlier (no Table II here)
    # every table ends at a blank line (a text line right under one renders as its last row)
    lines = page.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and line.endswith("|"):
            nxt = lines[i + 1]
            assert nxt == "" or (nxt.startswith("|") and nxt.endswith("|")), (line, nxt)
    paired = json.loads((results / "synthetic" / "paired.json").read_text())
    assert paired["ours"]["mean"] == pytest.approx(0.025)
    assert paired["ours"]["ci95"] == pytest.approx(list(_interval([0.02, 0.03, 0.025])[1:]))
    assert paired["ours"]["map"]["mean"] == pytest.approx(0.3 * 0.025)
    assert (results / "synthetic_table1" / "paired.json").exists()


def test_a_run_in_progress_says_so():
    records = _records({"ours": [0.02, 0.03, 0.025]})
    records = [r for r in records if not (r["strategy"] == "ours" and r["trial"] == 2)]
    records = [
        r for r in records if not (r["strategy"] == "ours" and r["trial"] == 1 and r["cycle"] > 2)
    ]
    config = {"al": {"strategies": "random,ours,cald", "num_trials": 3, "num_cycles": 6,
                     "trials_per_strategy": {"cald": 2}}}  # fmt: skip
    status = main_comparison.run_status(records, config)
    assert "**In progress**: 4 of 8 (trial, strategy) runs have all 5 cycles" in status
    assert "(random 3/3, ours 1/3, cald 0/2)" in status and "left" not in status
    # cycle runs left: ours 3 x 5 - 7 finished, cald 2 x 5: 18 at 10 min each (15 min at the
    # 90th percentile); every trial has its cycle-0 model
    pace = {"cycle": (600.0, 900.0), "cycle_0": (1800.0, 3600.0)}
    status = main_comparison.run_status(records, config, pace)
    assert (
        "18 cycle runs are left: about 3.0 h at the median pace so far (10.0 min per cycle "
        "run), 4.5 h at the 90th percentile's"
    ) in status
    # a 4th trial planned: random 5 and ours 13 cycle runs more, and its cycle-0 model
    more = dict(config, al=dict(config["al"], num_trials=4))
    assert (
        "28 cycle runs and 1 cycle-0 model are left: about 5.2 h at the median pace so far "
        "(10.0 min per cycle run, 30.0 min per cycle-0 model), 8.0 h at the 90th percentile's"
    ) in main_comparison.run_status(records, more, pace)
    # no cycle-0 model timed yet (only copied ones): the cycle runs, the rest counted
    untimed = {"cycle": (600.0, 900.0), "cycle_0": (math.nan, math.nan)}
    assert (
        "28 cycle runs are left, plus 1 cycle-0 model (none trained here yet: not timed): "
        "about 4.7 h at the median pace so far (10.0 min per cycle run), 7.0 h at"
    ) in main_comparison.run_status(records, more, untimed)
    # without the pace of cycle-0 models (a run that copies them), only the cycle runs
    assert "28 cycle runs are left" in main_comparison.run_status(
        records, more, {"cycle": (600.0, 900.0)}
    )
    # a strategy that has started but finished no trial gives no interval and no verdict
    started = records + [
        dict(r, strategy="ll4al") for r in records if r["strategy"] == "random" and r["cycle"] < 2
    ]
    rows = main_comparison.claims(started, {})
    assert rows[
        "LL4AL > random in mDSQ (the paper: 95 % reached at 74 % labeled, random at 87 %)"
    ] == (
        "—",
        "no finished trial yet",
    )
    assert rows["ours > random in mDSQ (+3.39 % at 80 % labeled)"][0].endswith("(n=1)")
    config["al"]["strategies"] = "random"
    assert main_comparison.run_status(records, config) == ""  # complete
    assert (
        main_comparison.run_status(records, None) == ""
        and main_comparison.run_status(records, {"al": {}}) == ""
    )


def test_cycle_seconds_is_the_median_over_finished_cycles(tmp_path):
    assert math.isnan(run_dirs.cycle_seconds(str(tmp_path)))
    for run, seconds in (("trial_0/cycle_0", 5000.0), ("reference", 9000.0),
                         ("trial_0/ours/cycle_1", 100.0), ("trial_0/ours/cycle_2", 300.0),
                         ("trial_1/random/cycle_1", 200.0)):  # fmt: skip
        os.makedirs(tmp_path / run)
        (tmp_path / run / "wall.json").write_text(json.dumps({"seconds": seconds}))
    assert run_dirs.cycle_seconds(str(tmp_path)) == 200.0  # cycle 0 and the reference left out
    pace = run_dirs.pace(str(tmp_path))
    assert pace["cycle"] == pytest.approx((200.0, 280.0))  # median, 90th percentile
    assert pace["cycle_0"] == (5000.0, 5000.0)
    assert "cycle_0" not in run_dirs.pace(str(tmp_path), cycle_0=False)
    # a cycle-0 model copied from another experiment (al.share_from) keeps the source's
    # wall.json: its time is not this run's pace
    from mtal_jax.al.experiment import share

    os.makedirs(tmp_path / "trial_1" / "cycle_0")
    (tmp_path / "trial_1" / "cycle_0" / "wall.json").write_text(json.dumps({"seconds": 100.0}))
    (tmp_path / "trial_1" / "cycle_0" / share.MARKER).write_text("{}")
    assert run_dirs.pace(str(tmp_path))["cycle_0"] == (5000.0, 5000.0)
    assert all(math.isnan(x) for x in run_dirs.pace(str(tmp_path / "none"))["cycle_0"])


def test_missing_runs_give_placeholders(tmp_path):
    page = results_page.build(
        {"camvid": (str(tmp_path / "none"), str(tmp_path / "none_t1"))}, str(tmp_path / "r"),
        str(tmp_path / "src"), composition=False,
    )  # fmt: skip
    assert "not available yet" in page and "## CamVid" in page
    assert analyses.FIG5_CAPTION not in page  # no figure, no caption
    assert "_(no regime measurements for this dataset yet)_" in page
    assert "--workdir " + str(tmp_path / "none") + "` (not started)" in page
    # a run that has started (its config written) but has no record yet says so
    os.makedirs(tmp_path / "none")
    (tmp_path / "none" / "config.json").write_text("{}")
    page = results_page.build(
        {"camvid": (str(tmp_path / "none"), str(tmp_path / "none_t1"))}, str(tmp_path / "r"),
        str(tmp_path / "src"), composition=False,
    )  # fmt: skip
    assert "**Status: runs in progress**" in page
    assert "--workdir " + str(tmp_path / "none") + "` (started; no cycle finished yet)" in page
    # Table I shares the main comparison's runs (al.share_from)
    t1 = f"--workdir {tmp_path / 'none_t1'} --config.al.share_from={tmp_path / 'none'}`"
    assert t1 + " (not started)" in page
    # a GPU comparison still continuing is listed with its progress
    par = tmp_path / "par"
    par.mkdir()
    state = {"parts": {"random.trial_0": {"complete": True}, "ours.trial_0": {"complete": False}}}
    (par / "parallel.json").write_text(json.dumps(state))
    page = results_page.build(
        {"camvid": (str(tmp_path / "none"), str(tmp_path / "none_t1"))}, str(tmp_path / "r"),
        str(tmp_path / "src"), composition=False, gpu_parallel_runs={"camvid": str(par)},
    )  # fmt: skip
    assert f"`{par}` (camvid, on a GPU: 1 of 2 strategy-trials complete;" in page


def test_an_archive_stands_in_for_a_missing_run_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_dirs, "M", str(tmp_path))
    assert run_dirs.default_run("runs/repro_x") == "runs/repro_x"  # neither exists: as given
    archived = tmp_path / "experiments" / "repro_x"
    archived.mkdir(parents=True)
    (archived / "archive.json").write_text("{}")
    assert run_dirs.default_run("runs/repro_x") == str(archived)
    assert run_dirs.shown(str(archived)) == os.path.join("runs", "repro_x")  # continued there
    (tmp_path / "runs" / "repro_x").mkdir(parents=True)
    assert run_dirs.default_run("runs/repro_x") == "runs/repro_x"  # the live run wins
    assert run_dirs.shown("runs/repro_x") == "runs/repro_x"


def test_trials10_section_pairs_ours_with_random_over_its_trials(tmp_path, monkeypatch):
    """The ``trials10`` experiment (ours against random over more trials): its own
    subsection, files and claim rows; absent when not planned, a placeholder before it runs."""
    _run_dir(tmp_path / "main", _records({"ours": [0.02, 0.0, 0.01]}))
    results, src = str(tmp_path / "results"), str(tmp_path / "src")
    t10 = tmp_path / "t10"

    def page(*run):
        return results_page.build(
            {"camvid": (str(tmp_path / "main"), "", *run)}, results, src, False
        )

    assert "More trials" not in page()  # not planned
    text = page(str(t10))
    assert "### More trials: ours against random (10 trials planned)" in text
    command = f"`python train.py --config configs/camvid.py:trials10 --workdir {t10}"
    assert f"{command} --config.al.share_from={tmp_path / 'main'}` (not started)." in text
    mean, lo, hi = _interval([0.02, 0.0, 0.01])  # the main comparison's reading, for context
    assert (
        f"pairs ours with random in 3 trials: mDSQ gain +{mean:.3f} [{lo:+.3f}, +{hi:.3f}]" in text
    )

    config = {"al": {"strategies": "random,ours", "num_trials": 3, "share_from": "runs/repro_camvid",
                     "strategy": {"kwargs": {}}}}  # fmt: skip
    _run_dir(t10, _records({"ours": [0.02, 0.03, 0.025]}), config)
    text = page(str(t10))
    mean, lo, hi = _interval([0.02, 0.03, 0.025])
    interval = f"+{mean:.3f} [+{lo:.3f}, +{hi:.3f}]"
    assert "### More trials: ours against random (3 trials)\n" in text  # all finished
    assert f"--workdir {t10} --config.al.share_from=runs/repro_camvid`; wall time" in text
    assert f"| ours vs random | 3 | {interval} | +0.0075 [" in text and "| reproduced |" in text
    assert "+7.5 [" in text and "pp (reached in 3/3)" in text
    claim = "| ours > random in mDSQ (+3.39 % at 80 % labeled), 3 trials planned (`trials10`) |"
    assert f"{claim} {interval} (n=3) | **reproduced** |" in text
    assert f"{main_comparison.MATCH_FINAL_CLAIM}, 3 trials planned (`trials10`) | +7.5 [" in text
    assert (tmp_path / "results" / "camvid_trials10" / "paired.json").exists()
    assert "trials10" not in text.split("## Side by side")[0]  # finished: not in the status
    from docs.results_lib import run_dirs

    script = tmp_path / "continue.sh"  # an extension queued in continue.sh: in the status
    script.write_text('  "t10 configs/camvid.py:trials10 - --config.al.num_trials=5"\n')
    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(script))
    status = page(str(t10)).split("## Side by side")[0]
    assert (
        f"--workdir {t10} --config.al.share_from=runs/repro_camvid --config.al.num_trials=5` "
        "(queued in `experiments/continue.sh`: extends its 3 finished trials to 5)"
    ) in status
    monkeypatch.undo()
    # the synthetic column of a claim only CamVid has
    both = results_page.build(
        {"synthetic": (str(tmp_path / "main"), ""), "camvid": (str(tmp_path / "main"), "", str(t10))},
        results, src, False,
    )  # fmt: skip
    assert f"{claim} — | not run | — | {interval} (n=3) | **reproduced** | " in both


def test_trials10_pooled_claims_are_corrected_for_the_looks():
    """The pooled row read at 3 looks (5, 10 and 20 trials): Bonferroni, p x 3."""
    from docs.results_lib import trials10

    gain = {"trials": 14, "p_value": 0.0083, "mean": 0.046}
    savings = {"trials": 14, "p_value": 0.0004, "mean": 0.14}
    text = trials10._looks_paragraph([5, 10], 20, gain, savings)
    assert "Corrected for its 3 looks (5, 10, 20 trials, the last as planned;" in text
    assert "mDSQ gain: p 0.008, adjusted 0.025 (reproduced after it)" in text
    assert "final mDSQ: p <0.001, adjusted 0.001 (reproduced after it)" in text
    assert "interim readings, at 14 of 20 trials" in text
    weak = {"trials": 20, "p_value": 0.03, "mean": 0.01}
    text = trials10._looks_paragraph([10], 20, weak, {"trials": 0})
    assert "Corrected for its 2 looks (10, 20 trials" in text
    assert "mDSQ gain: p 0.030, adjusted 0.060 (not distinguishable from noise after it)." in text
    assert "interim" not in text and "final mDSQ" not in text
    worse = {"trials": 20, "p_value": 0.001, "mean": -0.02}
    assert "(contradicted after it)" in trials10._looks_paragraph([10], 20, worse, {"trials": 0})
    assert trials10._looks_paragraph([10], 20, {"trials": 0}, {"trials": 0}) == ""
    # label savings are read at both ends of the unreached trials, as the claim table reads
    # them (significance.bounded_verdict): worst end below 0, best above: no verdict, p 1
    bounded = {"trials": 20, "p_value": 0.001, "mean": -0.05,
               "best_case": {"p_value": 0.2, "mean": 0.02, "ci95": [-0.01, 0.05]},
               "ci95": [-0.07, -0.03]}  # fmt: skip
    text = trials10._looks_paragraph([10], 20, weak, bounded)
    assert "final mDSQ: p 1.000, adjusted 1.000 (not distinguishable from noise after it)" in text


def test_trials10_extension_against_the_trials_before_it():
    """The trials an extension added against the trials before it, two independent groups
    (Welch's t), from the paired gains."""
    import scipy.stats

    from docs.results_lib import trials10

    first, added = [0.01, -0.02, 0.03, 0.0], [0.09, 0.07, 0.11]
    per_trial = [{"trial": t, "mdsq": v} for t, v in enumerate(first + added)]
    per_trial.append({"trial": 7, "mdsq": math.nan})  # no gain: left out
    text = trials10._against_before(per_trial, 4, 8)
    want = scipy.stats.ttest_ind(added, first, equal_var=False)
    assert "mean gain +0.090 (3 trials) against +0.005 (4), a difference of +0.085 [" in text
    assert f"(Welch's t, p {significance.format_p(want.pvalue)};" in text
    assert "beyond chance at 95 %" in text
    close = [{"trial": t, "mdsq": v} for t, v in enumerate([0.01, 0.05, 0.02, 0.06])]
    assert "not distinguishable from chance" in trials10._against_before(close, 2, 4)
    assert trials10._against_before(close, 3, 4) == ""  # one added trial: no interval


def test_trials10_extension_difference_split_into_cycle0_random_and_ours(tmp_path):
    """Where the extension's difference lies: the cycle-0 models and each strategy's mean
    over cycles 1-5, added trials against the earlier ones (Welch), over the trials both
    strategies finished; a pointer to the code check only when its README exists."""
    import scipy.stats

    from docs.results_lib import trials10

    cycle_0 = [0.70, 0.72, 0.68, 0.71, 0.69, 0.73]
    random_curve = {0: 0.80, 1: 0.82, 2: 0.84, 3: 0.70, 4: 0.72, 5: 0.71}
    records = []
    for t in range(7):  # trial 6: random only (unfinished pair), left out
        records.append({"trial": t, "strategy": "random", "cycle": 0, "mdsq": 0.5 + 0.01 * t})
        for c in (1, 2):
            records.append(
                {"trial": t, "strategy": "random", "cycle": c, "mdsq": random_curve.get(t, 0.1)}
            )
            if t < 6:
                records.append({"trial": t, "strategy": "ours", "cycle": c, "mdsq": 0.9 + c / 100})
    for r in records:
        if r["cycle"] == 0 and r["trial"] < 6:
            r["mdsq"] = cycle_0[r["trial"]]
    per_trial = [{"trial": t, "mdsq": 0.0} for t in range(6)]
    text = trials10._where_it_lies(records, per_trial, 3, 7)
    want = scipy.stats.ttest_ind([0.70, 0.72, 0.71], [0.80, 0.82, 0.84], equal_var=False)
    assert "the cycle-0 models 0.710 against 0.700, +0.010 [" in text
    assert "random over cycles 1-5 0.710 against 0.820, -0.110 [" in text
    assert f"(p {significance.format_p(want.pvalue)})" in text
    assert "ours over cycles 1-5 0.915 against 0.915, +0.000" in text
    assert trials10._where_it_lies(records, per_trial[:4], 3, 7) == ""  # one added trial
    assert trials10._code_check(str(tmp_path), "results") == ""
    folder = tmp_path / "trials10_code_check"
    folder.mkdir()
    rescore = [
        {"trial": t, "spearman": 0.999 - t / 1000, "budget": 37, "selected_again": 35 + t}
        for t in range(3)
    ]
    (folder / "rescore.json").write_text(json.dumps(rescore))
    assert trials10._code_check(str(tmp_path), "results") == ""  # no replay yet
    run = {"map": 0.05, "miou": 0.45}
    replay = {
        "recorded": "x/trial_0/random/cycle_1",
        "runs": {"recorded": {"map": 0.06, "miou": 0.46}, "the_new_code": run, "the_old_code": run},
        "pairs": {
            "recorded vs the_new_code": {
                "losses_equal_to_the_bit": False,
                "evaluation_equal": False,
            },
            "recorded vs the_old_code": {
                "losses_equal_to_the_bit": False,
                "evaluation_equal": False,
            },
            "the_new_code vs the_old_code": {
                "losses_equal_to_the_bit": True,
                "evaluation_equal": True,
            },
        },
    }
    (folder / "replay.json").write_text(json.dumps(replay))
    text = trials10._code_check(str(tmp_path), "results")
    assert "(results/trials10_code_check/README.md)" in text
    assert "pool of trials 0, 1, 2 " in text
    assert "(Spearman 0.997 or more" in text and "35-37 of the 37 images" in text
    assert (
        "machine the new code and the old code train the recorded run `x/trial_0/random/cycle_1`"
        in text
    )
    assert "mAP 0.0500, mIoU 0.4500), while the run recorded" in text
    assert "reached mAP 0.0600, mIoU 0.4600" in text
    assert "Neither check finds a part for the code" in text
    rescore[1]["selected_again"] = 30  # under 90 % of 37: the scores changed
    (folder / "rescore.json").write_text(json.dumps(rescore))
    text = trials10._code_check(str(tmp_path), "results")
    assert "otherwise than their own code did" in text and "same bits" in text
    assert "Neither check" not in text
    replay["pairs"]["the_new_code vs the_old_code"]["losses_equal_to_the_bit"] = False
    (folder / "replay.json").write_text(json.dumps(replay))
    text = trials10._code_check(str(tmp_path), "results")
    assert "same bits" not in text and text.endswith("selected again).")


def test_fig6_readings_over_models_replace_one_models_bootstrap(tmp_path):
    from mtal_jax.analysis import correlation

    def model(*stats):
        return [{"claim": c, "statistic": v, "num_images": 220} for (c, _, _), v in
                zip(correlation.FIG6_CLAIMS, stats)]  # fmt: skip

    per_model = [model(0.1, -0.3, -0.5, -0.3, -0.5, 0.0), model(0.2, -0.4, -0.4, -0.4, -0.4, 0.1),
                 model(0.3, -0.5, -0.6, -0.5, -0.6, -0.1)]  # fmt: skip
    across = correlation.across_models(per_model, ["trial_0", "trial_1", "trial_2"])
    assert analyses.fig6_model_rows(str(tmp_path / "fig6_models.json")) == {}  # not made yet
    assert analyses.fig6_models_text(str(tmp_path)) == ""
    (tmp_path / "fig6_models.json").write_text(json.dumps(across))
    (tmp_path / "fig6_models.md").write_text(correlation.across_models_markdown(across))
    rows = analyses.fig6_model_rows(str(tmp_path / "fig6_models.json"))
    # S_seg [0.1, 0.2, 0.3]: mean 0.2, std 0.1, half 4.302653 * 0.1 / sqrt(3) = 0.248
    seg = rows["Fig. 6: S_seg measures the segmentation loss best"]
    assert seg[0] == "+0.20 [-0.05, +0.45] (3 models: each trial's cycle 0)"
    assert seg[1] == significance.NOT_DISTINGUISHABLE and seg[2] == pytest.approx(
        across["claims"][0]["p_value"]
    )
    assert (
        rows["Fig. 6: S_cls measures the classification error of the detected boxes best"][1]
        == "contradicted"
    )
    text = analyses.fig6_models_text(str(tmp_path))
    assert "| S_seg measures the segmentation loss best | +0.10 | +0.20 | +0.30 | +0.20 [" in text
    assert _lines_glued_to_tables(text) == []  # the wall-time line is not a row
    assert "Wall time: not recorded" in text
    # one model only: the bootstrap rows stay
    one = dict(across, models=["trial_0"])
    (tmp_path / "fig6_models.json").write_text(json.dumps(one))
    assert analyses.fig6_model_rows(str(tmp_path / "fig6_models.json")) == {}


def test_side_by_side_adjusts_p_values_by_holm_within_each_family():

    rows = {
        "claim a": ("+0.010 [+0.002, +0.018] (n=5)", "reproduced", 0.02),
        "claim b": ("+0.030 [+0.020, +0.040] (n=5)", "reproduced", 0.001),
        "claim c": ("-0.004 [-0.011, +0.003] (n=5)", significance.NOT_DISTINGUISHABLE, 0.3),
        "claim d": ("—", "no finished trial yet"),
        "Fig. 6: S_seg measures the segmentation loss best": ("+0.44", "reproduced", 0.04),
        "Table I (js): all three > S_seg": ("+0.01", "contradicted", 0.01),
        "Table I (kl): all three > S_seg": ("+0.01", "contradicted", 0.01),
        "Table II: tau = 0.3": ("54.7", "no interval (one model): other best tau"),
    }
    text = claims_table.side_by_side({"camvid": rows})
    # main comparison (a, b, c; d has no test): sorted b 0.001 x 3, a 0.02 x 2, c 0.3 x 1
    assert "| claim b | +0.030 [+0.020, +0.040] (n=5) | **reproduced** | 0.001 (0.003) |" in text
    assert "| claim a | +0.010 [+0.002, +0.018] (n=5) | **reproduced** | 0.020 (0.040) |" in text
    assert "| claim c | -0.004 [-0.011, +0.003] (n=5) | not distinguishable" in text
    assert "| 0.300 (0.300) |" in text and "| claim d | — | no finished trial yet | — |" in text
    # a family of one keeps its p; Table I's modes are separate families
    assert "segmentation loss best | +0.44 | **reproduced** | 0.040 (0.040) |" in text
    assert text.count("| **contradicted** | 0.010 (0.010) |") == 2
    assert "| Table II: tau = 0.3 | 54.7 | no interval (one model): other best tau | — |" in text
    assert "camvid: main comparison 3, Fig. 6 1, Table I (js) 1, Table I (kl) 1)" in text
    # with a fourth test in the family, claim a no longer holds after the adjustment
    rows["claim e"] = ("+0.020 [+0.001, +0.039] (n=5)", "reproduced", 0.035)
    text = claims_table.side_by_side({"camvid": rows})
    assert "| claim a | +0.010 [+0.002, +0.018] (n=5) | reproduced (not after Holm) |" in text
    # sorted b 0.001 x 4, a 0.02 x 3, e 0.035 x 2, c 0.3 x 1
    assert "| 0.020 (0.060) |" in text and "| 0.035 (0.070) |" in text
    assert "| **reproduced** | 0.001 (0.004) |" in text


def test_verdicts_in_brief_group_the_claims_as_the_table_reads_them():
    rows = {
        "claim a (+1 % at 80 % labeled)": ("+0.010 [+0.002, +0.018] (n=5)", "reproduced", 0.02),
        "claim b": ("+0.030 [+0.020, +0.040] (n=5)", "reproduced", 0.001),
        "claim c": ("-0.004 [-0.011, +0.003] (n=5)", significance.NOT_DISTINGUISHABLE, 0.3),
        "claim d": ("—", "no finished trial yet"),
        "claim e": ("+0.020 [+0.001, +0.039] (n=5)", "reproduced", 0.035),
        "claim b (paper), 20 trials planned (`trials10`)": ("+0.03", "reproduced", 0.001),
        "Fig. 6: S_seg measures the segmentation loss best": ("-0.44", "contradicted", 0.04),
        "Table I (js): all three > S_seg": ("+0.01", "contradicted", 0.01),
        "Table II: tau = 0.3 gives (74.7)": ("54.7", "no interval (one model): other best tau"),
    }
    text = claims_table.verdicts_in_brief({"camvid": rows}, {"camvid": "CamVid"})
    table = claims_table.side_by_side({"camvid": rows})
    # main comparison: b 0.001 x 5, b (20 trials) 0.001 x 4, a 0.02 x 3, e 0.035 x 2: a and e
    # hold before Holm only, as the table marks them
    assert "| +0.010 [+0.002, +0.018] (n=5) | reproduced (not after Holm) |" in table
    assert (
        "- CamVid: **Reproduced**: claim b; claim b, 20 trials. Reproduced before Holm's "
        "adjustment only: claim a; claim e. **Contradicted**: Fig. 6: S_seg measures the "
        "segmentation loss best; Table I (js): all three > S_seg. Not distinguishable from "
        "noise at this power: 1 claim. No test (not run or not finished yet, or no "
        "interval): 2." in text
    )


def test_convergence_table_pairs_runs_that_differ_only_in_doubled_steps():

    def job(labeled, steps, seed, mdsq):
        return {"labeled": labeled, "pool": 100, "steps": steps, "passes": steps * 16 / 100,
                "seed": seed, "mdsq": mdsq}  # fmt: skip

    jobs = {
        "f40_s0": job(40, 100, 0, 0.70), "f40_s0_x2": job(40, 200, 0, 0.76),
        "f40_s1": job(40, 100, 1, 0.71),  # another seed: no pair with f40_s0_x2
        "w50_e9": job(50, 207, 1, 0.80), "w50_e18": job(50, 413, 1, 0.81),  # 413 ~ 2 x 207
        "w50_e9_from_other": job(50, 207, 1, 0.79),  # warm-started from another run
        "lc50_e18": job(50, 413, 1, 0.90),  # not warm-started: no pair with w50_e9
    }  # fmt: skip
    assert regime.doubling_pairs(jobs) == [("f40_s0", "f40_s0_x2"), ("w50_e9", "w50_e18")]
    noise = {"mdsq_std_pooled": 0.02, "min_detectable_diff": {"5": 0.05}}
    table = regime.convergence_table(jobs, noise)
    assert (
        "| f40_s0 | f40_s0_x2 | 40 / 100 | 16.0 -> 32.0 | 0.700 -> 0.760 | +0.060 | +3.0 | beyond |"
        in table
    )
    assert "| w50_e9 | w50_e18 | 50 / 100 |" in table and "| +0.010 | +0.5 | within |" in table
    assert regime.convergence_table({"ref": job(100, 10, 0, 1.0)}, noise) == ""


def test_convergence_reads_successive_doublings_together():
    """Each doubling within one pair's noise (1.96 sqrt(2) seed stds) but all in one
    direction and beyond it together: a steady climb, not convergence."""

    def job(steps, mdsq):
        return {"labeled": 50, "pool": 100, "steps": steps, "passes": steps * 16 / 100,
                "seed": 1, "mdsq": mdsq}  # fmt: skip

    jobs = {"w50_e3": job(100, 0.70), "w50_e6": job(200, 0.71), "w50_e12": job(400, 0.72)}
    table = regime.convergence_table(jobs, {"mdsq_std_pooled": 0.005})
    assert "beyond noise when it exceeds 0.014" in table
    assert table.count("| +0.010 | +2.0 | within |") == 2
    assert (
        "w50_e3 to w50_e12 (16.0 -> 64.0 passes, 2 successive doublings): changes +0.010, "
        "+0.010, together +0.020 (+4.0 seed stds): a steady climb beyond one pair's noise"
    ) in table
    jobs["w50_e12"]["mdsq"] = 0.705  # down again: no steady trend
    assert "no steady trend" in regime.convergence_table(jobs, {"mdsq_std_pooled": 0.005})


def test_schedule_convergence_reads_the_configs_lengths():
    """Cycle 0: cold-started jobs on the initial fraction at the config's passes; the
    cycles: warm-started jobs at its cycle passes; a steady chain counts, as in the table."""

    def job(labeled, passes, mdsq):
        return {"labeled": labeled, "pool": 100, "steps": passes * 100 / 16, "passes": passes,
                "seed": 1, "mdsq": mdsq}  # fmt: skip

    jobs = {
        "f40_s1": job(40, 10.0, 0.70), "f40_s1_x2": job(40, 20.0, 0.71),  # within
        "f70_s1": job(70, 10.0, 0.70), "f70_s1_x2": job(70, 20.0, 0.90),  # not the initial set
        "w50_e3": job(50, 3.0, 0.70), "w50_e6": job(50, 6.0, 0.71), "w50_e12": job(50, 12.0, 0.72),
    }  # fmt: skip
    noise = {"mdsq_std_pooled": 0.005}  # one pair's noise 0.014
    config = {"train": {"initial_epochs": 10, "cycle_epochs": 6}, "al": {"initial_fraction": 0.4}}
    assert regime.schedule_convergence(jobs, noise, config) == [
        ("cycle 0", 10.0, "within noise when doubled"),
        ("the cycles", 6.0, "not converged"),  # +0.01 twice: a steady climb beyond 0.014
    ]
    jobs["w50_e12"]["mdsq"] = 0.705
    jobs["f40_s1_x2"]["mdsq"] = 0.72  # +0.02: beyond one pair's noise
    config["train"]["cycle_epochs"] = 9  # no job at 9 passes
    assert regime.schedule_convergence(jobs, noise, config) == [
        ("cycle 0", 10.0, "not converged"),
        ("the cycles", 9.0, "not checked at this length"),
    ]
    assert regime.schedule_convergence(jobs, {}, config) == []  # no noise floor: no reading
    # explicit steps count in passes over the jobs' pool: 625 x 16 / 100 = 100 passes
    config["train"].update(initial_steps=625, batch_size=16)
    assert regime.schedule_convergence(jobs, noise, config)[0] == (
        "cycle 0",
        100.0,
        "not checked at this length",
    )


def test_cost_section_prices_the_trial_count_continue_sh_runs(tmp_path, monkeypatch):
    """The ``trials10`` row at its preset's trials, and one at the count ``continue.sh``
    extends it to (more trials: more steps, the shared first trials not counted)."""
    (tmp_path / "camvid").mkdir()
    (tmp_path / "camvid" / "regime.json").write_text(json.dumps(
        {"f40_s0": {"pool": 367, "steps": 299, "wall_s": 299.0}}))  # fmt: skip
    script = tmp_path / "continue.sh"
    script.write_text(
        'EXPERIMENTS=(\n  "trials10_camvid configs/camvid.py:trials10 - --config.al.num_trials=20"\n)\n'
    )
    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(script))
    text = regime.cost_section("camvid", str(tmp_path))
    rows = [line for line in text.splitlines() if ":trials10 " in line]
    assert len(rows) == 2 and "--config.al.num_trials=20` (after `repro`)" in rows[1]
    preset, extended = (int(r.split(" | ")[1].replace(",", "")) for r in rows)
    assert extended == 3 * preset  # 5 -> 20 new trials against 5 -> 10: three times the steps
    for count in (10, 8):  # the preset's own count, or fewer: no second row
        script.write_text(
            f'EXPERIMENTS=(\n  "trials10_camvid configs/camvid.py:trials10 - '
            f'--config.al.num_trials={count}"\n)\n'
        )
        rows = [x for x in regime.cost_section("camvid", str(tmp_path)).splitlines()
                if ":trials10 " in x]  # fmt: skip
        assert len(rows) == 1 and "num_trials" not in rows[0]
    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(tmp_path / "none.sh"))
    assert (
        len(
            [
                x
                for x in regime.cost_section("camvid", str(tmp_path)).splitlines()
                if ":trials10 " in x
            ]
        )
        == 1
    )


def test_convergence_summary_names_each_part_and_a_floor_of_another_length(tmp_path):
    def job(labeled, passes, mdsq):
        return {"labeled": labeled, "pool": 100, "steps": passes * 100 / 16, "passes": passes,
                "seed": 0, "mdsq": mdsq}  # fmt: skip

    (tmp_path / "camvid").mkdir()
    (tmp_path / "camvid" / "regime.json").write_text(json.dumps(
        {"f40_s0": job(40, 26.0, 0.70), "f40_s0_x2": job(40, 52.0, 0.71)}))  # fmt: skip
    noise = {"mdsq_std_pooled": 0.02, "steps": {"40": 81}}  # 81 x 16 / 100 = 13 passes
    (tmp_path / "camvid" / "noise_floor.json").write_text(json.dumps(noise))
    config = {"train": {"initial_epochs": 26, "cycle_epochs": 9, "batch_size": 16},
              "al": {"initial_fraction": 0.4}}  # fmt: skip
    text = regime.convergence_summary(str(tmp_path), {"camvid": config})
    assert (
        "CamVid: cycle 0 (26 passes) within noise when doubled, the cycles (9 passes) not "
        "checked at this length (its noise floor was measured at another length"
    ) in text
    assert regime.convergence_summary(str(tmp_path), {"camvid": None}) == ""


def test_noise_floor_says_when_it_trained_another_length():
    jobs = {"f40_s0": {"pool": 367}}
    config = {"train": {"batch_size": 16, "initial_epochs": 26}}
    noise = {"steps": {"40": 299, "70": 299}}  # 299 x 16 / 367 = 13 passes
    assert "Its runs trained 13 passes, the run's cycle 0 26" in regime._noise_length(
        noise, config, jobs
    )
    assert regime._noise_length({"steps": {"40": 597}}, config, jobs) == ""  # 26.03 passes
    assert regime._noise_length(noise, None, jobs) == ""


def test_better_later_reads_the_last_cycle_alone():
    """ours's mAP gain over CALD only in the last cycle (+0.01, +0.02, +0.03 there, 0
    before): the mean over the cycles dilutes it, the last cycle alone reads it."""
    records = _records({"ours": [0.0, 0.0, 0.0], "cald": [0.0, 0.0, 0.0]})
    last = max(r["cycle"] for r in records)
    for r in records:
        if r["strategy"] == "ours" and r["cycle"] == last:
            r["map"] += 0.01 * (r["trial"] + 1)
    rows = main_comparison.claims(records, {})
    cell, verdict, p = rows[main_comparison.LATER_CLAIM]
    mean, lo, hi = _interval([0.01, 0.02, 0.03])
    assert cell == f"+{mean:.4f} [{lo:+.4f}, +{hi:.4f}] (n=3; cycle {last})"
    assert verdict == significance.NOT_DISTINGUISHABLE and 0 < p < 1  # lo < 0 with 3 trials
    over_cycles = rows["ours >= CALD in mAP (on par, better later)"][0]
    assert over_cycles.startswith(f"+{mean / last:.4f} [")  # the same gain over 1..last


def test_table1_claims_without_a_finished_trial_say_so():
    """A Table I run that has just started (no setting has finished a trial) reads "no
    finished trial yet", not a verdict."""
    kwargs = {
        "ours_js_seg": {"base": "ours", "weights": [0, 0, 1]},
        "ours_js_loc": {"base": "ours", "weights": [1, 0, 0]},
    }
    _, rows = table1_scores.table1_section([], {"al": {"strategy": {"kwargs": kwargs}}})
    assert rows["Table I (js): S_seg > S_loc (S_seg best single score)"] == (
        table_cells.DASH,
        "no finished trial yet",
    )


def test_table1_counts_copied_runs_before_its_protocol_replays_them(tmp_path):
    """Runs copied from the main comparison (``shared_from.json``) enter Table I with the
    source's records under Table I's name, only for the copied cycles (and cycle 0), and only
    when the protocol has not written records for them yet."""
    source = _records({"ours": [0.05, 0.02, 0.03]})
    table1 = [r for r in _records({"ours_js_loc": [0.0, 0.0, 0.0]}) if r["trial"] < 2]
    run = tmp_path / "table1"
    for trial, cycles in ((0, range(1, 6)), (1, range(1, 3))):
        d = run / f"trial_{trial}" / "ours_js_all"
        for c in cycles:
            (d / f"cycle_{c}").mkdir(parents=True)
            (d / f"cycle_{c}" / "metrics.json").write_text("{}")
        marker = {"source": "runs/repro_x", "run": f"trial_{trial}/ours"}
        (d / "shared_from.json").write_text(json.dumps(marker))
    out = run_dirs.with_copied_runs(table1, str(run), "runs/repro_x/", source)
    added = [r for r in out if r["strategy"] == "ours_js_all"]
    assert sorted((r["trial"], r["cycle"]) for r in added) == [(0, c) for c in range(6)] + [
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    by_key = {(r["trial"], r["cycle"]): r["mdsq"] for r in source if r["strategy"] == "ours"}
    assert all(r["mdsq"] == by_key[(r["trial"], r["cycle"])] for r in added)
    # Already replayed by the protocol: not added twice; another source: not added.
    assert run_dirs.with_copied_runs(out, str(run), "runs/repro_x", source) == out
    assert run_dirs.with_copied_runs(table1, str(run), "runs/other", source) == table1
    _, rows = table1_scores.table1_section(
        out,
        {
            "al": {
                "strategy": {
                    "kwargs": {
                        "ours_js_loc": {"base": "ours", "weights": [1, 0, 0]},
                        "ours_js_all": {"base": "ours", "weights": [1, 1, 1]},
                    }
                }
            }
        },
    )
    cell, _, _ = rows["Table I (js): all three > S_loc"]
    assert cell.endswith("(n=1)")  # trial 0 only: trial 1 of ours_js_all has cycles 0-2


def test_table1_status_counts_the_settings_it_trains(tmp_path):
    """A Table I run in progress has a status line; the kl settings without S_cls, copies of
    the js runs made in seconds (``share.share_within``), are left out of its counts."""
    kwargs = {
        "ours_js_loc": {"base": "ours", "weights": [1, 0, 0]},
        "ours_kl_loc": {"base": "ours", "weights": [1, 0, 0], "cls_divergence": "kl"},
        "ours_kl_cls": {"base": "ours", "weights": [0, 1, 0], "cls_divergence": "kl"},
    }
    assert table1_scores.copied_settings({"al": {"strategy": {"kwargs": kwargs}}}) == [
        "ours_kl_loc"
    ]
    _run_dir(tmp_path / "main", _records({"ours": [0.02, 0.0, 0.01]}))
    records = [r for r in _records({"ours_js_loc": [0.0, 0.01, 0.0]}) if r["trial"] < 2]
    config = {"al": {"strategies": "random,ours_js_loc,ours_kl_loc,ours_kl_cls", "num_trials": 3,
                     "strategy": {"kwargs": kwargs}}}  # fmt: skip
    _run_dir(tmp_path / "table1", records, config)
    page = results_page.build(
        {"synthetic": (str(tmp_path / "main"), str(tmp_path / "table1"))},
        str(tmp_path / "results"), str(tmp_path / "src"), False,
    )  # fmt: skip
    section = page.split("### Table I")[1]
    assert "**In progress**: 4 of 9 (trial, strategy) runs" in section
    assert "(random 2/3, ours_js_loc 2/3, ours_kl_cls 0/3)" in section
    assert "Left out of these counts: ours_kl_loc, copies of the js runs" in section


def test_table1_counts_a_running_trial_apart_and_leaves_it_out_of_the_columns():
    """A setting with one finished trial and one at cycle 1: "1 (+1 running)", the mDSQ
    columns from the finished trial alone (one value, no spread), no interval."""
    records = _records({"ours_js_loc": [0.05, 0.5, 0.0]})
    records = [
        r
        for r in records
        if r["strategy"] != "ours_js_loc" or r["trial"] == 0 or (r["trial"], r["cycle"]) <= (1, 1)
    ]
    kwargs = {"ours_js_loc": {"base": "ours", "weights": [1, 0, 0]}}
    table, _ = table1_scores.table1_section(records, {"al": {"strategy": {"kwargs": kwargs}}})
    row = next(line for line in table.splitlines() if line.startswith("| js | S_loc |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "1 (+1 running)"
    x50 = table_cells.interp([r for r in records if r["trial"] == 0], "ours_js_loc", 0.5)
    assert cells[3] == f"{x50[0]:.3f}"  # trial 1's +0.5 at cycle 1 is not mixed in
    assert cells[6] == "+0.050"  # one paired trial: a mean, no interval


def test_table1_says_what_its_trials_can_detect_against_the_paper_s_differences():
    """Under Table I, per claim: the spread of its per-trial gains, the gain detected with 80 %
    power, and the trials the paper's difference would need (the mean of its Table I
    differences at 50 / 70 / 90 %: all three - S_seg = (0.9 + 1.2 + 0.4) / 3 points)."""
    gains_all, gains_seg = [0.03, 0.02, 0.05], [0.01, 0.02, 0.02]
    records = _records({"ours_js_all": gains_all, "ours_js_seg": gains_seg})
    kwargs = {"ours_js_all": {"base": "ours", "weights": [1, 1, 1]},
              "ours_js_seg": {"base": "ours", "weights": [0, 0, 1]}}  # fmt: skip
    table, _ = table1_scores.table1_section(records, {"al": {"strategy": {"kwargs": kwargs}}})
    assert table1_scores.paper_difference((1, 1, 1), (0, 0, 1)) == pytest.approx(0.025 / 3)
    diff = [a - b for a, b in zip(gains_all, gains_seg)]
    sd = float(np.std(diff, ddof=1))
    needed = significance.trials_needed(0.025 / 3, sd)
    detectable = significance.detectable_effect(sd, 3)
    assert f"| js: all three - S_seg | 3 | {sd:.4f} | {detectable:.4f} | +0.0083 (" in table
    assert table.split("| js: all three - S_seg |")[1].splitlines()[0].endswith(f"| {needed} |")
    assert "What these trials can detect" in table
    one = _records({"ours_js_all": [0.03], "ours_js_seg": [0.01]})  # one trial: no table
    table, _ = table1_scores.table1_section(one, {"al": {"strategy": {"kwargs": kwargs}}})
    assert "What these trials can detect" not in table


def test_gpu_section_sets_the_gpu_run_beside_the_same_cpu_runs(tmp_path):
    """The GPU subsection: its progress, wall times of the same runs on both machines (a CPU
    run resumed across sessions is flagged by its time per step), the whole protocol's time at
    the GPU's medians, and GPU minus CPU in the same runs, paired over the finished trials."""
    cpu = _records({})
    for r in cpu:
        r["labeled_ids"] = list(range(round(2400 * r["labeled_fraction"])))
    gpu = [dict(r, mdsq=r["mdsq"] + (0.01 if r["cycle"] else 0.0)) for r in cpu]
    gpu = [r for r in gpu if (r["trial"], r["cycle"]) != (2, 5)]  # trial 2 still running
    gpu[1] = dict(gpu[1], labeled_ids=gpu[1]["labeled_ids"][:-1])  # one other labeled set
    cpu_dir, gpu_dir = tmp_path / "cpu", tmp_path / "gpu"
    for d, records, ref, cycle0, cycle in ((cpu_dir, cpu, 50.0, 300.0, 200.0),
                                           (gpu_dir, gpu, 100.0, 20.0, 10.0)):  # fmt: skip
        _run_dir(str(d), records, {"al": {"strategies": "random", "num_trials": 3}})
        walls = {"reference": ref, **{f"trial_{t}/cycle_0": cycle0 for t in range(3)}}
        walls.update({f"trial_{r['trial']}/random/cycle_{r['cycle']}": cycle for r in records
                      if r["cycle"]})  # fmt: skip
        for path, seconds in walls.items():
            (d / path).mkdir(parents=True, exist_ok=True)
            (d / path / "wall.json").write_text(json.dumps({"seconds": seconds}))
        (d / "reference" / "metrics.json").write_text(json.dumps({"map": 0.36, "miou": 0.75}))
    log = [{"step": 50, "time": 0.0, "train/total": 1.0},
           {"step": 100, "time": 0.5, "train/total": 1.0},  # 10 ms per step
           {"step": 100, "time": 1.5, "eval/map": 0.3},  # a 1-s evaluation
           {"step": 150, "time": 2.0, "train/total": 1.0}]  # after it: not a training window  # fmt: skip
    for cycle_dir in (gpu_dir / "trial_0" / "random").iterdir():
        (cycle_dir / "logs").mkdir()
        (cycle_dir / "logs" / "metrics.jsonl").write_text("\n".join(map(json.dumps, log)))
    device = gpu_dir / "device"
    device.mkdir()
    (device / "nvidia-smi.txt").write_text("|   0  NVIDIA H200      On  |")
    (device / "versions.txt").write_text("python 3.12.3 jax 0.11.2\nbackend gpu\n")
    (device / "train_step_default_float32.json").write_text(json.dumps({"median_ms": 5.0}))
    (device / "score_throughput.json").write_text(
        json.dumps({"images_per_s": {"ours": 2400.0}, "image_hw": [256, 512]})
    )
    config = json.loads((cpu_dir / "config.json").read_text())
    text = gpu_serial.gpu_section("synthetic", str(gpu_dir), str(cpu_dir), cpu, config)
    assert "NVIDIA H200 (python 3.12.3, jax 0.11.2)" in text
    assert (
        "2 of 3 (trial, strategy) runs finished all 5 cycles (random 2; the last record: random, trial 2, cycle 4)"
        in text
    )
    # configs/default.py:repro on a 2400-image pool: 6000 / 1500 / 900 steps.
    assert "| AL cycle (selection + training) | 900 | 10 (14) | 200 | 0.22 | 20x |" in text
    assert "| cycle-0 run | 1500 | 20 (3) | 300 | 0.20 | 15x |" in text
    assert "(the reference run here: its time per step is under half" in text
    # 100 + 3 x 20 + 3 trials x 5 cycles x 10 s = 310 s
    assert "(3 cycle-0 runs, 15 AL cycle runs) takes about 5.2 min on this GPU" in text
    assert "about 1.0 s for 2400 images" in text
    # 10 ms per step against 5 ms alone; one 1-s evaluation; 10 s wall - 2 s logged.
    assert "a step takes 10.0 ms in the loop against 5.0 ms for the step alone" in text
    assert "1 evaluations take 1.0 s each; 8 s lie outside the logged span" in text
    assert f"{len(gpu) - 1} of {len(gpu)} GPU records have the CPU record's labeled set" in text
    row = next(line for line in text.splitlines() if line.startswith("| random |"))
    assert row.startswith("| random | 2 | +0.010 [+0.010, +0.010] |")
    assert row.endswith("| differ |")  # mDSQ +0.010 in both trials
    assert "so nothing there resumes" in text
    (gpu_dir / "archive.json").write_text("{}")  # archived by bench/gpu_check.sh: continued
    text = gpu_serial.gpu_section("synthetic", str(gpu_dir), str(cpu_dir), cpu, config)
    assert "an archive that the next lease continues" in text
    assert gpu_serial.gpu_section(
        "synthetic", str(tmp_path / "none"), str(cpu_dir), cpu, config
    ).endswith("_(no GPU run in `" + str(tmp_path / "none") + "`)_\n")


def test_score_makeup_reads_the_diagnostics_and_leaves_out_copied_runs(tmp_path):
    """The 'what the ours score is made of' section: the main run's ``ours`` and Table I's own
    runs, not Table I's copies of the main run; its reading names the dominant term."""
    from mtal_jax.al import diagnostics
    from mtal_jax.al.experiment import share

    rng = np.random.default_rng(0)

    def write(run, strategy, loc_scale, weights=(1.0, 1.0, 1.0)):
        cdir = tmp_path / run / "trial_0" / strategy / "cycle_1"
        cdir.mkdir(parents=True)
        s = {"s_loc_best": loc_scale * rng.uniform(size=50), "s_cls_best": rng.uniform(size=50),
             "s_seg": rng.uniform(size=50), "num_boxes": np.ones(50)}  # fmt: skip
        s["score"] = sum(w * s[k] for w, k in zip(weights, ("s_loc_best", "s_cls_best", "s_seg")))
        diag = diagnostics.score_diagnostics(s, weights=weights)
        diagnostics.write(str(cdir / diagnostics.FILENAME), diag)
        return cdir.parent

    write("main", "ours", 10.0)
    copied = write("table1", "ours_js_all", 0.0)  # would read as "S_loc share 0"
    (copied / share.MARKER).write_text(json.dumps({"source": "main", "run": "trial_0/ours"}))
    write("table1", "ours_js_seg", 1.0, weights=(0.0, 0.0, 1.0))
    d = tmp_path / "out"
    d.mkdir()
    text = score_makeup.score_makeup_section(
        str(tmp_path / "main"), str(tmp_path / "table1"), str(d)
    )
    assert "| ours | 1, 1, 1 | 1 | 50 |" in text and "| ours_js_seg | 0, 0, 1 |" in text
    assert "ours_js_all" not in text
    assert "so S_loc decides the ranking almost alone" in text
    ours = json.loads((d / "score_diagnostics.json").read_text())["ours"]["components"]
    w = ",".join(
        f"{ours['S_loc']['std'] / ours[n]['std']:.2g}" for n in ("S_loc", "S_cls", "S_seg")
    )
    assert w.startswith("1,") and f"(`select.py --weights {w}`)" in text  # share > 90 %
    assert set(json.loads((d / "score_diagnostics.json").read_text())) == {"ours", "ours_js_seg"}
    assert score_makeup.score_makeup_section(str(tmp_path / "none"), "", str(d)) == ""


def test_makeup_summary_reads_each_dataset_s_score_diagnostics(tmp_path):
    comps = {
        n: {"variance_share": v} for n, v in (("S_loc", 0.8), ("S_cls", 0.15), ("S_seg", 0.05))
    }
    ours = {"components": comps, "shared_with_alone": {"S_loc": 0.7}, "shared_by_chance": 0.3}
    (tmp_path / "camvid").mkdir()
    (tmp_path / "camvid" / "score_diagnostics.json").write_text(json.dumps({"ours": ours}))
    names = ["S_loc", "S_cls", "S_seg", "score", "L_det_cls", "L_det_loc", "L_seg"]
    rho = [[0.0] * 7 for _ in names]
    rho[0][4:] = [0.1, -0.12, 0.05]  # S_loc: largest |rho| with a loss 0.12
    rho[2][4:] = [0.3, 0.5, -0.6]  # S_seg: 0.60
    fig6 = {"names": names, "spearman": rho}
    (tmp_path / "camvid" / "fig6_correlation.json").write_text(json.dumps(fig6))
    text = score_makeup.makeup_summary(
        str(tmp_path), ["synthetic", "camvid"]
    )  # synthetic: none yet
    assert "S_loc's largest |Spearman| with a loss is 0.12 (CamVid), S_seg's 0.60 (CamVid)" in text
    assert "S_loc carries 80 % (CamVid) of its variance, S_seg 5 % (CamVid)" in text
    assert "would also have selected 70 % (CamVid), against 30 % (CamVid) by chance" in text
    assert score_makeup.makeup_summary(str(tmp_path), ["synthetic"]) == ""
    # with the errors of the detected boxes: each score against its own target
    names += ["E_det_cls", "E_det_loc"]
    rho = [row + [0.0, 0.0] for row in rho] + [[0.0] * 9, [0.0] * 9]
    rho[0][8] = 0.45  # S_loc with E_det_loc
    fig6 = {"names": names, "spearman": rho}
    (tmp_path / "camvid" / "fig6_correlation.json").write_text(json.dumps(fig6))
    text = score_makeup.makeup_summary(str(tmp_path), ["camvid"])
    assert (
        "S_loc's Spearman with the localization error of the detected boxes is +0.45 (CamVid) "
        "(with the training losses, at most 0.12 (CamVid) in magnitude), S_seg's with the "
        "segmentation loss -0.60 (CamVid)"
    ) in text


def test_variant_readings_are_marked_by_holm_over_their_table(tmp_path):
    """Two readings that exclude 0 alone (p 0.049 and 0.034) but not once the table's two
    tests of the new strategy are adjusted (Holm: 2 x 0.034 > 0.05): marked, in the table
    and for the summary; ours vs random, the main comparison's own test, is not among them."""
    records = _records({"ours": [0.0, 0.01, -0.01], "ours_native": [0.02, 0.045, 0.03]})
    run = str(tmp_path / "native")
    kwargs = {"ours_native": {"base": "ours", "crop_window": "native"}}
    _run_dir(run, records, {"al": {"strategies": "random,ours,ours_native", "num_trials": 3,
                                   "strategy": {"kwargs": kwargs}}})  # fmt: skip
    text = variants.balanced_section("camvid", run, str(tmp_path / "results"), preset="native")
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ours")}
    assert rows["| ours_native vs random"].endswith("| better (not after Holm) |")
    assert rows["| ours_native vs ours"].endswith("| better (not after Holm) |")
    assert rows["| ours vs random"].endswith("| not distinguishable from noise |")
    assert "One marked (not after Holm) does not exclude 0 once the table's 2 tests" in text
    assert "The last row is the main comparison's test" in text
    assert variants.CONTENT_ONLY_NOTE["camvid"] in text  # CamVid: the scoring change noted
    saved = json.loads((tmp_path / "results" / "camvid_native" / "comparisons.json").read_text())
    assert saved["gains"]["ours_native vs random"]["reading"] == "better (not after Holm)"
    summary = score_makeup._native_reading(str(tmp_path / "results"), ["camvid"])
    assert "(better (not after Holm))" in summary
    one = [r for r in records if r["trial"] == 0]  # one trial: no test, no Holm note
    _run_dir(run, one, {"al": {"strategies": "random,ours,ours_native", "num_trials": 3,
                               "strategy": {"kwargs": kwargs}}})  # fmt: skip
    text = variants.balanced_section("camvid", run, str(tmp_path / "results"), preset="native")
    assert "Holm" not in text and "| ours_native vs random | 1 |" in text


def test_balanced_section_pairs_the_new_strategy_with_random_and_ours(tmp_path):
    assert "(not started)" in variants.balanced_section(
        "synthetic", str(tmp_path / "none"), str(tmp_path)
    )
    records = _records({"ours": [0.01, 0.02, 0.03], "ours_balanced": [0.03, 0.04, 0.05]})
    run = str(tmp_path / "balanced")
    kwargs = {"ours_balanced": {"base": "ours", "weights": [1.0, 2.3, 2.8]}}
    _run_dir(run, records, {"al": {"strategies": "random,ours,ours_balanced", "num_trials": 3,
                                   "strategy": {"kwargs": kwargs}}})  # fmt: skip
    text = variants.balanced_section("synthetic", run, str(tmp_path / "results"))
    assert "(w_loc, w_cls, w_seg = 1, 2.3, 2.8)" in text
    assert "| ours_balanced vs random | 3 | +0.040 [+0.015, +0.065] |" in text
    assert "| ours_balanced vs ours | 3 | +0.020 [+0.020, +0.020] |" in text  # same +0.02 each
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ours")}
    assert rows["| ours_balanced vs random"].endswith("| better |")
    assert rows["| ours vs random"].endswith("| not distinguishable from noise |")
    assert (tmp_path / "results" / "synthetic_balanced" / "paired.json").exists()
    one = variants.comparison_reading({"trials": 1, "mean": 0.03, "ci95": [math.nan] * 2})
    assert one == "one trial: no test"
    assert (
        "With the table's 2 tests of ours_balanced adjusted together (Holm's method, as in the side-by-side), no reading changes"
        in text
    )
    assert variants.CONTENT_ONLY_NOTE["camvid"] not in text  # synthetic: no letterbox
    saved = json.loads(
        (tmp_path / "results" / "synthetic_balanced" / "comparisons.json").read_text()
    )
    assert saved["strategy"] == "ours_balanced" and saved["s_loc_share"] is None  # no diagnostics
    assert saved["gains"]["ours_balanced vs ours"]["trials"] == 3
    assert saved["gains"]["ours_balanced vs ours"]["ci95"] == pytest.approx([0.02, 0.02])
    # The summary under the side-by-side quotes it (the main comparison's make-up first).
    comps = {
        n: {"variance_share": v} for n, v in (("S_loc", 0.8), ("S_cls", 0.15), ("S_seg", 0.05))
    }
    ours = {"components": comps, "shared_with_alone": {"S_loc": 0.7}, "shared_by_chance": 0.3}
    (tmp_path / "results" / "synthetic" / "score_diagnostics.json").parent.mkdir()
    (tmp_path / "results" / "synthetic" / "score_diagnostics.json").write_text(
        json.dumps({"ours": ours})
    )
    summary = score_makeup.makeup_summary(
        str(tmp_path / "results"), ["synthetic", "camvid"], ["synthetic"]
    )
    assert summary.rstrip().endswith(
        "Giving the three terms one spread (`balanced`): Synthetic default: ours_balanced "
        "against ours +0.020 [+0.020, +0.020] mDSQ over 3 trials, better."
    )
    # A build without the balanced run quotes nothing, whatever an older build left.
    unquoted = score_makeup.makeup_summary(str(tmp_path / "results"), ["synthetic", "camvid"])
    assert "Giving the three terms" not in unquoted and "S_loc carries 80 %" in unquoted
    variants.balanced_section("synthetic", str(tmp_path / "gone"), str(tmp_path / "results"))
    assert not (tmp_path / "results" / "synthetic_balanced" / "comparisons.json").exists()


def test_gpu_parallel_section_pairs_the_gpu_strategies_over_ours_complete_cycles(tmp_path):
    """The parallel GPU subsection: lease throughput from each lease's parallel.json, the
    gains over random on the GPU over the cycles where every ours trial has finished, beside
    the CPU's gain in the same trials and cycles, and the selections' agreement."""
    cpu = _records({"ours": [0.02, 0.03, 0.025], "ll4al": [0.0, 0.01, 0.005]})
    for r in cpu:
        r["labeled_ids"] = [r["trial"], r["cycle"]]
    gpu = [dict(r, mdsq=r["mdsq"] + (0.001 if r["strategy"] == "ours" else 0.0)) for r in cpu]
    gpu = [r for r in gpu if not (r["strategy"] == "ours" and r["trial"] == 2 and r["cycle"] > 3)]
    gpu = [dict(r, labeled_ids=[]) if r["strategy"] == "ours" and r["cycle"] else r for r in gpu]
    par = tmp_path / "par"
    (par / "device").mkdir(parents=True)
    (par / "results.json").write_text(json.dumps(gpu))
    parts = {f"{s}.trial_{t}": {"complete": s == "random", "records": 6} for s in ("random", "ours")
             for t in range(3)}  # fmt: skip
    (par / "parallel.json").write_text(json.dumps({"parts": parts}))
    ours = [k for k in parts if k.startswith("ours")]

    def lease(n, jobs, seconds, ran):  # ran: {part: (records at the end, rc, stopped)}
        state = {k: dict(v, records=ran[k][0], rc=ran[k][1]) for k, v in parts.items() if k in ran}
        for k in ran:
            if ran[k][2] is not None:
                state[k]["stopped"] = ran[k][2]
        text = json.dumps({"jobs": jobs, "seconds": seconds, "parts": state})
        (par / "device" / f"lease{n}_parallel.json").write_text(text)

    # lease 1 (no "stopped" recorded): random complete, ours stopped at cycle 3 (4 records)
    lease(1, 6, 96.0, {k: (4, 130, None) if k in ours else (6, 0, None) for k in parts})
    lease(2, 3, 60.0, {k: (6, 0, False) for k in ours})  # ours' last 2 cycles
    lease(10, 3, 50.0, {k: (6, -6, False) for k in ours})  # sorted after 2; nothing new
    (par / "device" / "nvidia-smi.txt").write_text("| 0  NVIDIA H200  On |")  # the run's
    (par / "device" / "lease10_nvidia-smi.txt").write_text("| 0  NVIDIA H100 80GB HBM3 |")
    single = tmp_path / "single"
    (single / "trial_0" / "random" / "cycle_1").mkdir(parents=True)
    (single / "trial_0" / "random" / "cycle_1" / "wall.json").write_text('{"seconds": 13.0}')
    text, found = gpu_parallel.gpu_parallel_section("synthetic", str(par), "", cpu, str(single))
    assert "3 of 6 strategy-trials have finished every cycle" in text
    assert "| 1 | 6 | 96 | 24 | 4.0 | 13.0 | — | NVIDIA H200 |" in text  # 3 x 5 + 3 x 3
    assert "| 2 | 3 | 60 | 6 | 10.0 | 13.0 | 0 | NVIDIA H200 |" in text  # beyond lease 1's
    assert "| 10 | 3 | 50 | 0 | — | 13.0 | 3 | NVIDIA H100 |" in text.split("| 2 | 3 |")[1]
    # the section names the GPUs that trained cycles: lease 10's H100 trained none
    assert '"GPU check") on NVIDIA H200 (the GPUs of the leases that trained' in text
    files = sorted(
        (str(f) for f in (par / "device").glob("lease*_parallel.json")),
        key=gpu_parallel._lease_number,
    )
    trained = gpu_parallel._trained_on(str(par), files, [24, 6, 5])
    assert trained == "NVIDIA H200 and NVIDIA H100"
    assert gpu_parallel._trained_on(str(tmp_path), [], []) == "a GPU"
    assert "comparison's 30 AL cycles take about 2.0 min of this GPU, against 6.5 min" in text
    assert "over cycles 1-3 (50-70 % labeled" in text  # ours trial 2 stops at cycle 3
    g, c = found["ours"]["gpu"], found["ours"]["cpu"]
    assert g["cycles"] == [1, 2, 3] and g["trials"] == c["trials"] == 3
    assert g["mean"] == pytest.approx(c["mean"] + 0.001)
    assert "| ours | 3 | +0.026 [" in text and "above random |" in text
    assert "random 15 of 15" in text and "ours 0 of 13" in text
    # ours against the others: ours - ll4al = 0.02 each trial, +0.001 on the GPU
    assert "| ours > ll4al | 3 | +0.021 [+0.021, +0.021] | +0.020 [+0.020, +0.020] |" in text
    assert found["ours_vs_ll4al"]["gpu"]["cycles"] == [1, 2, 3]
    assert gpu_parallel._side_of_random([-0.1, 0.2]).startswith("not distinguishable")
    results = tmp_path / "results" / "synthetic"
    results.mkdir(parents=True)
    (results / "gpu_parallel_paired.json").write_text(json.dumps(found))
    summary = gpu_parallel.gpu_summary(str(tmp_path / "results"), ["synthetic", "camvid"])
    assert (
        "mDSQ over cycles 1-3 in the same trials on both machines: ours > random +0.026 ["
        in summary
    )
    assert "on the GPU (3 trials, above 0)" in summary
    assert "also ran on a GPU (NVIDIA H200, many processes at once" in summary
    assert gpu_parallel.gpu_summary(str(tmp_path / "results"), ["camvid"]) == ""


def test_gpu_parallel_readings_are_holm_adjusted_and_name_the_papers_direction(tmp_path):
    """The GPU table's readings against random: adjusted by Holm over the column's tests like
    the CPU's table, and a strategy the paper reports above random that reads below says so."""
    cpu = _records({"ours": [0.02, 0.03, 0.025], "ll4al": [-0.02, -0.012, -0.019]})
    par = tmp_path / "par"
    par.mkdir()
    (par / "results.json").write_text(json.dumps(cpu))
    text, found = gpu_parallel.gpu_parallel_section("synthetic", str(par), "", cpu)
    assert found["ll4al"]["gpu"]["ci95"][1] < 0
    assert "below random; the paper: above random |" in text
    assert "(not after Holm)" not in text  # both survive the adjustment: no note either
    assert "adjusted together" not in text


def test_the_command_line_finds_its_package_from_any_directory(tmp_path):
    """``python docs/make_results.py`` puts the repository root on ``sys.path`` itself, so
    ``docs.results_lib`` imports wherever it is started (its options print, nothing runs)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "docs", "make_results.py"), "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert out.stdout.startswith("usage: make_results.py")
    for option in ("--camvid_table1", "--synthetic_gpu_parallel", "--no_composition"):
        assert option in out.stdout


@pytest.mark.skipif(
    not os.path.exists(os.path.join(ROOT, "experiments", "gpu_h200_parallel")),
    reason="the committed GPU records are not in this checkout",
)
def test_the_page_does_not_depend_on_the_current_folder(tmp_path):
    """Started from another folder, the defaults still name the repository's runs and
    archives (the GPU sections were dropped silently), and the paths given are read from
    the current folder."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "docs", "make_results.py"), "--out", "page.md",
         "--results_dir", "res", "--no_composition"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    page = (tmp_path / "page.md").read_text()
    assert "### The strategies on a GPU, many processes at once" in page
    assert "_(no records in" not in page and "_(no GPU run in" not in page
    assert "![mDSQ](res/synthetic/mdsq.png)" in page
    assert (tmp_path / "res" / "synthetic" / "paired.json").exists()


def test_a_run_directory_behind_its_archive_is_read_from_the_archive(tmp_path, monkeypatch, capsys):
    """``default_run``: the run directory when it holds every record of its archive, else
    the archive, said on stderr with the command that restores it."""
    from docs.results_lib import run_dirs

    monkeypatch.setattr(run_dirs, "M", str(tmp_path))
    archive = tmp_path / "experiments" / "x"
    archive.mkdir(parents=True)
    (archive / "archive.json").write_text("{}")
    records = [{"trial": 0, "strategy": "random", "cycle": c} for c in range(3)]
    (archive / "results.json").write_text(json.dumps(records))
    assert run_dirs.default_run("runs/x") == str(archive)  # no run directory
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(records[:2]))
    assert run_dirs.default_run("runs/x") == str(archive)  # behind
    err = capsys.readouterr().err
    assert "runs/x lacks 1 records of its archive experiments/x" in err
    assert "archive_cli restore experiments/x runs/x" in err
    (run / "results.json").write_text(json.dumps(records + [dict(records[0], cycle=3)]))
    assert run_dirs.default_run("runs/x") == "runs/x"  # as far or further


def test_the_95_claim_counts_only_finished_curves():
    """The main comparison's 95 % row on a run whose trial 3 of ours is still at cycle 1:
    trial 3 is in neither count (it has not failed to reach 95 %, it is not done)."""
    records = _records({"ours": [0.02, 0.03, 0.025, 0.02]})
    records = [r for r in records if not (r["trial"] == 3 and r["strategy"] == "ours"
                                          and r["cycle"] > 1)]  # fmt: skip
    rows = main_comparison.claims(records, reporting.summarize(records))
    assert "(ours reaches it in 0/3, random in 0/3)" in rows[main_comparison.LE95_CLAIM][0]
    # the label-efficiency table counts per strategy the trials whose outcome is known
    summaries = reporting.summarize(records)
    table = main_comparison.le_table(summaries, paired.paired_stats(records, summaries))
    assert "| ours | 0/3 (+1 running) |" in table and "| random | 0/4 |" in table
    # no finished trial at all: not a failure to reach 95 %
    first = [r for r in records if r["trial"] == 3]
    rows = main_comparison.claims(first, reporting.summarize(first))
    assert rows[main_comparison.LE95_CLAIM] == (table_cells.DASH, "no finished trial yet")


def test_trials10_claims_read_only_the_trials_both_strategies_finished(tmp_path):
    """A trial whose ours curve is still running (cycles 0-1) is left out of every claim
    row, the 95 % one included: a curve under way is not one that never reaches 95 %."""
    from docs.results_lib import trials10

    records = _records({"ours": [0.02, 0.03, 0.025, 0.02]})
    records = [r for r in records if not (r["trial"] == 3 and r["strategy"] == "ours"
                                          and r["cycle"] > 1)]  # fmt: skip
    config = {"al": {"strategies": "random,ours", "num_trials": 4, "strategy": {"kwargs": {}}}}
    _run_dir(tmp_path / "t10", records, config)
    _, rows = trials10.trials10_section(
        "camvid", str(tmp_path / "t10"), "", [], str(tmp_path / "results")
    )
    le95 = next(v for k, v in rows.items() if k.startswith(main_comparison.LE95_CLAIM))
    assert "ours reaches it in 0/3, random in 0/3" in le95[0]  # trial 3 left out of both
    assert all("(n=3" in v[0] for k, v in rows.items() if k.startswith("ours > random"))


def test_an_extended_trials10_reports_each_look(tmp_path, monkeypatch):
    """A ``trials10`` experiment extended past its preset's trials (``al.num_trials`` raised
    on resume): a row for the trials the main comparison does not have, one for the first
    look (trials 0-9), one for all trials, the notes on the looks, the command with the
    raised count, and a further extension queued in ``continue.sh``."""
    from docs.results_lib import run_dirs, trials10

    script = tmp_path / "continue.sh"
    script.write_text(
        'EXPERIMENTS=(\n  "t10 configs/camvid.py:trials10 - --config.al.num_trials=20"\n)\n'
    )
    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(script))

    gains = [0.01 * (t % 3) for t in range(12)]  # first look: 0.01, 0.0 ... over 10 trials
    records = _records({"ours": gains})
    config = {"al": {"strategies": "random,ours", "num_trials": 12, "share_from": "runs/repro_camvid",
                     "strategy": {"kwargs": {}}}}  # fmt: skip
    _run_dir(tmp_path / "t10", records, config)
    main_records = [r for r in records if r["trial"] < 5]
    text, rows = trials10.trials10_section(
        "camvid", str(tmp_path / "t10"), "", main_records, str(tmp_path / "results")
    )
    assert "### More trials: ours against random (12 trials)\n" in text
    added = significance.format_interval(
        {"mean": float(np.mean(gains[5:])), "ci95": list(_t_interval(gains[5:]))}
    )
    assert f"| ours vs random, only the trials not in the main comparison | 7 | {added} |" in text
    assert "The first 5 trials are the main comparison's" in text
    assert "Queued: `experiments/continue.sh` extends it to 20 trials" in text
    assert "--config.al.share_from=runs/repro_camvid --config.al.num_trials=12`" in text
    first = significance.format_interval(
        {"mean": float(np.mean(gains[:10])), "ci95": list(_t_interval(gains[:10]))}
    )
    whole = significance.format_interval(
        {"mean": float(np.mean(gains)), "ci95": list(_t_interval(gains))}
    )
    assert f"| ours vs random, trials 0-9 | 10 | {first} |" in text
    assert f"| ours vs random | 12 | {whole} |" in text
    # the interval as the trials accumulate: a plot, linked under the section
    plot = tmp_path / "results" / "camvid_trials10" / trials10.GAIN_PLOT
    assert plot.exists() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"(results/camvid_trials10/{trials10.GAIN_PLOT})" in text
    # the first look's label savings, over its own trials
    m = paired.match_final_savings([r for r in records if r["trial"] < 10], "ours")
    row = next(x for x in text.splitlines() if x.startswith("| ours vs random, trials 0-9 |"))
    assert m["compared"] == 10
    assert (
        f"| {significance.format_bounded(m, m['best_case'])} (reached in {m['reached']}/10) |"
        in row
    )
    assert "first ran 10 trials" in text and "extended to 12" in text
    assert "not corrected for it" in text
    marked = "12 trials planned (`trials10`, extended after the 10-trial look)"
    assert set(rows) == {
        f"ours > random in mDSQ (+3.39 % at 80 % labeled), {marked}",
        f"{main_comparison.LE95_CLAIM}, {marked}",
        f"{main_comparison.MATCH_FINAL_CLAIM}, {marked}",
    }


def test_the_trials_an_extension_added_get_their_own_row(tmp_path, monkeypatch):
    """Trials added by an extension recorded in ``extensions.json`` (a later session's code):
    a row of their own with its date and commit, the look before it, the whole, and a note
    naming when and with which code they were added."""
    from docs.results_lib import trials10

    gains = [0.01, 0.0, 0.02, 0.01, 0.0, 0.02, 0.01, 0.0, 0.02, 0.01, 0.05, 0.06, 0.04]
    text, _ = _extended_trials10(tmp_path, monkeypatch, gains, [(10, 13, "2026-12-06", "abc1234")])
    interval = _t_cell
    label = "ours vs random, only trials 10-12 (the extension)"
    assert f"| {label} | 3 | {interval(gains[10:])} |" in text
    assert f"| ours vs random, trials 0-9 | 10 | {interval(gains[:10])} |" in text
    assert f"| ours vs random | 13 | {interval(gains)} |" in text
    assert "first ran 10 trials" in text and "extended to 13 after looking" in text
    assert "Trials 10-12 were added on 2026-12-06 by a session running abc1234" in text
    # Their runs' wall.json name the code that trained them (none yet: no record).
    assert (
        "trained their finished runs (`wall.json`; a run: one trial's cycle-0 model or one cycle of one strategy): none finished yet"
        in text
    )
    assert "not in the main comparison" not in text  # no main comparison given

    def wall(run, code, machine=None):
        os.makedirs(tmp_path / "t10" / run, exist_ok=True)
        record = {"seconds": 1, "code": code} | ({"machine": machine} if machine else {})
        (tmp_path / "t10" / run / "wall.json").write_text(json.dumps(record))

    wall("trial_10/cycle_0", "abc1234")
    wall("trial_10/ours/cycle_1", "abc1234")
    wall("trial_11/cycle_0", "def5678")
    (tmp_path / "t10" / "trial_12" / "cycle_0").mkdir(parents=True)
    (tmp_path / "t10" / "trial_12" / "cycle_0" / "wall.json").write_text('{"seconds": 1}')
    text, _ = trials10.trials10_section(
        "camvid", str(tmp_path / "t10"), "", [], str(tmp_path / "results")
    )
    assert (
        "trained their finished runs (`wall.json`; a run: one trial's cycle-0 model or one "
        "cycle of one strategy): abc1234: 2 runs; def5678: 1 run; "
        "not recorded: 1 run."
    ) in text
    assert "on the machines" not in text  # none recorded: no sentence
    epyc = {"cpu": "AMD EPYC", "isa": "avx2", "backend": "cpu", "device": "cpu", "devices": 2}
    wall("trial_10/ours/cycle_2", "abc1234", epyc)
    wall("trial_10/ours/cycle_3", "abc1234", epyc | {"isa": "avx512f", "cpuid": "family 25"})
    text, _ = trials10.trials10_section(
        "camvid", str(tmp_path / "t10"), "", [], str(tmp_path / "results")
    )
    assert (
        "abc1234: 4 runs; def5678: 1 run; not recorded: 1 run; on the machines "
        "(`wall.json`'s `machine`): not recorded: 4 runs; AMD EPYC (avx2), cpu x2: 1 run; "
        "AMD EPYC (avx512f; family 25), cpu x2: 1 run."
    ) in text
    # An entry beyond the config's count (a run stopped before config.json said so) is not
    # in force: the page reads the experiment as its config has it.
    (tmp_path / "t10" / "extensions.json").write_text(json.dumps([
        {"key": "al.num_trials", "from": 10, "to": 13, "at": "2026-12-06T09:00:00+0000",
         "code": "abc1234"},
        {"key": "al.num_trials", "from": 13, "to": 20, "at": "2026-12-07T09:00:00+0000",
         "code": "abc1234"},
    ]))  # fmt: skip
    text, _ = trials10.trials10_section(
        "camvid", str(tmp_path / "t10"), "", [], str(tmp_path / "results")
    )
    assert "Trials 13-19" not in text and "extended to 13 after looking" in text
    # An extension with one finished trial: no interval, so no verdict.
    one, _ = _extended_trials10(tmp_path, monkeypatch, gains[:11], [(10, 11, "2026-12-06", "a")])
    assert "| ours vs random, only trials 10-10 (the extension) | 1 | " in one
    row = next(x for x in one.splitlines() if x.startswith("| ours vs random, only trials 10-10"))
    assert row.endswith("| one trial: no test |")


def test_two_extensions_each_get_a_look_and_a_row(tmp_path, monkeypatch):
    """Extended twice (10 -> 13 -> 16): a look before each extension, a row per extension's
    trials, and the note names both steps."""
    gains = [0.01, 0.0, 0.02] * 3 + [0.01, 0.05, 0.06, 0.04, 0.03, 0.02, 0.07]
    steps = [(10, 13, "2026-12-06", "abc1234"), (13, 16, "2026-12-07", "def5678")]
    text, rows = _extended_trials10(tmp_path, monkeypatch, gains, steps)
    interval = _t_cell
    assert (
        f"| ours vs random, only trials 10-12 (the extension) | 3 | {interval(gains[10:13])} |"
        in text
    )
    assert (
        f"| ours vs random, only trials 13-15 (the extension) | 3 | {interval(gains[13:])} |"
        in text
    )
    assert f"| ours vs random, trials 0-9 | 10 | {interval(gains[:10])} |" in text
    assert f"| ours vs random, trials 0-12 | 13 | {interval(gains[:13])} |" in text
    assert f"| ours vs random | 16 | {interval(gains)} |" in text
    assert "first ran 10 trials" in text and "extended to 13, then 16 after looking" in text
    assert "Trials 10-12 were added on 2026-12-06 by a session running abc1234" in text
    assert "Trials 13-15 were added on 2026-12-07 by a session running def5678" in text
    assert all("extended after the 10-trial look" in k for k in rows)


def _extended_trials10(tmp_path, monkeypatch, gains, steps):
    """``trials10_section`` of a run of ``len(gains)`` trials (ours gains ``gains[t]`` in
    trial t) extended by ``steps`` [(from, to, date, code)] (its ``extensions.json``)."""
    from docs.results_lib import run_dirs, trials10

    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(tmp_path / "none.sh"))
    config = {"al": {"strategies": "random,ours", "num_trials": len(gains),
                     "strategy": {"kwargs": {}}}}  # fmt: skip
    _run_dir(tmp_path / "t10", _records({"ours": gains}), config)
    entries = [{"key": "al.num_trials", "from": a, "to": b, "at": f"{day}T09:00:00+0000",
                "code": code} for a, b, day, code in steps]  # fmt: skip
    (tmp_path / "t10" / "extensions.json").write_text(json.dumps(entries))
    return trials10.trials10_section(
        "camvid", str(tmp_path / "t10"), "", [], str(tmp_path / "results")
    )


def _t_cell(values):
    """``significance.format_interval`` of the mean and t interval of ``values``."""
    return significance.format_interval(
        {"mean": float(np.mean(values)), "ci95": list(_t_interval(values))}
    )


def _t_interval(values):
    from scipy import stats

    values = np.asarray(values, float)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def test_makeup_summary_quotes_the_native_experiment_against_random_and_ours(tmp_path):
    results = tmp_path / "results"
    (results / "camvid").mkdir(parents=True)
    comps = {
        n: {"variance_share": v} for n, v in (("S_loc", 0.8), ("S_cls", 0.15), ("S_seg", 0.05))
    }
    ours = {"components": comps, "shared_with_alone": {"S_loc": 0.7}, "shared_by_chance": 0.3}
    (results / "camvid" / "score_diagnostics.json").write_text(json.dumps({"ours": ours}))
    (results / "camvid_native").mkdir()
    gain = {"mean": 0.046, "ci95": [0.021, 0.071], "trials": 5, "p_value": 0.007}
    same = {"mean": -0.006, "ci95": [-0.048, 0.037], "trials": 5, "p_value": 0.72}
    (results / "camvid_native" / variants.COMPARISONS).write_text(json.dumps({
        "strategy": "ours_native",
        "gains": {"ours_native vs random": gain, "ours_native vs ours": same},
    }))  # fmt: skip
    summary = score_makeup.makeup_summary(str(results), ["camvid"], [], ["camvid"])
    assert summary.rstrip().endswith(
        "With BoxMask crops at the objects' own scale (`native`, beyond the paper): CamVid: "
        "ours_native against random +0.046 [+0.021, +0.071] mDSQ (better), against ours "
        "-0.006 [-0.048, +0.037] mDSQ (not distinguishable from noise) over 5 trials."
    )
    assert "objects' own scale" not in score_makeup.makeup_summary(str(results), ["camvid"])


def test_contents_link_every_section_with_githubs_anchors():
    """The page's contents: ``##`` and ``###`` headings (not inside code), linked to the
    anchors GitHub makes (punctuation dropped, a repeated heading numbered)."""
    headings = [
        "## Synthetic default", "### Regime", "### What the `ours` score is made of",
        "```", "## not a heading", "```", "## CamVid", "### Regime",
        "### Label efficiency (95 % of the reference mDSQ)",
    ]  # fmt: skip
    toc = results_page.table_of_contents("\n".join(headings))
    assert toc.splitlines()[2:] == [
        "- [Synthetic default](#synthetic-default)",
        "  - [Regime](#regime)",
        "  - [What the ours score is made of](#what-the-ours-score-is-made-of)",
        "- [CamVid](#camvid)",
        "  - [Regime](#regime-1)",
        (
            "  - [Label efficiency (95 % of the reference mDSQ)]"
            "(#label-efficiency-95--of-the-reference-mdsq)"
        ),
    ]
    assert results_page.table_of_contents("no headings") == ""


def test_review_edge_cases_of_the_page_helpers(tmp_path, monkeypatch):
    """The noise-floor sentence follows its numbers; a convergence chain without a floor says
    so; a queued count the script leaves to the shell is unknown, not a crash; the gains at
    80 % read the closest cycle."""
    from docs.results_lib import run_dirs

    noisy = _records({"ours": [0.2, -0.2, 0.1]})  # gains spread more than two single runs
    assert "spread as much or more" in regime._paired_spread(noisy, {"mdsq_std_pooled": 0.01})
    calm = _records({"ours": [0.02, 0.021, 0.019]})
    assert "conservative bound" in regime._paired_spread(calm, {"mdsq_std_pooled": 0.05})

    def job(steps, mdsq):
        return {"labeled": 50, "pool": 100, "steps": steps, "passes": steps / 10, "seed": 1,
                "mdsq": mdsq}  # fmt: skip

    jobs = {"w50_a": job(100, 0.6), "w50_b": job(200, 0.7), "w50_c": job(400, 0.8)}
    assert "no noise floor to read it against" in regime.convergence_table(jobs, {})

    script = tmp_path / "continue.sh"
    script.write_text('  "t10 configs/camvid.py:trials10 - --config.al.num_trials=${N}"\n')
    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(script))
    assert run_dirs.queued_num_trials("runs/t10") is None

    records = _records({"ours": [0.02, 0.03, 0.025]})
    for r in records:  # cycle 4 at 79 %, cycle 5 at 80.5 %: the closest is cycle 5
        r["labeled_fraction"] = {4: 0.79, 5: 0.805}.get(r["cycle"], r["labeled_fraction"])
    assert "(cycle 5;" in main_comparison.gains_at(records)


def test_help_and_given_runs_do_not_look_up_the_default_runs(monkeypatch, capsys):
    """The default runs (and their archives) are looked up only for options not given."""
    import importlib.util

    from docs.results_lib import run_dirs

    spec = importlib.util.spec_from_file_location(
        "make_results", os.path.join(ROOT, "docs", "make_results.py")
    )
    make_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_results)

    def forbidden(path):
        raise AssertionError(f"looked up {path}")

    monkeypatch.setattr(run_dirs, "default_run", forbidden)
    with pytest.raises(SystemExit) as exc:
        make_results.main(["--help"])
    assert exc.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps its lines
    assert "(default: runs/repro_synthetic, or its archive experiments/repro_synthetic)" in (
        help_text
    )


def test_the_status_list_gives_an_extended_trials10_its_trial_count(tmp_path, monkeypatch):
    """An extended ``trials10`` run in progress is listed with the command that continues it
    (its raised ``al.num_trials``), as its section's command is."""
    from docs.results_lib import run_dirs

    monkeypatch.setattr(run_dirs, "CONTINUE_SH", str(tmp_path / "none.sh"))
    _run_dir(tmp_path / "main", _records({"ours": [0.02, 0.0, 0.01]}))
    records = [r for r in _records({"ours": [0.01] * 12}) if (r["trial"], r["cycle"]) < (11, 3)]
    config = {"al": {"strategies": "random,ours", "num_trials": 12, "strategy": {"kwargs": {}}}}
    _run_dir(tmp_path / "t10", records, config)
    text = results_page.build(
        {"camvid": (str(tmp_path / "main"), "", str(tmp_path / "t10"))},
        str(tmp_path / "results"), str(tmp_path / "src"), False,
    )  # fmt: skip
    assert (
        f"--workdir {tmp_path / 't10'} --config.al.num_trials=12` (started, not finished)" in text
    )


def test_the_power_table_says_what_the_trials_can_detect():
    """Per comparison: the SD of the per-trial gains, the gain detected with 80 % power, and
    at 80 % labeled the trials the paper's gain would need; then the paper-size gain in the
    claims' measure. Recomputed here from the per-trial gains with scipy's noncentral t."""
    from scipy import optimize, stats

    from docs.results_lib import main_comparison

    ours, ll4al = [0.01, 0.03, 0.02, 0.05], [0.0, 0.01, 0.03, 0.01]
    records = _records({"ours": ours, "ll4al": ll4al})
    pairs = {s: paired.paired_gain(records, s) for s in ("ours", "ll4al")}
    text = main_comparison.power_table(records, pairs)

    def power(effect, sd, n):
        crit = stats.t.ppf(0.975, n - 1)
        nc = effect * math.sqrt(n) / sd
        return stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)

    def detectable(sd, n):
        return optimize.brentq(lambda e: power(e, sd, n) - 0.8, 0, 4 * sd)

    sd = float(np.std(ours, ddof=1))
    assert f"| ours - random, cycles 1-5 | 4 | {sd:.4f} | {detectable(sd, 4):.4f} | — | — |" in text
    assert text.index("| ours - random, cycles 1-5") < text.index("| ll4al - random, cycles 1-5")
    diff = [a - b for a, b in zip(ours, ll4al)]
    sd_diff = float(np.std(diff, ddof=1))
    assert (
        f"| ours - ll4al, cycles 1-5 | 4 | {sd_diff:.4f} | {detectable(sd_diff, 4):.4f} |" in text
    )
    # At 80 % labeled (cycle 4) the gains are the same here: the paper's 0.0339 and 0.0107.
    needed = next(n for n in range(2, 10_000) if power(0.0339, sd, n) >= 0.8)
    row = (
        f"| ours - random, 80 % labeled (cycle 4) | 4 | {sd:.4f} | {detectable(sd, 4):.4f} | "
        f"+0.0339 (power with these trials: {100 * power(0.0339, sd, 4):.0f} %) | {needed} |"
    )
    assert row in text
    assert "| ours - ll4al, 80 % labeled (cycle 4) | 4 |" in text
    assert (
        f"would need {needed} trials for 80 % power at the spread measured here (these: 4)" in text
    )
    assert main_comparison.power_table(_records({"ours": [0.01]}), {}) == ""  # one trial
