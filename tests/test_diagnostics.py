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
    assert md.startswith("## Score diagnostics") and md.count("\n| ours") == 3
    assert "| ours | 0 | 1 | 20 | 0 | 100 |" in md
    assert diagnostics.summary_markdown([]) == ""
