"""Tests of al/diagnostics.py: degeneracy of the consistency score components."""

import logging
import os

import numpy as np
import pytest

from mtal_jax import jsonio
from mtal_jax.al import diagnostics


def _scores(s_loc, s_cls, s_seg, num_boxes=None, weights=(1.0, 1.0, 1.0)):
    s_loc, s_cls, s_seg = (np.asarray(x, np.float32) for x in (s_loc, s_cls, s_seg))
    out = {
        "s_loc_best": s_loc,
        "s_cls_best": s_cls,
        "s_seg": s_seg,
        "score": weights[0] * s_loc + weights[1] * s_cls + weights[2] * s_seg,
    }
    if num_boxes is not None:
        out["num_boxes"] = np.asarray(num_boxes)
    return out


def test_shares_sum_to_one_and_balanced_components_raise_no_warning():
    rng = np.random.default_rng(0)
    diag = diagnostics.score_diagnostics(
        _scores(rng.uniform(size=200), rng.uniform(size=200), rng.uniform(size=200))
    )
    shares = [diag["components"][n]["variance_share"] for n in ("S_loc", "S_cls", "S_seg")]
    assert sum(shares) == pytest.approx(1.0, abs=1e-5)
    assert all(0.2 < s < 0.5 for s in shares)
    assert diag["warnings"] == [] and diag["num_images"] == 200
    assert all(diag["components"][n]["fraction_constant"] == 0 for n in ("S_loc", "S_cls"))


def test_saturated_s_loc_and_dominant_s_cls_warn():
    rng = np.random.default_rng(1)
    n = 100
    s_loc = np.ones(n)
    s_loc[:5] = 0.5  # constant on 95 %
    diag = diagnostics.score_diagnostics(
        _scores(s_loc, 20 * rng.uniform(size=n), 0.1 * rng.uniform(size=n))
    )
    assert diag["components"]["S_loc"]["fraction_constant"] == pytest.approx(0.95)
    assert diag["components"]["S_cls"]["variance_share"] > 0.9
    assert diag["components"]["S_cls"]["r2"] > 0.9
    assert any(w.startswith("S_loc = 1 on 95%") for w in diag["warnings"])
    assert any(w.startswith("S_cls explains") for w in diag["warnings"])


def test_images_without_box_mask_and_nan_rows():
    scores = _scores(
        [1, 1, 0.2, 0.0, 0.0, 0.3], [0, 0.5, 0.1, 0, 0, 0.2], [0.1, 0.2, 0, 0.4, 0.5, 0]
    )
    scores["num_boxes"] = np.array([1, 2, 1, 0, 0, 1])
    scores["score"][5] = np.nan  # not scored
    mask = np.array([True, True, True, True, True, True])
    diag = diagnostics.score_diagnostics(scores, mask=mask)
    assert diag["num_images"] == 5
    assert diag["fraction_without_box"] == pytest.approx(2 / 5)
    # S_loc and S_cls count over the 3 images with a box, S_seg over all 5.
    assert diag["components"]["S_loc"]["fraction_constant"] == pytest.approx(2 / 3)
    assert diag["components"]["S_cls"]["fraction_constant"] == pytest.approx(1 / 3)
    assert diag["components"]["S_seg"]["fraction_constant"] == pytest.approx(1 / 5)
    assert diag["fraction_best_box_empty"] == pytest.approx(1 / 3)  # image 0: S_loc 1, S_cls 0
    mask[0] = False
    assert diagnostics.score_diagnostics(scores, mask=mask)["num_images"] == 4


def test_weights_scale_the_terms_and_zero_weight_mutes_constant_warning():
    rng = np.random.default_rng(2)
    n = 50
    s_loc, s_cls, s_seg = np.ones(n), rng.uniform(size=n), rng.uniform(size=n)
    diag = diagnostics.score_diagnostics(
        _scores(s_loc, s_cls, s_seg, weights=(0, 1, 1)), weights=(0, 1, 1)
    )
    assert diag["components"]["S_loc"]["variance_share"] == pytest.approx(0.0, abs=1e-7)
    assert not any(w.startswith("S_loc") for w in diag["warnings"])  # weight 0: an ablation


def test_single_weighted_component_does_not_warn_about_its_variance_share():
    rng = np.random.default_rng(4)
    n = 50
    s_loc, s_cls, s_seg = rng.uniform(size=n), rng.uniform(size=n), rng.uniform(size=n)
    diag = diagnostics.score_diagnostics(
        _scores(s_loc, s_cls, s_seg, weights=(1, 0, 0)), weights=(1, 0, 0)
    )
    assert diag["components"]["S_loc"]["variance_share"] == pytest.approx(1.0)
    assert diag["warnings"] == []  # S_loc alone by design (a Table I row), not a degeneracy


def test_no_box_anywhere_warns():
    diag = diagnostics.score_diagnostics(
        _scores(np.zeros(10), np.zeros(10), np.linspace(0, 1, 10), num_boxes=np.zeros(10))
    )
    assert any("no scored detection" in w for w in diag["warnings"])


def test_missing_components_is_an_error():
    assert not diagnostics.has_components({"score": np.zeros(3)})
    with pytest.raises(ValueError, match="need score and"):
        diagnostics.score_diagnostics({"score": np.zeros(3)})


def test_write_collect_and_summary(tmp_path, caplog):
    rng = np.random.default_rng(3)
    for strategy, cycle in [("ours", 1), ("ours", 2), ("ours_seg", 1)]:
        cdir = tmp_path / "trial_0" / strategy / f"cycle_{cycle}"
        cdir.mkdir(parents=True)
        diag = diagnostics.score_diagnostics(
            _scores(np.ones(20), rng.uniform(size=20), rng.uniform(size=20))
        )
        with caplog.at_level(logging.WARNING):
            diagnostics.write(str(cdir / diagnostics.FILENAME), diag, context="x")
    (tmp_path / "trial_0" / "cycle_0").mkdir()
    assert "S_loc = 1 on 100%" in caplog.text
    found = diagnostics.collect(str(tmp_path))
    assert [(d["strategy"], d["cycle"]) for d in found] == [
        ("ours", 1),
        ("ours", 2),
        ("ours_seg", 1),
    ]
    assert jsonio.read(os.path.join(tmp_path, "trial_0", "ours", "cycle_1", "diagnostics.json"))
    md = diagnostics.summary_markdown(found)
    assert md.startswith("## Score diagnostics") and md.count("\n| ours") == 5  # 2 + 3 rows
    assert "| ours | 0 | 1 | 20 | 0 | 100 |" in md
    assert diagnostics.summary_markdown([]) == ""


def test_aggregate_averages_selections_and_counts_selected_images_without_a_box(tmp_path):
    """Two selections of ``ours`` (S_loc decides: its share is the mean of the two), one of a
    single-term ablation ("alone"); the selected share without a box is read from each
    cycle's scores.npz and selection.json, hand-counted."""
    rng = np.random.default_rng(4)
    num_boxes = np.array([0, 0, 0, 0, 1, 2, 3, 1, 1, 2])
    cases = [  # (strategy, cycle, weights, s_loc scale, selected)
        ("ours", 1, (1.0, 1.0, 1.0), 1.0, [0, 4, 5, 6]),  # 1 of 4 without a box
        ("ours", 2, (1.0, 1.0, 1.0), 4.0, [7, 8]),  # 0 of 2
        ("ours_seg", 1, (0.0, 0.0, 1.0), 1.0, [0, 1, 2]),  # 3 of 3; its top 3 (below)
    ]
    shares = []
    for strategy, cycle, weights, scale, selected in cases:
        cdir = tmp_path / "trial_0" / strategy / f"cycle_{cycle}"
        cdir.mkdir(parents=True)
        s_seg = rng.uniform(size=10)
        if strategy == "ours_seg":  # S_seg highest on images 0-2 (no box): its top 3
            s_seg[:3] += 1.0
        scores = _scores(
            scale * rng.uniform(size=10),
            rng.uniform(size=10),
            s_seg,
            num_boxes=num_boxes,
            weights=weights,
        )
        scored = np.arange(10) < 9  # image 9 is labeled: never selected, never counted
        diag = diagnostics.score_diagnostics(scores, weights=weights, mask=scored)
        diagnostics.write(str(cdir / diagnostics.FILENAME), diag)
        shares.append(diag["components"]["S_loc"]["variance_share"])
        maxima = {"s_loc_max": scores["s_loc_best"], "s_cls_max": scores["s_cls_best"]}
        np.savez(cdir / "scores.npz", scored=scored, **scores, **maxima)
        jsonio.write_atomic(str(cdir / "selection.json"), {"selected": selected})
    (tmp_path / "trial_1" / "ours" / "cycle_1").mkdir(parents=True)  # no diagnostics: none
    found = diagnostics.collect(str(tmp_path))
    agg = diagnostics.aggregate(found)
    assert list(agg) == ["ours", "ours_seg"]
    ours = agg["ours"]
    assert ours["selections"] == 2 and ours["num_images"] == 9
    assert ours["selected_without_box"] == pytest.approx((0.25 + 0.0) / 2)
    assert agg["ours_seg"]["selected_without_box"] == 1.0
    assert ours["fraction_without_box"] == pytest.approx(4 / 9)
    share = ours["components"]["S_loc"]
    assert share["variance_share"] == pytest.approx(np.mean(shares[:2]))
    assert share["variance_share_std"] == pytest.approx(np.std(shares[:2], ddof=1))
    stds = [d["components"]["S_loc"]["std"] for d in found[:2]]  # the two ours selections
    assert share["std"] == pytest.approx(np.mean(stds))
    assert sum(c["variance_share"] for c in ours["components"].values()) == pytest.approx(1.0)
    # A one-hot setting selects exactly what its term alone selects; "by chance": k / 9.
    assert agg["ours_seg"]["shared_with_alone"]["S_seg"] == 1.0
    assert agg["ours_seg"]["shared_by_chance"] == pytest.approx(3 / 9)
    assert ours["shared_by_chance"] == pytest.approx((4 / 9 + 2 / 9) / 2)
    loc = diagnostics.selection.top_k(
        np.load(tmp_path / "trial_0" / "ours" / "cycle_2" / "scores.npz")["s_loc_max"],
        np.arange(10) < 9,
        2,
    )
    first = diagnostics._selection_facts(str(tmp_path / "trial_0" / "ours" / "cycle_1"))
    assert 0.0 <= first["shared_with_alone"]["S_loc"] <= 1.0
    expected = len({7, 8} & set(np.asarray(loc).tolist())) / 2  # cycle 2 picked [7, 8]
    cycle2 = diagnostics._selection_facts(str(tmp_path / "trial_0" / "ours" / "cycle_2"))
    assert cycle2["shared_with_alone"]["S_loc"] == expected
    assert diagnostics._selection_facts(str(tmp_path / "trial_1" / "ours" / "cycle_1")) == {
        "selected_without_box": None,
        "shared_with_alone": None,
        "shared_by_chance": None,
    }
    md = diagnostics.aggregate_markdown(agg)
    row = next(line for line in md.splitlines() if line.startswith("| ours_seg |"))
    assert row.startswith("| ours_seg | 0, 0, 1 | 1 | 9 | 44 % | 100 % | 0 % | - | - | alone |")
    assert row.endswith("| 100 % | 33 % |"), row
    assert f"| {100 * share['variance_share']:.0f} ± " in md
    assert diagnostics.aggregate_markdown({}) == ""
