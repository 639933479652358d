"""OpenLABEL (A9 / TUMTraf) builder: real files must parse, real pixels round-trip, bad input."""

import collections
import json

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from mtal_jax.data import cache, errors, files, openlabel, openlabel_format
from mtal_jax.structs import IGNORE_LABEL
from tests import fixtures_vistas as fm
from tests import mask_formats

KITTI = "openlabel_samples/vcd_kitti_tracking/openlabel100_kitti_tracking_0003.json"
ASAM = "openlabel_samples/asam_spec_examples"
CAMERAS = ("s110_camera_basler_south1_8mm", "s110_camera_basler_south2_8mm")


def test_real_kitti_file_parses_every_frame(shared_data):
    path = shared_data / KITTI
    frames = openlabel_format.parse(files.read_json(path), path=path)
    assert collections.Counter(f.camera for f in frames) == {"CAM_LEFT": 144, "CAM_RIGHT": 144}
    types = collections.Counter(o.type for f in frames for o in f.objects for _ in o.boxes_xyxy)
    assert types == {"Car": 726, "DontCare": 473, "Van": 50}  # all 1,249 bbox entries
    left = np.array(
        [b for f in frames if f.camera == "CAM_LEFT" for o in f.objects for b in o.boxes_xyxy]
    )
    assert frames[0].size_hw == (375, 1242)
    # Centre-based boxes land inside the 1242x375 image (the right edge of the
    # truncated car of frame 0 is exactly the image border).
    assert left.min() >= 0 and left[:, 2].max() <= 1242 and left[:, 3].max() <= 375
    first = next(o for o in frames[0].objects if o.object_id == "0")
    np.testing.assert_allclose(first.boxes_xyxy[0], [894.76, 190.65, 1241.0, 374.0])


def test_real_kitti_file_builds_a_dataset(shared_data, tmp_path):
    root = tmp_path / "kitti"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "0003.json").symlink_to(shared_data / KITTI)
    (root / "image_02").mkdir()
    blank = tmp_path / "blank.png"  # KITTI images are not in the sample: blank stand-ins.
    PIL.Image.new("RGB", (1242, 375)).save(blank)
    for frame in range(144):
        (root / "image_02" / f"{frame:06d}.png").symlink_to(blank)
    builder = openlabel.prepare(
        str(tmp_path / "tfds"),
        str(root),
        splits={"train": "labels/*.json"},
        cameras=["CAM_LEFT"],
        class_map={"dontcare": None, "egocar": None},
        image_template="image_02/{frame:06d}.png",
    )
    skip = {"image": tfds.decode.SkipDecoding(), "segmentation": tfds.decode.SkipDecoding()}
    source = builder.as_data_source("train", decoders=skip)
    assert len(source) == 144
    labels = collections.Counter(
        int(c) for i in range(len(source)) for c in source[i]["box_labels"]
    )
    car, van = openlabel.A9_CLASSES.index("car"), openlabel.A9_CLASSES.index("van")
    path = shared_data / KITTI
    frames = openlabel_format.parse(files.read_json(path), path=path, cameras=["CAM_LEFT"])
    want = collections.Counter(o.type for f in frames for o in f.objects for _ in o.boxes_xyxy)
    assert labels == {car: want["Car"], van: want["Van"]}
    # No masks in KITTI: no segmentation labels.
    assert (builder.as_data_source("train")[0]["segmentation"] == IGNORE_LABEL).all()


@pytest.mark.parametrize(
    "name", ["openlabel100_test_bbox_simple.json", "openlabel100_test_bbox_simple_attributes.json"]
)
def test_asam_examples_parse(shared_data, name):
    path = shared_data / ASAM / name
    (frame,) = openlabel_format.parse(files.read_json(path), path=path)
    assert frame.frame_id == openlabel_format.STATIC_FRAME and frame.camera is None
    assert [o.type for o in frame.objects] == [
        "Car",
        "Car",
        "Car",
        "Bus",
        "ZebraCross",
        "Semaphore",
        "Semaphore",
    ]
    np.testing.assert_allclose(frame.objects[0].boxes_xyxy[0], [410, 280, 462, 327])


@pytest.fixture(scope="module")
def scenes(shared_data):
    return fm.load_scenes(shared_data)[:6]  # nuImages tests use all 13


def _check(source, expected):
    for i in range(len(source)):
        example = fm.decode(source[i])
        want = expected[example["image_id"]]
        boxes, labels = fm.sort_boxes(example["boxes"], example["box_labels"])
        want_boxes, want_labels = fm.sort_boxes(want["boxes"], want["box_labels"])
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_allclose(boxes, want_boxes, atol=1e-4)
        np.testing.assert_array_equal(example["segmentation"], want["segmentation"])
        np.testing.assert_array_equal(example["image"], want["image"])
    return [fm.decode(source[i])["image_id"] for i in range(len(source))]


def test_mapillary_openlabel_gives_back_the_same_boxes_and_masks(scenes, tmp_path):
    expected = fm.write_openlabel(scenes, tmp_path / "a9", CAMERAS)
    builder = openlabel.prepare(
        str(tmp_path / "tfds"), str(tmp_path / "a9"), class_map={"animal": None}
    )
    ids = _check(builder.as_data_source("train"), expected) + _check(
        builder.as_data_source("val"), expected
    )
    assert sorted(ids) == sorted(expected)
    one_camera = openlabel.prepare(
        str(tmp_path / "tfds"),
        str(tmp_path / "a9"),
        class_map={"animal": None},
        cameras=[CAMERAS[0]],
    )
    ids = _check(one_camera.as_data_source("train"), expected) + _check(
        one_camera.as_data_source("val"), expected
    )
    assert sorted(ids) == sorted(i for i, e in expected.items() if e["camera"] == CAMERAS[0])


def _vcd_root(shared_data, tmp_path, encoding):
    source = shared_data / fm.FOLDER
    root = tmp_path / "vcd"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "images" / f"{fm.VCD_KEY}.jpg").symlink_to(source / "images" / f"{fm.VCD_KEY}.jpg")
    name = f"openlabel{fm.VCD_KEY}_instances_{encoding}.json"
    (root / "labels" / name).symlink_to(source / "openlabel" / name)
    config = json.loads((source / "config.json").read_text())["labels"]
    class_map = {label["name"]: None for label in config}
    for class_id, a9 in fm.THING_TO_A9.items():
        class_map[config[class_id]["name"]] = (
            None if a9 == "ANIMAL" else openlabel.normalize_type(a9)
        )
    return root, class_map


def test_real_vcd_polygons_rasterise_to_the_instance_png(shared_data, tmp_path):
    root, class_map = _vcd_root(shared_data, tmp_path, "MODE_POLY2D_ABSOLUTE")
    builder = openlabel.prepare(str(tmp_path / "tfds"), str(root), class_map=class_map)
    example = fm.decode(builder.as_data_source("train")[0])
    instances = np.asarray(
        PIL.Image.open(shared_data / fm.FOLDER / "instances" / f"{fm.VCD_KEY}.png")
    )
    scene = fm.Scene(
        fm.VCD_KEY, None, instances.astype(np.int32) // 256, instances.astype(np.int32)
    )
    want_boxes, want_labels, want_semantic = fm.a9_semantic(scene, openlabel.A9_CLASSES)
    boxes, labels = fm.sort_boxes(example["boxes"], example["box_labels"])
    want_boxes, want_labels = fm.sort_boxes(np.array(want_boxes), np.array(want_labels))
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(boxes, want_boxes, atol=1.0)
    # Every pixel belongs to some object, so no background: other classes are ignored.
    want_semantic[want_semantic == len(openlabel.A9_CLASSES)] = IGNORE_LABEL
    assert (example["segmentation"] == want_semantic).mean() > 0.999


def test_unsupported_chain_code_polygons_fail_clearly(shared_data, tmp_path):
    root, class_map = _vcd_root(shared_data, tmp_path, "MODE_POLY2D_SRF6DCC")
    with pytest.raises(errors.DatasetError, match=r"SRF6DCC.json.*MODE_POLY2D_SRF6DCC") as info:
        openlabel.prepare(str(tmp_path / "tfds"), str(root), class_map=class_map)
    assert info.value.reason == errors.BAD_MASK


# A tiny synthetic OpenLABEL folder for bad-input tests (no shared data needed).
H, W = 20, 30


def _write_tiny(root, num_frames=2):
    (root / "train").mkdir(parents=True)
    for i in range(num_frames):
        PIL.Image.fromarray(np.full((H, W, 3), 9 * i, np.uint8)).save(root / "train" / f"f{i}.png")
        mask = np.zeros((H, W), bool)
        mask[2:8, 3:9] = True
        document = {
            "openlabel": {
                "metadata": {"schema_version": "1.0.0"},
                "streams": {
                    "cam": {"type": "camera", "stream_properties": {"width": W, "height": H}}
                },
                "objects": {
                    "1": {"name": "car1", "type": "Car"},
                    "2": {"name": "person", "type": "Pedestrian"},
                },
                "frames": {
                    "0": {
                        "frame_properties": {"image_file_names": [f"f{i}.png"]},
                        "objects": {
                            "1": {
                                "object_data": {
                                    "bbox": [{"name": "b", "val": [6, 5, 6, 6]}],
                                    "binary": [
                                        {
                                            "name": "m",
                                            "encoding": "rle",
                                            "val": mask_formats.encode_rle(mask)["counts"],
                                        }
                                    ],
                                }
                            },
                            "2": {
                                "object_data": {
                                    "bbox": [{"name": "b", "val": [20, 10, 4, 8]}],
                                    "poly2d": [
                                        {
                                            "name": "m",
                                            "val": [18, 6, 21, 6, 21, 13, 18, 13],
                                            "closed": True,
                                        }
                                    ],
                                }
                            },
                        },
                    }
                },
            }
        }
        (root / "train" / f"f{i}.json").write_text(json.dumps(document))
    return root


def _edit(root, mutate, name="f0.json"):
    path = root / "train" / name
    document = json.loads(path.read_text())
    mutate(document["openlabel"])
    path.write_text(json.dumps(document))


def _frame_object(document, object_id):
    return document["frames"]["0"]["objects"][object_id]["object_data"]


def test_tiny_folder_semantics(tmp_path):
    root = _write_tiny(tmp_path / "ol")
    builder = openlabel.prepare(str(tmp_path / "tfds"), str(root))
    assert list(builder.info.splits) == ["train"]  # no train/val/test folders: everything is train
    example = fm.decode(builder.as_data_source("train")[0])
    boxes, labels = fm.sort_boxes(example["boxes"], example["box_labels"])
    car, pedestrian = openlabel.A9_CLASSES.index("car"), openlabel.A9_CLASSES.index("pedestrian")
    np.testing.assert_array_equal(labels, [car, pedestrian])
    np.testing.assert_array_equal(boxes, [[3, 2, 9, 8], [18, 6, 22, 14]])
    seg = example["segmentation"]
    assert seg[4, 4] == car and seg[10, 20] == pedestrian and seg[0, 0] == len(openlabel.A9_CLASSES)
    assert seg[13, 21] == pedestrian  # polygon vertices are pixels of the mask


def _break_json(root):
    (root / "train" / "f0.json").write_text('{"openlabel": {"frames": ')


def _resize_image(root):
    PIL.Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "train" / "f0.png")


def _ambiguous_image(root):
    image = root / "train" / "f0.png"
    for folder in ("a", "b"):  # the same name in two folders, neither beside the label file
        (root / folder).mkdir()
        (root / folder / "f0.png").write_bytes(image.read_bytes())
    image.unlink()


BAD_INPUTS = {
    "malformed json": (_break_json, errors.MALFORMED_JSON, r"f0.json.*line 1", "frames"),
    "not openlabel": (
        lambda r: (r / "train" / "f0.json").write_text("[]"),
        errors.MALFORMED_JSON,
        r"f0.json.*not an OpenLABEL document",
        "frames",
    ),
    "unknown type": (
        lambda r: _edit(r, lambda d: d["objects"]["1"].update(type="Spaceship")),
        errors.UNKNOWN_CATEGORY,
        r"f0.json \[record frame 0 camera cam object 1\].*Spaceship",
        "objects",
    ),
    "box outside image": (
        lambda r: _edit(r, lambda d: _frame_object(d, "2")["bbox"][0].update(val=[90, 10, 4, 8])),
        errors.BOX_OUTSIDE_IMAGE,
        r"f0.json \[record frame 0 camera cam object 2\].*outside",
        "objects",
    ),
    "bad box": (
        lambda r: _edit(r, lambda d: _frame_object(d, "2")["bbox"][0].update(val=[1, 2])),
        errors.MALFORMED_RECORD,
        r"f0.json \[record frame 0 object 2\].*not 4 numbers",
        "frames",
    ),
    "image size": (
        _resize_image,
        errors.SIZE_MISMATCH,
        r"f0.json \[record frame 0 camera cam\].*f0.png\) is 30x20 .* image is 10x10",
        "frames",
    ),
    "mask size": (
        lambda r: _edit(
            r,
            lambda d: _frame_object(d, "1")["binary"][0].update(
                val=mask_formats.encode_rle(np.ones((5, 5), bool))
            ),
        ),
        errors.SIZE_MISMATCH,
        r"f0.json \[record frame 0 camera cam object 1\].*RLE mask is 5x5",
        "frames",
    ),
    "missing image": (
        lambda r: (r / "train" / "f0.png").unlink(),
        errors.MISSING_FILE,
        r"f0.json \[record frame 0 camera cam\].*no image found",
        "frames",
    ),
    "ambiguous image": (
        _ambiguous_image,
        errors.MISSING_FILE,
        r"f0.json \[record frame 0 camera cam\].*image name 'f0.png' is ambiguous: 2 images",
        "frames",
    ),
    "corrupt image": (
        lambda r: (r / "train" / "f0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30),
        errors.CORRUPT_IMAGE,
        r"f0.png \[record frame 0 camera cam\]",
        "frames",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_naming_file_and_record_or_is_counted(tmp_path, name):
    damage, reason, pattern, skip_kind = BAD_INPUTS[name]
    root = _write_tiny(tmp_path / "ol")
    damage(root)
    with pytest.raises(errors.DatasetError, match=pattern) as info:
        openlabel.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == reason
    builder = openlabel.prepare(str(tmp_path / "tfds"), str(root), on_error="skip")
    report = errors.read_skips(builder.info)["train"]
    assert report[skip_kind] == {reason: 1}, report
    assert len(builder.as_data_source("train")) == (1 if skip_kind == "frames" else 2)


def test_class_map_must_name_detection_classes(tmp_path):
    with pytest.raises(ValueError, match="not in det_classes"):
        openlabel.Openlabel(root=str(tmp_path), class_map={"van": "lorry"})


def test_an_image_template_that_does_not_fit_a_frame_names_it(tmp_path):
    root = _write_tiny(tmp_path / "ol")
    with pytest.raises(errors.DatasetError, match=r"f0.json .*image_template '\{shot\}.png'"):
        openlabel.prepare(str(tmp_path / "tfds"), str(root), image_template="{shot}.png")


def test_entries_naming_no_camera_among_several_streams_are_refused():
    stream = {"type": "camera", "stream_properties": {"width": W, "height": H}}
    document = {
        "openlabel": {
            "streams": {"left": stream, "right": stream},
            "objects": {"1": {"name": "car", "type": "Car"}},
            "frames": {"0": {"objects": {"1": {"object_data": {"bbox": [{"val": [6, 5, 6, 6]}]}}}}},
        }
    }
    with pytest.raises(
        errors.DatasetError, match=r"f.json \[record frame 0\]: 1 object entries name no camera"
    ):
        openlabel_format.parse(document, path="f.json")


def test_a_class_map_that_maps_everything_to_none_is_refused(tmp_path):
    with pytest.raises(ValueError, match="maps every type .* to None"):
        openlabel.prepare(
            str(tmp_path / "tfds"), str(tmp_path), det_classes=["car"], class_map={"car": None}
        )


def test_images_in_a_linked_folder_are_found_and_a_link_loop_ends(tmp_path):
    # Images often live elsewhere, linked into the dataset folder; a link back to an
    # ancestor must not make the search (or the source fingerprint) loop.
    root = _write_tiny(tmp_path / "ol")
    stored = tmp_path / "stored_images"
    stored.mkdir()
    for png in sorted((root / "train").glob("*.png")):
        png.rename(stored / png.name)
    (root / "images").symlink_to(stored, target_is_directory=True)
    (root / "train" / "loop").symlink_to(root, target_is_directory=True)
    builder = openlabel.prepare(str(tmp_path / "tfds"), str(root))
    assert builder.info.splits["train"].num_examples == 2
    before = cache.source_fingerprint(str(root))
    PIL.Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(stored / "f1.png")
    assert cache.source_fingerprint(str(root)) != before  # the linked images count
