"""Tests of the synthetic street-scene renderer (``synthetic_scene.render_scene``)."""

import numpy as np
import pytest

from mtal_jax.data import synthetic_classes, synthetic_scene

H, W = 64, 128


@pytest.fixture(scope="module")
def scenes() -> list[dict]:
    """200 default scenes at 64x128 (about 0.5 s)."""
    return [synthetic_scene.render_scene([0, 0, i], H, W) for i in range(200)]


def test_same_seed_same_bytes_and_different_seed_differs():
    a = synthetic_scene.render_scene(7, H, W)
    b = synthetic_scene.render_scene(7, H, W)
    c = synthetic_scene.render_scene(8, H, W)
    d = synthetic_scene.render_scene(np.random.default_rng(7), H, W)  # a Generator works too
    for k in ("image", "segmentation", "boxes", "box_labels"):
        assert a[k].tobytes() == b[k].tobytes() == d[k].tobytes()
    assert a["condition"] == b["condition"]
    assert a["image"].tobytes() != c["image"].tobytes()
    assert a["segmentation"].tobytes() != c["segmentation"].tobytes()


def test_output_contract(scenes):
    for s in scenes[:16]:
        assert s["image"].shape == (H, W, 3) and s["image"].dtype == np.uint8
        assert s["segmentation"].shape == (H, W) and s["segmentation"].dtype == np.uint8
        assert s["segmentation"].max() < len(synthetic_classes.SEG_CLASSES)
        m = len(s["box_labels"])
        assert s["boxes"].shape == (m, 4) and s["boxes"].dtype == np.float32
        assert s["box_labels"].dtype == np.int64
        assert (
            (s["box_labels"] >= 0) & (s["box_labels"] < len(synthetic_classes.DET_CLASSES))
        ).all()
        assert s["condition"] in synthetic_classes.CONDITIONS
    assert sum(len(s["boxes"]) for s in scenes) > 2 * len(scenes)  # scenes are not empty
    # Every stuff class and every object class shows up somewhere.
    seen = np.unique(np.concatenate([np.unique(s["segmentation"]) for s in scenes]))
    assert seen.tolist() == list(range(len(synthetic_classes.SEG_CLASSES)))


def test_boxes_are_tight_boxes_of_their_class_pixels(scenes):
    for s in scenes:
        for (x1, y1, x2, y2), label in zip(s["boxes"].astype(int), s["box_labels"]):
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
            cls = s["segmentation"][y1:y2, x1:x2] == synthetic_classes.DET_TO_SEG[label]
            # Visible pixels of the instance touch all four sides of its box.
            assert cls[0].any() and cls[-1].any() and cls[:, 0].any() and cls[:, -1].any()
        assert np.array_equal(s["boxes"], np.round(s["boxes"]))  # pixel edges


def test_class_mix_is_long_tailed(scenes):
    labels = np.concatenate([s["box_labels"] for s in scenes])
    share = np.bincount(labels, minlength=6) / len(labels)
    car, truck, bus, ped, cyc, _sign = share
    assert car > 0.35 and car == share.max()
    assert ped > truck and ped > bus and ped > cyc
    assert bus < 0.1 and cyc < 0.1 and (share > 0).all()


def test_class_probs_are_configurable():
    only_buses = (0, 0, 1, 0, 0, 0)
    labels = np.concatenate(
        [
            synthetic_scene.render_scene(i, H, W, class_probs=only_buses)["box_labels"]
            for i in range(10)
        ]
    )
    assert len(labels) > 0 and (labels == 2).all()
    # (without the check, numpy's own "a and p must have same size" ValueError would come)
    for bad in ((1, 1), (1, 1, -1, 1, 1, 1), (0,) * 6):
        with pytest.raises(ValueError, match="class_probs must be 6 non-negative weights"):
            synthetic_scene.render_scene(0, H, W, class_probs=bad)


def test_hard_conditions_appear_at_the_configured_fraction(scenes):
    n_hard = sum(s["condition"] != "day" for s in scenes)
    assert 2 <= n_hard <= 25  # Binomial(200, 0.05): mean 10
    conds = [
        synthetic_scene.render_scene(i, 32, 64, hard_fraction=0.5)["condition"] for i in range(120)
    ]
    assert set(conds) == set(synthetic_classes.CONDITIONS)
    assert 0.35 < np.mean([c != "day" for c in conds]) < 0.65
    easy = [
        synthetic_scene.render_scene(i, 32, 64, hard_fraction=0.0)["condition"] for i in range(20)
    ]
    assert set(easy) == {"day"}


def test_hard_conditions_change_the_look():
    # Night scenes are dark; fog scenes are low-contrast.
    found = {}
    for i in range(200):
        s = synthetic_scene.render_scene(i, H, W, hard_fraction=1.0)
        found.setdefault(s["condition"], s["image"])
        if len(found) == 3:
            break
    day = np.stack(
        [synthetic_scene.render_scene(i, H, W, hard_fraction=0.0)["image"] for i in range(5)]
    )
    assert found["night"].mean() < 0.5 * day.mean()
    assert found["fog"].std() < day.std()
    assert (found["glare"] >= 250).all(-1).sum() > 10  # a saturated blob


def test_perspective_box_height_grows_with_bottom_y(scenes):
    heights, bottoms = [], []
    for s in scenes:
        for (x1, y1, x2, y2), label in zip(s["boxes"], s["box_labels"]):
            if label == 0 and y2 < H and y1 > 0:  # cars, not cut by the image border
                heights.append(y2 - y1)
                bottoms.append(y2)
    assert len(heights) > 50
    assert np.corrcoef(heights, bottoms)[0, 1] > 0.6


def test_occlusion_happens_and_only_the_filter_drops_boxes():
    kept_all, kept_visible = 0, 0
    for i in range(60):
        lenient = synthetic_scene.render_scene(i, H, W, min_visible_px=1, min_visible_fraction=0.0)
        strict = synthetic_scene.render_scene(i, H, W, min_visible_px=1, min_visible_fraction=0.5)
        # The filter changes labels only, never the drawing.
        assert lenient["image"].tobytes() == strict["image"].tobytes()
        lenient_boxes = {tuple(b) for b in lenient["boxes"].tolist()}
        assert {tuple(b) for b in strict["boxes"].tolist()} <= lenient_boxes
        kept_all += len(lenient["boxes"])
        kept_visible += len(strict["boxes"])
    # Instances hidden for more than half by nearer objects exist, but are the minority.
    assert 0.6 * kept_all < kept_visible < kept_all
