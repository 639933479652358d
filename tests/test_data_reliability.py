"""Regression tests of faults found by probing the loaders: NaN / huge polygon coordinates,
duplicate image keys, paths out of the dataset folder, malformed ids and RLE counts,
non-UTF-8 list files, edited source files under a prepared cache, killed preparations,
and metric logs of resumed runs."""

import json
import os

import numpy as np
import pytest

from mtal_jax import metric_writer
from mtal_jax.data import cache, camvid, coco_folder, errors, files, nuimages, openlabel, rasterize
from tests import fixtures_camvid
from tests import test_data_coco_folder as coco_tests
from tests import test_data_nuimages as nu_tests
from tests import test_data_openlabel as ol_tests

H, W = coco_tests.H, coco_tests.W


def _prepare_both(prepare, tmp_path, root, pattern, reason):
    """Checks the error under on_error="raise" and returns the skip counts under "skip"."""
    with pytest.raises(errors.DatasetError, match=pattern) as info:
        prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == reason, info.value
    builder = prepare(str(tmp_path / "tfds"), str(root), on_error="skip")
    return errors.read_skips(builder.info), builder


# ---------------------------------------------------------------- polygons (High 1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_polygon_coordinate_names_file_annotation_and_value(tmp_path, value):
    root = coco_tests._write_tiny(tmp_path / "coco", semantic=False)
    polygon = [2, 3, value, 3, 10, 9, 2, 9]
    coco_tests._edit(root, lambda d: d["annotations"][0].update(segmentation=[polygon]))
    pattern = rf"instances_train.json \[record image 0 annotation 10\]: polygon coordinate {value}"
    skips, builder = _prepare_both(coco_folder.prepare, tmp_path, root, pattern, errors.BAD_MASK)
    assert skips["train"]["frames"] == {errors.BAD_MASK: 1}
    assert len(builder.as_data_source("train")) == 1


def test_huge_polygon_coordinates_are_clipped_in_bounded_memory():
    # Before: pycocotools crashed (exit 139) on 1e12 / -1e9 and PIL drew wrong pixels.
    huge = [[2, 3, 1e12, 3, 1e12, 9, 2, 9]]
    inside = [[2, 3, 40, 3, 40, 9, 2, 9]]
    np.testing.assert_array_equal(
        rasterize.coco_polygons_mask(huge, H, W), rasterize.coco_polygons_mask(inside, H, W)
    )
    mask = rasterize.coco_polygons_mask([[-1e9, -1e9, 1e12, -1e9, 1e12, 1e12]], H, W)
    assert mask.shape == (H, W) and mask[5:, :5].sum() == 0 and mask[0, 1:].all()
    contour = rasterize.contour_mask([[2, 2, 1e12, 2, 1e12, 5, 2, 5]], H, W)
    expected = np.zeros((H, W), bool)
    expected[2:6, 2:] = True
    np.testing.assert_array_equal(contour, expected)
    assert not rasterize.coco_polygons_mask([[1e12, 1e12, 2e12, 1e12, 2e12, 2e12]], H, W).any()


def test_clip_polygon_keeps_inside_polygons_and_cuts_outside_parts():
    square = [(1.0, 1.0), (5.0, 1.0), (5.0, 5.0), (1.0, 5.0)]
    assert rasterize.clip_polygon(square, 0, 0, 10, 10) == square
    clipped = rasterize.clip_polygon(square, 0, 0, 3, 10)
    assert sorted(clipped) == sorted([(1.0, 1.0), (3.0, 1.0), (3.0, 5.0), (1.0, 5.0)])
    assert rasterize.clip_polygon(square, 6, 6, 10, 10) == []


# ---------------------------------------------------------------- duplicate keys (Medium 6)


def test_duplicate_coco_image_id(tmp_path):
    root = coco_tests._write_tiny(tmp_path / "coco", semantic=False)
    coco_tests._edit(root, lambda d: d["images"][1].update(id=0))
    pattern = r"instances_train.json \[record image 0\]: duplicate image id 0 \(first at image 0\)"
    skips, builder = _prepare_both(
        coco_folder.prepare, tmp_path, root, pattern, errors.DUPLICATE_KEY
    )
    assert skips["train"]["frames"] == {errors.DUPLICATE_KEY: 1}
    assert len(builder.as_data_source("train")) == 1


def test_duplicate_camvid_line(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    with open(root / "train.txt", "a") as f:
        f.write("train/f1.png trainannot/f1.png\n")
    pattern = r"train.txt \[record line 4\]: duplicate image name 'f1' \(first at line 2\)"
    skips, builder = _prepare_both(camvid.prepare, tmp_path, root, pattern, errors.DUPLICATE_KEY)
    assert skips["train"]["frames"] == {errors.DUPLICATE_KEY: 1}
    assert len(builder.as_data_source("train")) == 3


def test_duplicate_nuimages_sample_data_token(tmp_path):
    root = nu_tests._write_tiny(tmp_path / "nu")
    path = root / "v1.0-mini" / "sample_data.json"
    rows = json.loads(path.read_text())
    path.write_text(json.dumps(rows + [dict(rows[0])]))
    with pytest.raises(errors.DatasetError, match=r"duplicate sample_data token 'sd0'") as info:
        nuimages.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == errors.DUPLICATE_KEY


# ---------------------------------------------------------------- paths (Low 7)


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "sub/../../../x.jpg"])
def test_coco_file_names_out_of_the_folder_are_refused_before_opening(tmp_path, name, monkeypatch):
    root = coco_tests._write_tiny(tmp_path / "coco", semantic=False)
    coco_tests._edit(root, lambda d: d["images"][0].update(file_name=name))
    opened = []
    real_read = files.read_image
    monkeypatch.setattr(files, "read_image", lambda p, **k: opened.append(p) or real_read(p, **k))
    pattern = r"instances_train.json \[record image 0\]: image path .* leads out of the dataset"
    skips, _ = _prepare_both(coco_folder.prepare, tmp_path, root, pattern, errors.UNSAFE_PATH)
    assert skips["train"]["frames"] == {errors.UNSAFE_PATH: 1}
    assert all(str(p).startswith(str(root)) for p in opened), opened


def test_nuimages_and_camvid_paths_out_of_the_folder(tmp_path):
    root = nu_tests._write_tiny(tmp_path / "nu", sensor_tables=True)  # camera from the tables
    nu_tests._edit(root, "sample_data", "sd0", filename="/etc/passwd")
    with pytest.raises(errors.DatasetError, match="sample_data.json.*'/etc/passwd'") as info:
        nuimages.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == errors.UNSAFE_PATH
    cam = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    (cam / "train.txt").write_text(
        "/train/f0.png /trainannot/f0.png\n"  # A leading "/" is the dataset folder (SegNet).
        "train/../../outside.png trainannot/f1.png\n"
    )
    with pytest.raises(errors.DatasetError, match=r"train.txt \[record line 2\].*leads out"):
        camvid.prepare(str(tmp_path / "tfds"), str(cam))
    builder = camvid.prepare(str(tmp_path / "tfds"), str(cam), on_error="skip")
    assert errors.read_skips(builder.info)["train"]["frames"] == {errors.UNSAFE_PATH: 1}
    assert len(builder.as_data_source("train")) == 1


def test_openlabel_image_names_out_of_the_folder_are_never_opened(tmp_path, monkeypatch):
    root = ol_tests._write_tiny(tmp_path / "ol")
    outside = tmp_path / "secret.png"
    (root / "train" / "f0.png").rename(outside)
    ol_tests._edit(
        root,
        lambda d: d["frames"]["0"]["frame_properties"].update(
            image_file_names=["../../secret.png", str(outside)]
        ),
    )
    opened = []
    real_read = files.read_image
    monkeypatch.setattr(files, "read_image", lambda p, **k: opened.append(p) or real_read(p, **k))
    with pytest.raises(errors.DatasetError, match="no image found") as info:
        openlabel.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == errors.MISSING_FILE and outside not in opened


# ---------------------------------------------------------------- ids, RLE, encodings (Low 10)


@pytest.mark.parametrize("counts", [[2**40], [600, -5]])
def test_out_of_range_rle_counts_are_bad_masks_naming_the_file(tmp_path, counts):
    root = coco_tests._write_tiny(tmp_path / "coco", semantic=False)
    rle = {"size": [H, W], "counts": counts}
    coco_tests._edit(root, lambda d: d["annotations"][1].update(segmentation=rle))
    pattern = r"instances_train.json \[record image 0 annotation 20\]: invalid RLE"
    skips, _ = _prepare_both(coco_folder.prepare, tmp_path, root, pattern, errors.BAD_MASK)
    assert skips["train"]["frames"] == {errors.BAD_MASK: 1}


def test_list_valued_ids_are_malformed_records(tmp_path):
    root = coco_tests._write_tiny(tmp_path / "coco", semantic=False)
    coco_tests._edit(root, lambda d: d["images"][1].update(id=[1]))
    pattern = r"instances_train.json \[record image \[1\]\]: image id \[1\] is not a number"
    skips, _ = _prepare_both(coco_folder.prepare, tmp_path, root, pattern, errors.MALFORMED_RECORD)
    assert skips["train"]["frames"] == {errors.MALFORMED_RECORD: 1}
    nu = nu_tests._write_tiny(tmp_path / "nu")
    nu_tests._edit(nu, "object_ann", "car0", sample_data_token=["sd0"])
    with pytest.raises(errors.DatasetError, match=r"object_ann.json \[record car0\]: sample_data"):
        nuimages.prepare(str(tmp_path / "tfds"), str(nu))


def test_non_utf8_camvid_line_names_the_line_and_can_be_skipped(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    lines = (root / "train.txt").read_bytes().splitlines(keepends=True)
    lines[1] = b"train/f\xff.png trainannot/f1.png\n"
    (root / "train.txt").write_bytes(b"".join(lines))
    pattern = r"train.txt \[record line 2\]: line is not UTF-8 text \(byte 7"
    skips, builder = _prepare_both(camvid.prepare, tmp_path, root, pattern, errors.MALFORMED_RECORD)
    assert skips["train"]["frames"] == {errors.MALFORMED_RECORD: 1}
    assert len(builder.as_data_source("train")) == 2


# ---------------------------------------------------------------- cache (Medium 5, Low 11)


def test_edited_source_files_are_prepared_again(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    first = camvid.prepare(str(tmp_path / "tfds"), str(root))
    assert camvid.prepare(str(tmp_path / "tfds"), str(root)).data_dir == first.data_dir
    lines = (root / "train.txt").read_text().splitlines()
    (root / "train.txt").write_text("\n".join(lines[:2]) + "\n")  # One image less.
    edited = camvid.prepare(str(tmp_path / "tfds"), str(root))
    assert edited.data_dir != first.data_dir and len(edited.as_data_source("train")) == 2
    # A data_dir inside the dataset folder does not change the identity by being written.
    inside = camvid.prepare(str(root / "tfds"), str(root))
    assert camvid.prepare(str(root / "tfds"), str(root)).data_dir == inside.data_dir


def test_a_killed_preparation_leaves_no_incomplete_folder(tmp_path):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    builder = camvid.Camvid(root=str(root), data_dir=str(tmp_path / "tfds"))
    config_dir = os.path.dirname(os.fspath(builder.data_dir))
    stale = os.path.join(config_dir, f"incomplete.ABC123_{os.path.basename(builder.data_dir)}")
    os.makedirs(stale)  # What a preparation killed with SIGKILL leaves behind.
    camvid.prepare(str(tmp_path / "tfds"), str(root))
    assert not os.path.exists(stale)
    assert [n for n in os.listdir(config_dir) if n.startswith("incomplete.")] == []


def test_metrics_of_a_resumed_run_do_not_repeat_steps(tmp_path):
    writer = metric_writer.MetricWriter(str(tmp_path))
    for step in (1, 2, 3, 4):  # A crash after step 4, the last checkpoint at step 2.
        writer.write(step, {"train/total": 1.0 / step})
    writer.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "tim')  # Torn by the crash.
    writer = metric_writer.MetricWriter(str(tmp_path), resume_step=2)
    for step in (3, 4):
        writer.write(step, {"train/total": 1.0 / step})
    writer.close()
    with open(tmp_path / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [1, 2, 3, 4]
    # TensorBoard: the resumed run's event file opens with the purge marker at step 3, so
    # the first run's events of steps >= 3 are hidden (tensorboardX's purge_step).
    files = sorted(tmp_path.glob("events.*"), key=os.path.getmtime)
    assert len(files) == 2
    first, resumed = (_events(f) for f in files)
    assert not any(e.HasField("session_log") for e in first)
    marks = [e.step for e in resumed if e.HasField("session_log") and e.session_log.status == 1]
    assert marks == [3]
    assert [e.step for e in resumed if e.summary.value] == [3, 4]


def _events(path):
    """The ``Event`` protos of a TensorBoard event file (TFRecord framing, CRCs skipped)."""
    import struct

    from tensorboardX.proto import event_pb2

    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[i + 12 : i + 12 + n])
        out.append(event)
        i += 12 + n + 4
    return out


def test_builder_identity_ignores_unread_folders_and_keeps_an_explicit_config(tmp_path):
    root = tmp_path / "nuimages"
    nu_tests._write_tiny(root)
    kwargs = {"data_dir": str(tmp_path / "tfds")}
    first = nuimages.Nuimages(root=str(root), **kwargs).builder_config.name
    (root / "sweeps" / "CAM_FRONT").mkdir(parents=True)
    (root / "sweeps" / "CAM_FRONT" / "x.jpg").write_bytes(b"never read")
    assert nuimages.Nuimages(root=str(root), **kwargs).builder_config.name == first
    (root / "v1.0-mini" / "extra.json").write_text("[]")  # A file the builder may read.
    assert nuimages.Nuimages(root=str(root), **kwargs).builder_config.name != first
    assert kwargs == {"data_dir": str(tmp_path / "tfds")}  # The caller's arguments untouched.
    given = cache.make_config({"root": None, "note": "given"})
    chosen = cache.builder_kwargs({"root": str(root)}, {"config": given, "file_format": "tfrecord"})
    assert chosen == {"config": given, "file_format": "tfrecord"}


def test_the_same_files_in_another_folder_share_one_prepared_copy(tmp_path):
    # Another checkout reaches the same data by another path, or a copy keeps the times:
    # one prepared copy (its description still names the root); other files, another one.
    import shutil

    root = tmp_path / "a" / "nuimages"
    nu_tests._write_tiny(root)
    copy = tmp_path / "b" / "nuimages"
    shutil.copytree(root, copy)  # copy2: sizes and modification times kept
    kwargs = {"data_dir": str(tmp_path / "tfds")}
    first = nuimages.Nuimages(root=str(root), **kwargs).builder_config
    second = nuimages.Nuimages(root=str(copy), **kwargs).builder_config
    assert first.name == second.name
    assert str(root) in first.description and str(copy) in second.description
    (copy / "v1.0-mini" / "extra.json").write_text("[]")
    assert nuimages.Nuimages(root=str(copy), **kwargs).builder_config.name != first.name
    # Without files under it (a missing root), the path stays in the identity.
    assert (
        cache.make_config({"root": str(tmp_path / "x")}).name
        != cache.make_config({"root": str(tmp_path / "y")}).name
    )


def test_images_pil_would_clamp_and_jpeg_label_maps_are_refused(tmp_path):
    import PIL.Image

    deep = tmp_path / "deep.png"
    PIL.Image.fromarray(np.full((4, 4), 30000, np.uint16)).save(deep)  # 16-bit grey
    with pytest.raises(errors.DatasetError, match=r"deep.png.*mode 'I;16'") as info:
        files.read_image(deep, record="image 3")
    assert info.value.reason == errors.CORRUPT_IMAGE
    lossy = tmp_path / "label.png"  # a JPEG behind a .png name
    PIL.Image.fromarray(np.zeros((4, 4), np.uint8)).save(lossy, format="JPEG")
    with pytest.raises(errors.DatasetError, match=r"label.png.*label map is a JPEG") as info:
        files.read_label_png(lossy)
    assert info.value.reason == errors.BAD_MASK


def test_non_finite_metrics_are_null_in_json_and_absent_from_events(tmp_path, caplog):
    # e.g. the mIoU of a folder without segmentation labels: no tensorboardX warning
    writer = metric_writer.MetricWriter(str(tmp_path))
    writer.write(1, {"eval/miou": float("nan"), "eval/map": 0.25, "train/total": float("inf")})
    writer.close()
    with open(tmp_path / "metrics.jsonl") as f:
        row = json.loads(f.read())
    assert (row["eval/miou"], row["eval/map"], row["train/total"]) == (None, 0.25, None)
    (events,) = tmp_path.glob("events.*")
    assert [v.tag for e in _events(events) for v in e.summary.value] == ["eval/map"]
    assert "NaN or Inf" not in caplog.text
