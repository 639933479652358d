"""Tests of the embedded ``synthetic_driving`` dataset (classes and TFDS builder)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mtal_jax.data import features, synthetic, synthetic_classes, synthetic_scene

H, W = 64, 128


def test_constants_are_consistent():
    assert (
        synthetic_classes.SEG_CLASSES[: len(synthetic_classes.STUFF_CLASSES)]
        == synthetic_classes.STUFF_CLASSES
    )
    for c, s in enumerate(synthetic_classes.DET_TO_SEG):
        assert synthetic_classes.SEG_CLASSES[s] == synthetic_classes.DET_CLASSES[c]
    assert len(synthetic_classes.SEG_CLASSES) == 11 and len(synthetic_classes.DET_CLASSES) == 6


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
            want = synthetic_scene.render_scene([3, split_id, i], H, W, hard_fraction=0.5)
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
        "det_classes": list(synthetic_classes.DET_CLASSES),
        "seg_classes": list(synthetic_classes.SEG_CLASSES),
        "det_to_seg": list(synthetic_classes.DET_TO_SEG),
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
    plain = synthetic_scene.render_scene([0, 0, 3], H, W)
    off = synthetic_scene.render_scene([0, 0, 3], H, W, street_furniture=False)
    for k in ("image", "segmentation", "boxes", "box_labels"):
        assert plain[k].tobytes() == off[k].tobytes()
    pole, fence = len(synthetic_classes.SEG_CLASSES), len(synthetic_classes.SEG_CLASSES) + 1
    counts = np.zeros(fence + 1)
    for i in range(60):
        s = synthetic_scene.render_scene([0, 0, i], 128, 160, street_furniture=True)
        counts += np.bincount(s["segmentation"].ravel(), minlength=fence + 1)
        assert s["segmentation"].max() <= fence
        assert (
            (s["box_labels"] >= 0) & (s["box_labels"] < len(synthetic_classes.DET_CLASSES))
        ).all()
        for (x1, y1, x2, y2), label in zip(s["boxes"].astype(int), s["box_labels"]):
            cls = s["segmentation"][y1:y2, x1:x2] == synthetic_classes.DET_TO_SEG[label]
            assert cls[0].any() and cls[-1].any() and cls[:, 0].any() and cls[:, -1].any()
    share = counts / counts.sum()
    assert 0.005 < share[pole] < 0.06 and 0.002 < share[fence] < 0.06  # thin, like real scenes
    builder = synthetic.prepare(
        str(tmp_path), num_train=2, num_test=1, height=32, width=64, street_furniture=True
    )
    classes = features.read_metadata(builder.info)["seg_classes"]
    assert classes == list(synthetic_classes.SEG_CLASSES + synthetic_classes.FURNITURE_CLASSES)
