"""Generic COCO-style folder builder: real pixels round-trip, polygons, class options, bad input."""

import contextlib
import io
import json

import numpy as np
import PIL.Image
import pytest
from pycocotools import coco, cocoeval

from mtal_jax import sharding, structs
from mtal_jax.data import (
    coco_folder,
    errors,
    features,
    files,
    openlabel,
    openlabel_format,
    pipeline,
    rasterize,
    summary,
)
from mtal_jax.train import evaluate
from tests import fixtures_vistas as fm
from tests import mask_formats

A9_SEG = openlabel.A9_CLASSES + ["background"]


@pytest.fixture(scope="module")
def scenes(shared_data):
    return fm.load_scenes(shared_data)[:6]  # nuImages tests use all 13


@pytest.mark.parametrize("semantic_pngs", [False, True])
def test_mapillary_coco_gives_back_the_same_boxes_and_masks(scenes, tmp_path, semantic_pngs):
    expected = fm.write_coco(scenes, tmp_path / "coco", semantic_pngs=semantic_pngs)
    builder = coco_folder.prepare(
        str(tmp_path / "tfds"),
        str(tmp_path / "coco"),
        det_categories=openlabel.A9_CLASSES,
        seg_classes=A9_SEG,
    )
    meta = features.read_metadata(builder.info)
    assert meta["det_classes"] == openlabel.A9_CLASSES and meta["det_to_seg"] == list(range(10))
    source = builder.as_data_source("train")
    assert len(source) == len(expected)
    for i in range(len(source)):
        example = fm.decode(source[i])
        want = expected[example["image_id"]]
        boxes, labels = fm.sort_boxes(example["boxes"], example["box_labels"])
        want_boxes, want_labels = fm.sort_boxes(want["boxes"], want["box_labels"])
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_allclose(boxes, want_boxes, atol=1e-4)
        np.testing.assert_array_equal(example["segmentation"], want["segmentation"])
        np.testing.assert_array_equal(example["image"], want["image"])


def test_real_polygons_match_the_instance_png(shared_data, tmp_path):
    """COCO polygons from the real VCD contours of the Mapillary cars and people."""
    source = shared_data / fm.FOLDER
    label_path = source / "openlabel" / f"openlabel{fm.VCD_KEY}_instances_MODE_POLY2D_ABSOLUTE.json"
    (frame,) = openlabel_format.parse(files.read_json(label_path), path=label_path)
    root = tmp_path / "coco"
    (root / "images").mkdir(parents=True)
    (root / "images" / f"{fm.VCD_KEY}.jpg").symlink_to(source / "images" / f"{fm.VCD_KEY}.jpg")
    annotations = []
    for obj in frame.objects:
        if obj.type not in ("object--vehicle--car", "human--person"):
            continue
        outer = [c for c, h in obj.contours if h[3] == -1 and len(c) >= 6]
        xs, ys = np.concatenate([c[0::2] for c in outer]), np.concatenate([c[1::2] for c in outer])
        annotations.append(
            {
                "id": int(obj.object_id),
                "image_id": 1,
                "iscrowd": 0,
                "category_id": 1 if obj.type == "human--person" else 2,
                "bbox": [
                    float(xs.min()),
                    float(ys.min()),
                    float(np.ptp(xs) + 1),
                    float(np.ptp(ys) + 1),
                ],
                "segmentation": outer,
            }
        )
    document = {
        "images": [{"id": 1, "file_name": f"{fm.VCD_KEY}.jpg", "height": 1536, "width": 2048}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
    }
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val.json").write_text(json.dumps(document))
    builder = coco_folder.prepare(str(tmp_path / "tfds"), str(root))
    assert features.read_metadata(builder.info)["seg_classes"] == ["person", "car", "background"]
    example = fm.decode(builder.as_data_source("val")[0])
    instances = np.asarray(PIL.Image.open(source / "instances" / f"{fm.VCD_KEY}.png")).astype(
        np.int32
    )
    assert len(example["boxes"]) == len(annotations) == 7
    for ann, box in zip(annotations, example["boxes"]):  # annotation order is kept
        np.testing.assert_allclose(box, rasterize.mask_box(instances == ann["id"]), atol=1.0)
    for seg_id, class_id in ((0, 19), (1, 55)):  # pycocotools drops part of the boundary
        predicted, truth = example["segmentation"] == seg_id, instances // 256 == class_id
        assert (predicted & truth).sum() / (predicted | truth).sum() > 0.8


# A tiny synthetic COCO folder for bad-input tests (no shared data needed).
H, W = 20, 30


def _write_tiny(root, semantic=True):
    for folder in ("images", "annotations") + (("semantic",) if semantic else ()):
        (root / folder).mkdir(parents=True)
    images, annotations = [], []
    for i in range(2):
        PIL.Image.fromarray(np.full((H, W, 3), 7 * i, np.uint8)).save(
            root / "images" / f"im{i}.jpg"
        )
        images.append({"id": i, "file_name": f"im{i}.jpg", "height": H, "width": W})
        annotations.append(
            {
                "id": 10 + i,
                "image_id": i,
                "category_id": 3,
                "bbox": [2, 3, 8, 6],
                "iscrowd": 0,
                "segmentation": [[2, 3, 10, 3, 10, 9, 2, 9]],
            }
        )
        annotations.append(
            {
                "id": 20 + i,
                "image_id": i,
                "category_id": 5,
                "bbox": [15, 2, 5, 5],
                "iscrowd": 0,
                "segmentation": mask_formats.encode_rle(
                    np.pad(np.ones((5, 5), bool), ((2, 13), (15, 10)))
                ),
            }
        )
        annotations.append(
            {
                "id": 30 + i,
                "image_id": i,
                "category_id": 3,
                "bbox": [22, 12, 6, 6],
                "iscrowd": 1,
                "segmentation": [[22, 12, 28, 12, 28, 18, 22, 18]],
            }
        )
        if semantic:
            PIL.Image.fromarray(np.full((H, W), i, np.uint8)).save(root / "semantic" / f"im{i}.png")
    document = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 3, "name": "car"}, {"id": 5, "name": "sign"}],
    }
    (root / "annotations" / "instances_train.json").write_text(json.dumps(document))
    return root


def _edit(root, mutate):
    path = root / "annotations" / "instances_train.json"
    document = json.loads(path.read_text())
    mutate(document)
    path.write_text(json.dumps(document))


def test_tiny_folder_painted_semantics_crowd_and_category_subset(tmp_path):
    root = _write_tiny(tmp_path / "coco", semantic=False)
    builder = coco_folder.prepare(str(tmp_path / "tfds"), str(root), det_categories=["car"])
    meta = features.read_metadata(builder.info)
    assert meta == {
        "det_classes": ["car"],
        "seg_classes": ["car", "sign", "background"],
        "det_to_seg": [0],
    }
    raw = builder.as_data_source("train")[0]
    example = fm.decode(raw)
    np.testing.assert_array_equal(
        example["boxes"], [[2, 3, 10, 9]]
    )  # sign: not detected; crowd: no box but a crowd region
    np.testing.assert_array_equal(raw["crowd_boxes"], [[22, 12, 28, 18]])
    np.testing.assert_array_equal(raw["crowd_labels"], [0])
    assert summary.summarize(builder)["splits"]["train"] == {
        "images": 2,
        "boxes_per_class": {"car": 2},
        "crowd_regions_per_class": {"car": 2},
    }
    seg = example["segmentation"]
    # Crowd pixels keep their class; a mask-less box would be ignored.
    assert seg[5, 5] == 0 and seg[4, 17] == 1 and seg[15, 25] == 0 and seg[0, 0] == 2


def test_crowd_of_a_category_that_is_not_detected_needs_no_bbox(tmp_path):
    """Only a detection class's crowd annotation is a crowd region (its bbox is read); one
    of another category is only pixels, as before crowd regions existed."""
    root = _write_tiny(tmp_path / "coco", semantic=False)

    def crowd_sign_without_bbox(document):
        crowd = dict(document["annotations"][2], id=40, category_id=5)
        crowd.pop("bbox")
        document["annotations"].append(crowd)

    _edit(root, crowd_sign_without_bbox)
    builder = coco_folder.prepare(str(tmp_path / "tfds"), str(root), det_categories=["car"])
    by_id = {}
    for i in range(2):
        raw = builder.as_data_source("train")[i]
        by_id[fm.decode(raw)["image_id"]] = raw
    raw = by_id["im0.jpg"]
    np.testing.assert_array_equal(raw["crowd_boxes"], [[22, 12, 28, 18]])  # the car crowd only
    seg = fm.decode(raw)["segmentation"]
    assert seg[15, 25] in (0, 1)  # painted (car's or sign's mask, largest first), not ignored


def test_semantic_pngs_take_precedence(tmp_path):
    root = _write_tiny(tmp_path / "coco", semantic=True)
    builder = coco_folder.prepare(str(tmp_path / "tfds"), str(root))
    source = builder.as_data_source("train")
    by_id = {fm.decode(source[i])["image_id"]: fm.decode(source[i]) for i in range(2)}
    assert (by_id["im1.jpg"]["segmentation"] == 1).all() and len(by_id["im1.jpg"]["boxes"]) == 2


def _semantic_png(root, array):
    PIL.Image.fromarray(array).save(root / "semantic" / "im0.png")


BAD_INPUTS = {
    "malformed json": (
        lambda r: (r / "annotations" / "instances_train.json").write_text('{"images": [{"id": 0'),
        errors.MALFORMED_JSON,
        r"instances_train.json",
        None,
    ),
    "unknown category": (
        lambda r: _edit(r, lambda d: d["annotations"][0].update(category_id=99)),
        errors.UNKNOWN_CATEGORY,
        r"instances_train.json \[record image 0 annotation 10\].*99",
        "objects",
    ),
    "box outside image": (
        lambda r: _edit(r, lambda d: d["annotations"][0].update(bbox=[40, 3, 8, 6])),
        errors.BOX_OUTSIDE_IMAGE,
        r"instances_train.json \[record image 0 annotation 10\]",
        "objects",
    ),
    "crowd without bbox": (
        lambda r: _edit(r, lambda d: d["annotations"][2].pop("bbox")),
        errors.MALFORMED_RECORD,
        r"instances_train.json \[record image 0 annotation 30\]: missing field 'bbox'",
        "objects",
    ),
    "semantic size": (
        lambda r: _semantic_png(r, np.zeros((5, 5), np.uint8)),
        errors.SIZE_MISMATCH,
        r"semantic/im0.png \[record image 0\].*5x5",
        "frames",
    ),
    "semantic ids": (
        lambda r: _semantic_png(r, np.full((H, W), 7, np.uint8)),
        errors.BAD_MASK,
        r"semantic/im0.png \[record image 0\].*\[7\]",
        "frames",
    ),
    "missing semantic": (
        lambda r: (r / "semantic" / "im0.png").unlink(),
        errors.MISSING_FILE,
        r"semantic/im0.png \[record image 0\]",
        "frames",
    ),
    "rle size": (
        lambda r: _edit(
            r,
            lambda d: d["annotations"][1].update(
                segmentation=mask_formats.encode_rle(np.ones((4, 4), bool))
            ),
        ),
        errors.SIZE_MISMATCH,
        r"instances_train.json \[record image 0 annotation 20\]",
        "frames",
    ),
    "missing image": (
        lambda r: (r / "images" / "im0.jpg").unlink(),
        errors.MISSING_FILE,
        r"images/im0.jpg \[record image 0\]",
        "frames",
    ),
    "truncated image": (
        lambda r: (r / "images" / "im0.jpg").write_bytes(
            (r / "images" / "im0.jpg").read_bytes()[:200]
        ),
        errors.CORRUPT_IMAGE,
        r"images/im0.jpg \[record image 0\]",
        "frames",
    ),
    "annotation of no image": (
        lambda r: _edit(r, lambda d: d["annotations"][0].update(image_id=42)),
        errors.MALFORMED_RECORD,
        r"instances_train.json \[record annotations of image_id 42\]: 1 annotation",
        "objects",
    ),
    "image id as text": (
        lambda r: _edit(r, lambda d: d["annotations"][0].update(image_id="0")),
        errors.MALFORMED_RECORD,
        r"image_id '0'.*image 0 has that id as a int, the annotation as a str",
        "objects",
    ),
    "image ids 1 and '1'": (
        lambda r: _edit(r, lambda d: d["images"][1].update(id=str(d["images"][0]["id"]))),
        errors.DUPLICATE_KEY,
        r"instances_train.json \[record image '0'\]: duplicate image id \(as text\) '0'",
        None,
    ),
    "image size": (
        lambda r: _edit(r, lambda d: d["images"][0].update(width=31)),
        errors.SIZE_MISMATCH,
        # The declared size is named as declared, the image's as decoded (not swapped).
        r"instances_train.json \[record image 0\]: .*im0.jpg is 31x20 .* image is 30x20",
        "frames",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_naming_file_and_record_or_is_counted(tmp_path, name):
    damage, reason, pattern, skip_kind = BAD_INPUTS[name]
    root = _write_tiny(tmp_path / "coco")
    damage(root)
    with pytest.raises(errors.DatasetError, match=pattern) as info:
        coco_folder.prepare(str(tmp_path / "tfds"), str(root))
    assert info.value.reason == reason
    if skip_kind is None:
        return
    builder = coco_folder.prepare(str(tmp_path / "tfds"), str(root), on_error="skip")
    assert errors.read_skips(builder.info)["train"][skip_kind] == {reason: 1}
    assert len(builder.as_data_source("train")) == (1 if skip_kind == "frames" else 2)


def test_no_detection_class_is_refused_before_anything_is_written(tmp_path):
    root = _write_tiny(tmp_path / "coco")
    with pytest.raises(ValueError, match="0 detection and .* segmentation classes"):
        coco_folder.prepare(str(tmp_path / "tfds"), str(root), det_categories=[])
    with pytest.raises(ValueError, match="lack 'background'"):
        coco_folder.prepare(str(tmp_path / "tfds"), str(root), seg_classes=["a", "b"])
    doubled = _write_tiny(tmp_path / "doubled")
    _edit(doubled, lambda d: d["categories"][1].update(name=d["categories"][0]["name"]))
    with pytest.raises(errors.DatasetError, match=r"category names \['.*'\] are given to several"):
        coco_folder.prepare(str(tmp_path / "tfds2"), str(doubled))
    named = _write_tiny(tmp_path / "named")
    _edit(named, lambda d: d["categories"][0].update(name="background"))
    with pytest.raises(errors.DatasetError, match="a category is named 'background'"):
        coco_folder.prepare(str(tmp_path / "tfds3"), str(named))


def test_map_of_a_folder_with_crowd_regions_equals_cocoeval_on_its_json(tmp_path):
    """The whole path (prepare, pipeline, evaluation) against pycocotools on the user's own
    JSON: a confident detection inside a crowd region is ignored, not a false positive."""
    root = _write_tiny(tmp_path / "coco", semantic=False)
    builder = coco_folder.prepare(str(tmp_path / "tfds"), str(root), det_categories=["car"])
    source = builder.as_data_source("train")
    spec = pipeline.Spec(image_hw=(32, 64), max_boxes=4, num_det_classes=1, num_seg_classes=3)
    scale = 32 / H  # the pipeline resizes 30x20 to 48x32
    by_image = {  # original pixels xyxy, score
        "im0.jpg": [([23, 13, 27, 17], 0.9), ([2, 3, 10, 9], 0.6)],  # in the crowd, on the car
        "im1.jpg": [([0, 12, 6, 18], 0.95), ([2, 3, 10, 9], 0.5)],  # a false positive, the car
    }
    ids = [fm.decode(source[i])["image_id"] for i in range(2)]

    def eval_fn(variables, batch):
        boxes = np.zeros((2, 4, 4), np.float32)
        scores = np.zeros((2, 4), np.float32)
        valid = np.zeros((2, 4), bool)
        for row, image_id in enumerate(ids):
            for k, (box, score) in enumerate(by_image[image_id]):
                boxes[row, k], scores[row, k], valid[row, k] = np.multiply(box, scale), score, True
        return {
            "confusion": np.zeros((3, 3), np.int64),
            "detections": structs.Detections(
                boxes=boxes, det_probs=scores[..., None], scores=scores,
                labels=np.zeros((2, 4), np.int32), valid=valid,
            ),
            "losses": np.zeros((2, 2), np.float32),
        }  # fmt: skip

    result = evaluate.evaluate(
        eval_fn, {}, source, [0, 1], spec, batch_size=2, mesh=sharding.create_mesh(2),
        progress=False,
    )  # fmt: skip
    document = json.loads((root / "annotations" / "instances_train.json").read_text())
    document["categories"] = [c for c in document["categories"] if c["name"] == "car"]
    document["annotations"] = [a for a in document["annotations"] if a["category_id"] == 3]
    for a in document["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    file_to_id = {im["file_name"]: im["id"] for im in document["images"]}
    detections = [
        {"image_id": file_to_id[name], "category_id": 3, "score": score,
         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]}
        for name, dets in by_image.items() for box, score in dets
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        api = coco.COCO()
        api.dataset = document
        api.createIndex()
        evaluator = cocoeval.COCOeval(api, api.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert result.metrics["map"] == pytest.approx(evaluator.stats[0], abs=1e-9)
    assert result.metrics["ap50"] == pytest.approx(evaluator.stats[1], abs=1e-9)
    # By hand, in score order: false positive, ignored, car, car -> precision 2/3 at every
    # recall; read as a false positive, the crowd detection would make it 1/2.
    assert result.metrics["map"] == pytest.approx(2 / 3)


def test_the_shipped_config_reads_a_folder(tmp_path, capsys):
    # configs/coco_folder.py, as its docstring's first command runs it
    import pathlib

    from mtal_jax.data import __main__ as cli

    root = _write_tiny(tmp_path / "mine")
    config = pathlib.Path(__file__).resolve().parents[1] / "configs" / "coco_folder.py"
    argv = ["summary", "--config", str(config), "--data-root", str(root),
            "--data-dir", str(tmp_path / "tfds")]  # fmt: skip
    assert cli.main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == {"splits": {"train": {"images": 2, "boxes_per_class": {"car": 2, "sign": 2},
                                         "crowd_regions_per_class": {"car": 2, "sign": 0}}}}  # fmt: skip
