"""CamVid builder: real data (skipped without ../shared/data), cache identity, bad input."""

import numpy as np
import PIL.Image
import pytest
from tensorflow_datasets.core import shuffle

from mtal_jax.data import camvid, components, errors, features, files
from mtal_jax.structs import IGNORE_LABEL
from tests import fixtures_camvid


def test_real_camvid_matches_its_label_maps(shared_data, tmp_path):
    # A 40-frame subset of the real test split (links, no copies); the full dataset is
    # prepared by the CLI test.
    real = shared_data / "camvid"
    root = tmp_path / "camvid"
    root.mkdir()
    for folder in ("test", "testannot"):
        (root / folder).symlink_to(real / folder)
    (root / "test.txt").write_text("".join((real / "test.txt").read_text().splitlines(True)[::6]))
    builder = camvid.prepare(str(tmp_path / "tfds"), str(root))
    assert builder.info.splits["test"].num_examples == 39
    assert features.read_metadata(builder.info)["det_to_seg"] == [8, 9, 10]
    assert errors.read_skips(builder.info)["test"]["frames"] == {}
    source = builder.as_data_source("test")
    num_boxes = 0
    for i in range(len(source)):
        example = source[i]
        image_id = example["image_id"].decode()
        labels = np.asarray(PIL.Image.open(real / "testannot" / f"{image_id}.png"))
        image = np.asarray(PIL.Image.open(real / "test" / f"{image_id}.png").convert("RGB"))
        np.testing.assert_array_equal(example["image"], image)
        segmentation = example["segmentation"][..., 0]
        void = labels == camvid.VOID_ID
        np.testing.assert_array_equal(segmentation == IGNORE_LABEL, void)
        np.testing.assert_array_equal(segmentation[~void], labels[~void])
        boxes, classes = components.component_boxes(labels, [8, 9, 10], min_area=16)
        np.testing.assert_array_equal(example["boxes"], boxes)
        np.testing.assert_array_equal(example["box_labels"], classes)
        num_boxes += len(boxes)
    assert num_boxes > 100


def test_examples_and_metadata_of_a_tiny_folder(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    builder = camvid.prepare(str(tmp_path / "tfds"), str(root), min_area=1)
    example = builder.as_data_source("train")[0]
    assert example["image"].shape == (24, 32, 3) and example["segmentation"].shape == (24, 32, 1)
    np.testing.assert_array_equal(example["boxes"], [[2, 2, 6, 6], [20, 10, 22, 12]])
    np.testing.assert_array_equal(example["box_labels"], [0, 0])
    assert (example["segmentation"][0] == IGNORE_LABEL).all()
    assert builder.info.metadata["options"]["min_area"] == 1


def test_segnet_s_own_lists_are_read_relative_to_the_folder(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    lines = (root / "train.txt").read_text().splitlines()
    (root / "train.txt").write_text(  # the SegNet release's lists name /SegNet/CamVid/...
        "\n".join(" ".join(f"/SegNet/CamVid/{p}" for p in line.split()) for line in lines) + "\n"
    )
    builder = camvid.prepare(str(tmp_path / "tfds"), str(root), min_area=1)
    assert len(builder.as_data_source("train")) == 3


def test_options_never_share_a_cache_and_a_prepared_cache_is_reused(tmp_path, monkeypatch):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    data_dir = str(tmp_path / "tfds")
    small = camvid.prepare(data_dir, str(root), min_area=1)
    large = camvid.prepare(data_dir, str(root), min_area=5)
    assert small.data_dir != large.data_dir
    assert len(small.as_data_source("train")[0]["box_labels"]) == 2
    assert len(large.as_data_source("train")[0]["box_labels"]) == 1
    with monkeypatch.context() as patch:  # A cache hit must not read the user's files again.
        patch.setattr(files, "read_image", lambda *a, **k: pytest.fail("image read again"))
        again = camvid.prepare(data_dir, str(root), min_area=5)
    assert again.data_dir == large.data_dir and len(again.as_data_source("train")) == 3


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(b"\x89PNG not really" * 10)


def _resize_label(path):
    PIL.Image.fromarray(np.zeros((10, 10), np.uint8)).save(path)


def _bad_label_id(path):
    PIL.Image.fromarray(np.full((24, 32), 30, np.uint8)).save(path)


BAD_INPUTS = {
    "missing image": (lambda r: (r / "train" / "f1.png").unlink(), errors.MISSING_FILE, "f1.png"),
    "truncated image": (
        lambda r: _truncate(r / "train" / "f1.png"),
        errors.CORRUPT_IMAGE,
        "f1.png",
    ),
    "corrupt image": (lambda r: _garbage(r / "train" / "f1.png"), errors.CORRUPT_IMAGE, "f1.png"),
    "label size": (
        lambda r: _resize_label(r / "trainannot" / "f1.png"),
        errors.SIZE_MISMATCH,
        "trainannot/f1.png",
    ),
    "label id": (
        lambda r: _bad_label_id(r / "trainannot" / "f1.png"),
        errors.BAD_MASK,
        "trainannot/f1.png",
    ),
    "list line": (
        lambda r: (r / "train.txt").write_text(
            "train/f0.png trainannot/f0.png\nonly-one-path\ntrain/f2.png trainannot/f2.png\n"
        ),
        errors.MALFORMED_RECORD,
        "train.txt",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_naming_file_and_line_or_is_counted(tmp_path, name):
    damage, reason, file_part = BAD_INPUTS[name]
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    damage(root)
    with pytest.raises(errors.DatasetError, match=rf"{file_part}.*line 2") as info:
        camvid.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == reason
    builder = camvid.prepare(str(tmp_path / "tfds"), str(root), on_error="skip")
    assert len(builder.as_data_source("train")) == 2
    assert errors.read_skips(builder.info)["train"]["frames"] == {reason: 1}


def test_all_frames_bad_is_an_empty_split_error(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid", num_frames=1)
    (root / "train" / "f0.png").unlink()
    with pytest.raises(errors.DatasetError, match="no examples") as info:
        camvid.prepare(str(tmp_path / "tfds"), str(root), on_error="skip")
    assert info.value.reason == errors.EMPTY_SPLIT


def test_bad_options_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        camvid.Camvid(root=str(tmp_path), on_error="ignore")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        camvid.prepare(str(tmp_path / "tfds"), str(tmp_path / "nowhere"))


def test_splits_beyond_the_tfds_memory_buffer_spill_without_tensorflow(tmp_path, monkeypatch):
    # TFDS spills splits above its in-memory buffer (1000 MiB) through tf.io.gfile;
    # without TensorFlow that needs no_tensorflow.spill_to_local_files.
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid", num_frames=12)
    in_memory = camvid.prepare(str(tmp_path / "a"), str(root))
    monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 1000)  # bytes: spill at once
    spilled = camvid.prepare(str(tmp_path / "b"), str(root))
    ids = [
        [source[i]["image_id"] for i in range(len(source))]
        for source in (in_memory.as_data_source("train"), spilled.as_data_source("train"))
    ]
    assert len(ids[1]) == 12 and ids[0] == ids[1]
