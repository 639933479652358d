"""nuImages builder: real pixels re-encoded as nuImages tables, camera choice, bad input."""

import json

import numpy as np
import PIL.Image
import pytest

from mtal_jax.data import errors, features, nuimages
from mtal_jax.structs import IGNORE_LABEL
from tests import fixtures_vistas as fm
from tests import mask_formats


@pytest.fixture(scope="module")
def scenes(shared_data):
    return fm.load_scenes(shared_data)


def test_mapillary_tables_give_back_the_same_boxes_masks_and_pixels(scenes, tmp_path):
    expected = fm.write_nuimages(scenes, tmp_path / "nuimages")
    builder = nuimages.prepare(str(tmp_path / "tfds"), str(tmp_path / "nuimages"))
    assert features.read_metadata(builder.info)["seg_classes"][-2:] == [
        "driveable_surface",
        "background",
    ]
    source = builder.as_data_source("train")
    front = {t for t, e in expected.items() if e["channel"] == "CAM_FRONT"}
    assert len(source) == len(front) == 7
    num_boxes = 0
    for i in range(len(source)):
        example = fm.decode(source[i])
        want = expected[example["image_id"]]
        assert example["image_id"] in front
        boxes, labels = fm.sort_boxes(example["boxes"], example["box_labels"])
        want_boxes, want_labels = fm.sort_boxes(want["boxes"], want["box_labels"])
        np.testing.assert_array_equal(boxes, want_boxes)
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_array_equal(example["segmentation"], want["segmentation"])
        np.testing.assert_array_equal(example["image"], want["image"])
        num_boxes += len(boxes)
    assert num_boxes > 20
    every_camera = nuimages.prepare(
        str(tmp_path / "tfds"), str(tmp_path / "nuimages"), cameras=None
    )
    assert len(every_camera.as_data_source("train")) == 13  # Key frames only, no sweeps.


# A tiny synthetic table set for bad-input tests (no shared data needed).
H, W = 20, 30


def _mask(y1, y2, x1, x2):
    mask = np.zeros((H, W), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def _write_tiny(root, *, sensor_tables=False):
    tables = root / "v1.0-mini"
    tables.mkdir(parents=True)
    names = ["vehicle.car", "animal", "flat.driveable_surface", "vehicle.ego"]
    category = [{"token": f"c{i}", "name": n} for i, n in enumerate(names)]
    sample, sample_data, object_ann, surface_ann = [], [], [], []
    for i in range(2):
        folder = "x" if sensor_tables else ("CAM_FRONT" if i == 0 else "CAM_FRONT_LEFT")
        filename = f"samples/{folder}/f{i}.jpg"
        (root / filename).parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(np.full((H, W, 3), 50 + i, np.uint8)).save(root / filename)
        sample.append({"token": f"s{i}", "key_camera_token": f"sd{i}"})
        sample_data.append(
            {
                "token": f"sd{i}",
                "sample_token": f"s{i}",
                "filename": filename,
                "width": W,
                "height": H,
                "is_key_frame": True,
                "calibrated_sensor_token": f"cs{i}",
            }
        )
        object_ann.append(
            {
                "token": f"car{i}",
                "sample_data_token": f"sd{i}",
                "category_token": "c0",
                "bbox": [2, 3, 10, 9],
                "mask": mask_formats.encode_nuimages_mask(_mask(3, 9, 2, 10)),
            }
        )
        object_ann.append(
            {
                "token": f"dog{i}",
                "sample_data_token": f"sd{i}",
                "category_token": "c1",
                "bbox": [20, 2, 24, 5],
                "mask": mask_formats.encode_nuimages_mask(_mask(2, 5, 20, 24)),
            }
        )
        object_ann.append(
            {
                "token": f"nomask{i}",
                "sample_data_token": f"sd{i}",
                "category_token": "c0",
                "bbox": [25, 12, 29, 15],
                "mask": None,
            }
        )
        surface_ann.append(
            {
                "token": f"road{i}",
                "sample_data_token": f"sd{i}",
                "category_token": "c2",
                "mask": mask_formats.encode_nuimages_mask(_mask(10, 20, 0, W)),
            }
        )
        surface_ann.append(
            {
                "token": f"ego{i}",
                "sample_data_token": f"sd{i}",
                "category_token": "c3",
                "mask": mask_formats.encode_nuimages_mask(_mask(18, 20, 0, W)),
            }
        )
    tables_content = {
        "category": category,
        "sample": sample,
        "sample_data": sample_data,
        "object_ann": object_ann,
        "surface_ann": surface_ann,
    }
    if sensor_tables:
        tables_content["sensor"] = [
            {"token": "front", "channel": "CAM_FRONT"},
            {"token": "back", "channel": "CAM_BACK"},
        ]
        tables_content["calibrated_sensor"] = [
            {"token": "cs0", "sensor_token": "front"},
            {"token": "cs1", "sensor_token": "back"},
        ]
    for name, rows in tables_content.items():
        (tables / f"{name}.json").write_text(json.dumps(rows))
    return root


def _edit(root, table, token, **changes):
    path = root / "v1.0-mini" / f"{table}.json"
    rows = json.loads(path.read_text())
    for row in rows:
        if row["token"] == token:
            row.update(changes)
    path.write_text(json.dumps(rows))


def test_tiny_tables_semantics(tmp_path):
    root = _write_tiny(tmp_path / "nu")
    builder = nuimages.prepare(str(tmp_path / "tfds"), str(root))
    assert list(builder.info.splits) == ["mini"]
    source = builder.as_data_source("mini")
    assert len(source) == 1  # CAM_FRONT only
    example = fm.decode(source[0])
    assert example["image_id"] == "sd0"
    np.testing.assert_array_equal(example["boxes"], [[2, 3, 10, 9], [25, 12, 29, 15]])
    np.testing.assert_array_equal(example["box_labels"], [0, 0])
    seg = example["segmentation"]
    assert seg[5, 5] == 0  # car
    assert seg[3, 21] == IGNORE_LABEL  # animal: known, not a detection class
    assert seg[13, 26] == nuimages.DRIVEABLE_ID  # the mask-less car lies on the road: road kept
    assert seg[11, 5] == nuimages.DRIVEABLE_ID and (seg[18:] == IGNORE_LABEL).all()  # ego vehicle
    assert seg[0, 0] == nuimages.BACKGROUND_ID


def test_camera_from_sensor_tables(tmp_path):
    root = _write_tiny(tmp_path / "nu", sensor_tables=True)
    front = nuimages.prepare(str(tmp_path / "tfds"), str(root))
    back = nuimages.prepare(str(tmp_path / "tfds"), str(root), cameras=["CAM_BACK"])
    assert fm.decode(front.as_data_source("mini")[0])["image_id"] == "sd0"
    assert fm.decode(back.as_data_source("mini")[0])["image_id"] == "sd1"


def test_partly_outside_box_is_clipped_and_counted(tmp_path):
    root = _write_tiny(tmp_path / "nu")
    _edit(root, "object_ann", "car0", bbox=[-5, 3, 10, 40])
    builder = nuimages.prepare(str(tmp_path / "tfds"), str(root))
    np.testing.assert_array_equal(
        fm.decode(builder.as_data_source("mini")[0])["boxes"][0], [0, 3, 10, H]
    )
    assert errors.read_skips(builder.info)["mini"]["clipped_boxes"] == 1


def _truncate(root):
    path = root / "v1.0-mini" / "object_ann.json"
    path.write_bytes(path.read_bytes()[:-40])


# name -> (damage, reason, message pattern, skip kind or None when skipping is impossible)
BAD_INPUTS = {
    "malformed json": (_truncate, errors.MALFORMED_JSON, r"object_ann.json", None),
    "unknown category": (
        lambda r: (
            _add_category(r, "c9", "vehicle.spaceship")
            or _edit(r, "object_ann", "car0", category_token="c9")
        ),
        errors.UNKNOWN_CATEGORY,
        r"object_ann.json \[record object_ann car0\].*spaceship",
        "objects",
    ),
    "unknown category token": (
        lambda r: _edit(r, "object_ann", "car0", category_token="zzz"),
        errors.UNKNOWN_CATEGORY,
        r"object_ann car0.*zzz",
        "objects",
    ),
    "box outside image": (
        lambda r: _edit(r, "object_ann", "car0", bbox=[40, 3, 50, 9]),
        errors.BOX_OUTSIDE_IMAGE,
        r"object_ann car0.*outside",
        "objects",
    ),
    "mask size": (
        lambda r: _edit(
            r, "object_ann", "car0", mask=mask_formats.encode_nuimages_mask(np.ones((10, 10), bool))
        ),
        errors.SIZE_MISMATCH,
        r"object_ann.json \[record object_ann car0\].*mask is 10x10",
        "frames",
    ),
    "missing image": (
        lambda r: (r / "samples" / "CAM_FRONT" / "f0.jpg").unlink(),
        errors.MISSING_FILE,
        r"f0.jpg \[record sample_data sd0\]",
        "frames",
    ),
    "corrupt image": (
        lambda r: (r / "samples" / "CAM_FRONT" / "f0.jpg").write_bytes(b"\xff\xd8\xff garbage"),
        errors.CORRUPT_IMAGE,
        r"f0.jpg \[record sample_data sd0\]",
        "frames",
    ),
    "image size": (
        lambda r: _edit(r, "sample_data", "sd0", width=64),
        errors.SIZE_MISMATCH,
        # The declared size is named as declared, the image's as decoded (not swapped).
        r"sample_data.json \[record sample_data sd0\]: .*f0.jpg is 64x20 .* image is 30x20",
        "frames",
    ),
    "key camera token naming no sample_data": (
        lambda r: _edit(r, "sample", "s0", key_camera_token="zz"),
        errors.MALFORMED_RECORD,
        r"sample.json: 1 key_camera_token\(s\) name no row of sample_data.json \(e.g. 'zz'\)",
        None,
    ),
    "annotation naming no sample_data": (
        lambda r: _edit(r, "object_ann", "car0", sample_data_token="zz"),
        errors.MALFORMED_RECORD,
        r"object_ann.json \[record car0\]: sample_data_token .zz. names no row",
        None,
    ),
    "category token twice": (
        lambda r: _add_category(r, "c0", "animal"),
        errors.DUPLICATE_KEY,
        r"category.json \[record category c0\]",
        None,
    ),
    "missing field": (
        lambda r: _drop_field(r, "car0", "bbox"),
        errors.MALFORMED_RECORD,
        r"object_ann car0.*'bbox'",
        "objects",
    ),
}


def _add_category(root, token, name):
    path = root / "v1.0-mini" / "category.json"
    path.write_text(json.dumps(json.loads(path.read_text()) + [{"token": token, "name": name}]))


def _drop_field(root, token, field):
    path = root / "v1.0-mini" / "object_ann.json"
    rows = json.loads(path.read_text())
    for row in rows:
        if row["token"] == token:
            del row[field]
    path.write_text(json.dumps(rows))


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_naming_file_and_record_or_is_counted(tmp_path, name):
    damage, reason, pattern, skip_kind = BAD_INPUTS[name]
    root = _write_tiny(tmp_path / "nu", sensor_tables=False)
    # Make both frames front-camera so that a skipped frame leaves one example.
    _edit(root, "sample_data", "sd1", filename="samples/CAM_FRONT/f1.jpg")
    (root / "samples" / "CAM_FRONT_LEFT" / "f1.jpg").rename(
        root / "samples" / "CAM_FRONT" / "f1.jpg"
    )
    damage(root)
    with pytest.raises(errors.DatasetError, match=pattern) as info:
        nuimages.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == reason
    if skip_kind is None:
        return
    builder = nuimages.prepare(str(tmp_path / "tfds"), str(root), on_error="skip")
    report = errors.read_skips(builder.info)["mini"]
    assert report[skip_kind] == {reason: 1}, report
    source = builder.as_data_source("mini")
    assert len(source) == (1 if skip_kind == "frames" else 2)
    if skip_kind == "objects":  # The bad car gives no box and its pixels are ignored.
        example = next(
            fm.decode(source[i]) for i in range(2) if fm.decode(source[i])["image_id"] == "sd0"
        )
        assert len(example["boxes"]) == 1 and example["segmentation"][5, 5] == IGNORE_LABEL


def test_a_calibrated_sensor_naming_no_sensor_or_a_frame_no_calibrated_sensor_is_refused(tmp_path):
    root = _write_tiny(tmp_path / "nu", sensor_tables=True)
    _edit(root, "calibrated_sensor", "cs1", sensor_token="gone")
    with pytest.raises(errors.DatasetError, match=r"calibrated_sensor.json \[record cs1\].*'gone'"):
        nuimages.prepare(str(tmp_path / "tfds"), str(root))
    _edit(root, "calibrated_sensor", "cs1", sensor_token="back")
    _edit(root, "sample_data", "sd1", calibrated_sensor_token="gone")  # a frame would vanish
    with pytest.raises(errors.DatasetError, match=r"sample_data.json \[record sd1\].*'gone'"):
        nuimages.prepare(str(tmp_path / "tfds2"), str(root))
