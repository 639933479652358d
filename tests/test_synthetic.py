"""Tests of the embedded ``synthetic_driving`` dataset (renderer and TFDS builder)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mtal_jax.data import features, synthetic

H, W = 64, 128


@pytest.fixture(scope="module")
def scenes() -> list[dict]:
    """200 default scenes at 64x128 (about 0.5 s)."""
    return [synthetic.render_scene([0, 0, i], H, W) for i in range(200)]


def test_constants_are_consistent():
    assert synthetic.SEG_CLASSES[: len(synthetic.STUFF_CLASSES)] == synthetic.STUFF_CLASSES
    for c, s in enumerate(synthetic.DET_TO_SEG):
        assert synthetic.SEG_CLASSES[s] == synthetic.DET_CLASSES[c]
    assert len(synthetic.SEG_CLASSES) == 11 and len(synthetic.DET_CLASSES) == 6


def test_same_seed_same_bytes_and_different_seed_differs():
    a = synthetic.render_scene(7, H, W)
    b = synthetic.render_scene(7, H, W)
    c = synthetic.render_scene(8, H, W)
    d = synthetic.render_scene(np.random.default_rng(7), H, W)  # a Generator works too
    for k in ("image", "segmentation", "boxes", "box_labels"):
        assert a[k].tobytes() == b[k].tobytes() == d[k].tobytes()
    assert a["condition"] == b["condition"]
    assert a["image"].tobytes() != c["image"].tobytes()
    assert a["segmentation"].tobytes() != c["segmentation"].tobytes()


def test_output_contract(scenes):
    for s in scenes[:16]:
        assert s["image"].shape == (H, W, 3) and s["image"].dtype == np.uint8
        assert s["segmentation"].shape == (H, W) and s["segmentation"].dtype == np.uint8
        assert s["segmentation"].max() < len(synthetic.SEG_CLASSES)
        m = len(s["box_labels"])
        assert s["boxes"].shape == (m, 4) and s["boxes"].dtype == np.float32
        assert s["box_labels"].dtype == np.int64
        assert ((s["box_labels"] >= 0) & (s["box_labels"] < len(synthetic.DET_CLASSES))).all()
        assert s["condition"] in synthetic.CONDITIONS
    assert sum(len(s["boxes"]) for s in scenes) > 2 * len(scenes)  # scenes are not empty
    # Every stuff class and every object class shows up somewhere.
    seen = np.unique(np.concatenate([np.unique(s["segmentation"]) for s in scenes]))
    assert seen.tolist() == list(range(len(synthetic.SEG_CLASSES)))


def test_boxes_are_tight_boxes_of_their_class_pixels(scenes):
    for s in scenes:
        for (x1, y1, x2, y2), label in zip(s["boxes"].astype(int), s["box_labels"]):
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
            cls = s["segmentation"][y1:y2, x1:x2] == synthetic.DET_TO_SEG[label]
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
        [synthetic.render_scene(i, H, W, class_probs=only_buses)["box_labels"] for i in range(10)]
    )
    assert len(labels) > 0 and (labels == 2).all()
    with pytest.raises(ValueError):
        synthetic.render_scene(0, H, W, class_probs=(1, 1))


def test_hard_conditions_appear_at_the_configured_fraction(scenes):
    n_hard = sum(s["condition"] != "day" for s in scenes)
    assert 2 <= n_hard <= 25  # Binomial(200, 0.05): mean 10
    conds = [synthetic.render_scene(i, 32, 64, hard_fraction=0.5)["condition"] for i in range(120)]
    assert set(conds) == set(synthetic.CONDITIONS)
    assert 0.35 < np.mean([c != "day" for c in conds]) < 0.65
    easy = [synthetic.render_scene(i, 32, 64, hard_fraction=0.0)["condition"] for i in range(20)]
    assert set(easy) == {"day"}


def test_hard_conditions_change_the_look():
    # Night scenes are dark; fog scenes are low-contrast.
    found = {}
    for i in range(200):
        s = synthetic.render_scene(i, H, W, hard_fraction=1.0)
        found.setdefault(s["condition"], s["image"])
        if len(found) == 3:
            break
    day = np.stack([synthetic.render_scene(i, H, W, hard_fraction=0.0)["image"] for i in range(5)])
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
        lenient = synthetic.render_scene(i, H, W, min_visible_px=1, min_visible_fraction=0.0)
        strict = synthetic.render_scene(i, H, W, min_visible_px=1, min_visible_fraction=0.5)
        # The filter changes labels only, never the drawing.
        assert lenient["image"].tobytes() == strict["image"].tobytes()
        lenient_boxes = {tuple(b) for b in lenient["boxes"].tolist()}
        assert {tuple(b) for b in strict["boxes"].tolist()} <= lenient_boxes
        kept_all += len(lenient["boxes"])
        kept_visible += len(strict["boxes"])
    # Instances hidden for more than half by nearer objects exist, but are the minority.
    assert 0.6 * kept_all < kept_visible < kept_all


def test_configs_have_distinct_names_and_reject_unknown_parameters():
    assert synthetic.make_config().name == synthetic.make_config().name
    names = {
        synthetic.make_config().name,
        synthetic.make_config(height=64, width=128).name,
        synthetic.make_config(seed=1).name,
        synthetic.make_config(hard_fraction=0.1).name,
        synthetic.make_config(class_probs=(1, 1, 1, 1, 1, 1)).name,
    }
    assert len(names) == 5
    with pytest.raises(TypeError):
        synthetic.make_config(num_val=3)


def test_tfds_round_trip(tmp_path):
    params = {"num_train": 5, "num_test": 3, "height": H, "width": W, "seed": 3,
              "hard_fraction": 0.5}  # fmt: skip
    builder = synthetic.prepare(str(tmp_path), **params)
    assert builder.builder_config.name in str(builder.data_dir)
    for split, split_id in (("train", 0), ("test", 1)):
        ds = builder.as_data_source(split=split)
        assert len(ds) == params[f"num_{split}"]
        for i in range(len(ds)):
            ex = ds[i]
            want = synthetic.render_scene([3, split_id, i], H, W, hard_fraction=0.5)
            np.testing.assert_array_equal(ex["image"], want["image"])
            np.testing.assert_array_equal(ex["segmentation"][..., 0], want["segmentation"])
            np.testing.assert_array_equal(ex["boxes"], want["boxes"])
            np.testing.assert_array_equal(ex["box_labels"], want["box_labels"])
            image_id = ex["image_id"]
            image_id = image_id.decode() if isinstance(image_id, bytes) else image_id
            assert image_id == f"{split}_{i:06d}_{want['condition']}"
    # Preparing again reuses the files; other parameters land in another directory.
    files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.array_record*")}
    again = synthetic.prepare(str(tmp_path), **params)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.array_record*")} == files
    assert again.data_dir == builder.data_dir
    other = synthetic.SyntheticDriving(data_dir=str(tmp_path), **{**params, "height": 32})
    assert other.data_dir != builder.data_dir


def test_metadata_round_trip(tmp_path):
    builder = synthetic.prepare(str(tmp_path), num_train=2, num_test=1, height=32, width=64)
    want = {
        "det_classes": list(synthetic.DET_CLASSES),
        "seg_classes": list(synthetic.SEG_CLASSES),
        "det_to_seg": list(synthetic.DET_TO_SEG),
    }
    assert features.read_metadata(builder.info) == want
    reopened = tfds.builder_from_directory(str(builder.data_dir))  # no builder code needed
    assert features.read_metadata(reopened.info) == want
    assert reopened.as_data_source(split="train")[1]["image"].shape == (32, 64, 3)


def test_street_furniture_adds_poles_and_fences_and_leaves_the_default_alone(tmp_path):
    # The option is off by default and then touches nothing: the name (and so the cached
    # dataset) of every existing variant stays what it was before the option existed.
    assert synthetic.make_config().name == "h128_w256_train800_test200_seed0_c4bf2634"
    assert synthetic.make_config(street_furniture=False).name == synthetic.make_config().name
    default_kwargs = {
        "height": 96,
        "width": 192,
        "num_train": 2400,
        "num_test": 1000,
        "min_visible_px": 64,
    }  # fmt: skip  (configs/default.py's data)
    assert synthetic.make_config(**default_kwargs).name.endswith("_dcbe97e8")
    assert synthetic.make_config(street_furniture=True).name != synthetic.make_config().name
    plain = synthetic.render_scene([0, 0, 3], H, W)
    off = synthetic.render_scene([0, 0, 3], H, W, street_furniture=False)
    for k in ("image", "segmentation", "boxes", "box_labels"):
        assert plain[k].tobytes() == off[k].tobytes()
    pole, fence = len(synthetic.SEG_CLASSES), len(synthetic.SEG_CLASSES) + 1
    counts = np.zeros(fence + 1)
    for i in range(60):
        s = synthetic.render_scene([0, 0, i], 128, 160, street_furniture=True)
        counts += np.bincount(s["segmentation"].ravel(), minlength=fence + 1)
        assert s["segmentation"].max() <= fence
        assert ((s["box_labels"] >= 0) & (s["box_labels"] < len(synthetic.DET_CLASSES))).all()
        for (x1, y1, x2, y2), label in zip(s["boxes"].astype(int), s["box_labels"]):
            cls = s["segmentation"][y1:y2, x1:x2] == synthetic.DET_TO_SEG[label]
            assert cls[0].any() and cls[-1].any() and cls[:, 0].any() and cls[:, -1].any()
    share = counts / counts.sum()
    assert 0.005 < share[pole] < 0.06 and 0.002 < share[fence] < 0.06  # thin, like real scenes
    builder = synthetic.prepare(
        str(tmp_path), num_train=2, num_test=1, height=32, width=64, street_furniture=True
    )
    classes = features.read_metadata(builder.info)["seg_classes"]
    assert classes == list(synthetic.SEG_CLASSES + synthetic.FURNITURE_CLASSES)
