"""Exports for annotation tools: brush RLE, disagreement maps, Label Studio tasks, COCO 1.0."""

import json
import os
import xml.etree.ElementTree as ET

import jsonschema
import numpy as np
import PIL.Image
import pytest
from pycocotools import coco as coco_api
from pycocotools import mask as mask_utils

from mtal_jax.analysis import overlays
from mtal_jax.export import brush_rle, coco, disagreement, label_studio
from mtal_jax.scores import consistency
from tests import fixtures

# ----------------------------------------------------------------------------- brush RLE


def test_brush_rle_hand_made_vector():
    # 1 x 2 mask [0, 1] -> RGBA values 0,0,0,0,255,255,255,255: two repeat runs of 4.
    bits = (
        format(8, "032b")  # value count
        + "00111"  # word size 8
        + "0010" + "0011" + "0111" + "1111"  # run-length fields 3, 4, 8, 16 bits
        + "1" + "00" + "011" + "00000000"  # repeat 4 x 0
        + "1" + "00" + "011" + "11111111"  # repeat 4 x 255
    )  # fmt: skip
    bits += "0" * (-len(bits) % 8)
    expected = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    assert brush_rle.encode(np.array([[False, True]])) == expected
    np.testing.assert_array_equal(brush_rle.decode(expected, 1, 2), [[False, True]])


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (37, 61), (300, 300)])
def test_brush_rle_round_trip(shape):
    rng = np.random.default_rng(shape[0])
    for mask in (
        rng.random(shape) > 0.5,
        np.ones(shape, bool),  # one run; 300 x 300 x 4 values > 2**16 splits it
        np.zeros(shape, bool),
        np.pad(np.ones((1, 1), bool), [(0, shape[0] - 1), (shape[1] - 1, 0)]),
    ):
        rle = brush_rle.encode(mask)
        assert all(0 <= v <= 255 for v in rle)
        np.testing.assert_array_equal(brush_rle.decode(rle, *shape), mask)


def test_brush_rle_errors():
    with pytest.raises(ValueError, match="2-D"):
        brush_rle.encode(np.zeros(4, bool))
    rle = brush_rle.encode(np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="expected"):
        brush_rle.decode(rle, 3, 3)
    with pytest.raises(ValueError, match="truncated"):
        brush_rle.decode(rle[:6], 2, 3)


# ----------------------------------------------------------------------------- hand-made case
# 8 x 8 grid, classes 0 road, 1 car, 2 person; detection classes (car, person) -> (1, 2).
DET_TO_SEG = np.array([1, 2])


def _hand_made():
    seg_labels = np.zeros((8, 8), int)
    seg_labels[1:4, 1:4] = 1  # car segmented in the top-left box ...
    seg_labels[1, 1] = 0  # ... except one road pixel -> S_loc of box 0 = 1/9
    seg_labels[5:7, 5:7] = 1  # car segmented where a *person* box sits -> S_loc of box 1 = 1
    seg_labels[6, 0:2] = 2  # a person outside every box: S_seg pixels
    seg_probs = np.eye(3)[seg_labels].astype(np.float32) * 0.9 + 0.1 / 3
    boxes = np.array([[1, 1, 4, 4], [5, 5, 7, 7], [0, 0, 1, 1], [0, 0, 0, 0]], np.float32)
    masks = np.zeros((4, 8, 8), bool)
    masks[0, 1:4, 1:4] = True
    masks[1, 5:7, 5:7] = True  # masks[2] stays empty: S_loc = 1 with no pixel
    det_probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.5, 0.5]], np.float32)
    valid = np.array([True, True, True, False])
    return seg_labels, seg_probs, boxes, masks, det_probs, valid


def test_disagreement_map_matches_score_components(tmp_path):
    seg_labels, seg_probs, boxes, masks, det_probs, valid = _hand_made()
    out = consistency.consistency_scores(
        seg_probs[None], masks[None], det_probs[None], valid[None], DET_TO_SEG
    )
    classes = DET_TO_SEG[det_probs.argmax(-1)]
    code_map = overlays.disagreement_codes(seg_labels, masks, classes, valid, DET_TO_SEG)
    loc, seg = disagreement.component_fractions(code_map, masks, valid)
    np.testing.assert_allclose(loc, np.asarray(out.s_loc[0]), atol=1e-6)
    np.testing.assert_allclose(seg, float(out.s_seg[0]), atol=1e-6)
    assert np.isclose(loc[0], 1 / 9) and loc[1] == 1.0 and loc[2] == 1.0 and loc[3] == 0.0
    assert np.isclose(seg, 2 / (64 - 9 - 4))
    assert code_map[1, 1] == disagreement.LOC_DISAGREE and code_map[2, 2] == disagreement.AGREE
    assert code_map[6, 0] == disagreement.SEG_DISAGREE and code_map[0, 7] == 0

    # Drawn at 4x (input 32 x 32, boxes in input pixels): every input pixel shows its cell.
    image = np.full((32, 32, 3), 100, np.uint8)
    drawn = disagreement.render(image, code_map, boxes * 4, valid, masks, alpha=1.0)
    path = str(tmp_path / "x_disagreement.png")
    PIL.Image.fromarray(drawn).save(path)
    back = np.asarray(PIL.Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(back, drawn)
    assert tuple(back[5, 5]) == disagreement.COLOURS[disagreement.LOC_DISAGREE]  # cell (1, 1)
    assert tuple(back[9, 9]) == disagreement.COLOURS[disagreement.AGREE]  # cell (2, 2)
    assert tuple(back[25, 1]) == disagreement.COLOURS[disagreement.SEG_DISAGREE]  # cell (6, 0)
    assert tuple(back[2, 30]) == (100, 100, 100)  # cell (0, 7): nothing to show
    assert tuple(back[4, 10]) == (255, 255, 255)  # box 0's outline (top edge, row 4)
    assert tuple(back[0, 2]) == disagreement.COLOURS[disagreement.LOC_DISAGREE]  # empty BoxMask
    red = (back == disagreement.COLOURS[disagreement.LOC_DISAGREE]).all(-1)
    assert red[5:8, 5:8].all() and red[21:27, 21:27].all()  # inside the white outlines
    assert not red[8:16, 8:16].any()  # the agreeing rest of box 0


# ----------------------------------------------------------------------------- Label Studio
DET_CLASSES = ["car", "person"]
SEG_CLASSES = ["road", "car", "person"]

_RESULT_COMMON = {
    "id": {"type": "string", "minLength": 1},
    "from_name": {"type": "string"},
    "to_name": {"type": "string"},
    "original_width": {"type": "integer", "minimum": 1},
    "original_height": {"type": "integer", "minimum": 1},
    "image_rotation": {"type": "number"},
    "score": {"type": "number", "minimum": 0, "maximum": 1},
}
_PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
# Label Studio's import format for image tasks with pre-annotations, from its docs
# ("Import pre-annotated data", the RectangleLabels and BrushLabels tag references).
# Written here because label-studio-sdk (2.1.2, whose LabelInterface validates tasks)
# does not install cleanly: through opencv-python-headless 4.12 it needs numpy < 2.3 and
# would downgrade the pinned numpy 2.4.6.
LABEL_STUDIO_TASK_SCHEMA = {
    "type": "object",
    "required": ["data", "predictions"],
    "properties": {
        "data": {
            "type": "object",
            "required": ["image"],
            "properties": {"image": {"type": "string", "minLength": 1}},
        },
        "predictions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["result"],
                "properties": {
                    "model_version": {"type": "string"},
                    "score": {"type": "number"},
                    "result": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                {
                                    "type": "object",
                                    "required": ["id", "type", "from_name", "to_name", "value",
                                                 "original_width", "original_height"],
                                    "properties": dict(
                                        _RESULT_COMMON,
                                        type={"const": "rectanglelabels"},
                                        value={
                                            "type": "object",
                                            "required": ["x", "y", "width", "height",
                                                         "rectanglelabels"],
                                            "properties": {
                                                "x": _PERCENT, "y": _PERCENT, "width": _PERCENT,
                                                "height": _PERCENT, "rotation": {"type": "number"},
                                                "rectanglelabels": {
                                                    "type": "array", "minItems": 1,
                                                    "items": {"type": "string"},
                                                },
                                            },
                                        },
                                    ),
                                },
                                {
                                    "type": "object",
                                    "required": ["id", "type", "from_name", "to_name", "value",
                                                 "original_width", "original_height"],
                                    "properties": dict(
                                        _RESULT_COMMON,
                                        type={"const": "brushlabels"},
                                        value={
                                            "type": "object",
                                            "required": ["format", "rle", "brushlabels"],
                                            "properties": {
                                                "format": {"const": "rle"},
                                                "rle": {
                                                    "type": "array", "minItems": 7,
                                                    "items": {"type": "integer", "minimum": 0,
                                                              "maximum": 255},
                                                },
                                                "brushlabels": {
                                                    "type": "array", "minItems": 1,
                                                    "items": {"type": "string"},
                                                },
                                            },
                                        },
                                    ),
                                },
                            ]
                        },
                    },
                },
            },
        },
    },
}  # fmt: skip


def _item():
    seg_labels, _, boxes, masks, det_probs, valid = _hand_made()
    full = disagreement.upsample(seg_labels, 32, 32)
    return {
        "row": {"rank": 1, "index": 7, "image_id": "img 7", "score": 1.5, "s_seg": 0.04},
        "boxes": boxes * 4,
        "det_scores": np.array([0.9, 0.6, 0.4, 0.0]),
        "det_labels": det_probs.argmax(-1),
        "box_classes": DET_TO_SEG[det_probs.argmax(-1)],
        "box_valid": valid,
        "box_masks": masks,
        "s_loc": np.array([1 / 9, 1.0, 1.0, 0.0]),
        "s_cls": np.array([0.1, 0.7, 0.0, 0.0]),
        "s_box": np.array([0.2, 1.7, 1.0, 0.0]),
        "seg_labels_full": full,
        "seg_confidence_full": np.full((32, 32), 0.8, np.float32),
        "consistency": {"score": 1.5, "s_seg": 0.04},
        "file_name": "0001_img_7.png",
    }


def _check_label_studio_task(task, config_xml, seg_labels_full=None):
    jsonschema.validate(json.loads(json.dumps(task)), LABEL_STUDIO_TASK_SCHEMA)
    root = ET.fromstring(config_xml)
    controls = {
        el.get("name"): (el.tag, el.get("toName"), {lab.get("value") for lab in el})
        for el in root
        if el.tag in ("RectangleLabels", "BrushLabels")
    }
    objects = {el.get("name"): el.get("value") for el in root if el.tag == "Image"}
    for key in objects.values():
        assert key.startswith("$") and key[1:] in task["data"]
    ids = [r["id"] for p in task["predictions"] for r in p["result"]]
    assert len(ids) == len(set(ids))
    for r in task["predictions"][0]["result"]:
        tag, to_name, labels = controls[r["from_name"]]
        assert to_name == r["to_name"] and r["to_name"] in objects
        assert tag.lower() == r["type"]
        assert set(r["value"][r["type"]]) <= labels
        if r["type"] == "brushlabels" and seg_labels_full is not None:
            mask = brush_rle.decode(r["value"]["rle"], r["original_height"], r["original_width"])
            cls = SEG_CLASSES.index(r["value"]["brushlabels"][0])
            np.testing.assert_array_equal(mask, seg_labels_full == cls)


def test_label_studio_task_follows_the_import_format():
    item = _item()
    task = label_studio.task(
        item, det_classes=DET_CLASSES, seg_classes=SEG_CLASSES,
        image_url="/data/local-files/?d=x/images/a.png", map_url="m.png", model_version="v",
    )  # fmt: skip
    config_xml = label_studio.labeling_config(DET_CLASSES, SEG_CLASSES)
    _check_label_studio_task(task, config_xml, item["seg_labels_full"])
    results = task["predictions"][0]["result"]
    rects = [r for r in results if r["type"] == "rectanglelabels"]
    assert len(rects) == 3  # the valid boxes
    v = rects[0]["value"]
    assert (v["x"], v["y"], v["width"], v["height"]) == (12.5, 12.5, 37.5, 37.5)
    assert v["rectanglelabels"] == ["car"] and rects[0]["score"] == pytest.approx(0.9)
    assert rects[1]["value"]["rectanglelabels"] == ["person"]
    brushes = {r["value"]["brushlabels"][0] for r in results if r["type"] == "brushlabels"}
    assert brushes == {"road", "car", "person"}
    data = task["data"]
    assert data["score"] == 1.5 and data["rank"] == 1 and data["consistency"]["s_seg"] == 0.04
    assert [b["s_loc"] for b in data["boxes"]] == pytest.approx([1 / 9, 1.0, 1.0])
    assert [b["result_id"] for b in data["boxes"]] == [r["id"] for r in rects]


def test_labeling_config_escapes_class_names():
    xml = label_studio.labeling_config(['a "b"', "c<d"], ["e&f"])
    root = ET.fromstring(xml)
    labels = [lab.get("value") for el in root for lab in el]
    assert labels == ['a "b"', "c<d", "e&f"]


# ----------------------------------------------------------------------------- COCO


def test_coco_rle_matches_pycocotools():
    rng = np.random.default_rng(0)
    for mask in (rng.random((5, 7)) > 0.5, np.ones((3, 4), bool), np.zeros((2, 2), bool)):
        rle = coco.rle_encode(mask)
        compressed = mask_utils.frPyObjects(rle, *rle["size"])
        np.testing.assert_array_equal(mask_utils.decode(compressed), mask)


def test_coco_instances_round_trip_through_pycocotools(tmp_path):
    item = _item()
    doc = coco.instances([item], seg_classes=SEG_CLASSES, det_to_seg=DET_TO_SEG, description="test")
    path = tmp_path / "annotations" / "instances_default.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    api = coco_api.COCO(str(path))
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == SEG_CLASSES
    img = api.loadImgs([1])[0]
    assert (img["width"], img["height"], img["file_name"]) == (32, 32, "0001_img_7.png")
    anns = api.loadAnns(api.getAnnIds(imgIds=[1]))
    # per detection: its box alone (empty segmentation: a rectangle in CVAT), then its
    # BoxMask as a mask of its own when it is not empty
    boxes = [a for a in anns if not a["iscrowd"] and a["segmentation"] == []]
    masks = [a for a in anns if not a["iscrowd"] and a["segmentation"]]
    valid = np.flatnonzero(item["box_valid"])
    assert len(boxes) == 3
    expected = [disagreement.upsample(item["box_masks"][k], 32, 32) for k in valid]
    assert len(masks) == sum(m.any() for m in expected) == 2
    for a, k in zip(boxes, valid):
        x1, y1, x2, y2 = (float(v) for v in item["boxes"][k])
        assert a["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
        assert a["category_id"] == item["box_classes"][k] + 1
    for a, want, k in zip(masks, [m for m in expected if m.any()], valid):
        np.testing.assert_array_equal(api.annToMask(a).astype(bool), want)
        assert a["category_id"] == item["box_classes"][k] + 1
    covered = np.zeros((32, 32), bool)
    for a in masks:
        covered |= api.annToMask(a).astype(bool)
    crowd = {a["category_id"] - 1: api.annToMask(a).astype(bool) for a in anns if a["iscrowd"]}
    for c, mask in crowd.items():
        np.testing.assert_array_equal(mask, (item["seg_labels_full"] == c) & ~covered)
    # The crowd masks and the instance masks together tile the image.
    union = covered.copy()
    for mask in crowd.values():
        assert not (union & mask).any()
        union |= mask
    assert union.all()


def test_an_item_in_its_original_frame_maps_every_pixel_to_the_content():
    # original 60 x 100 in a 32 x 32 input: scale 0.32, content 19 x 32 (13 rows of padding)
    from mtal_jax.export import frame, predictions

    item = _item()
    seg = np.zeros((32, 32), np.int32)
    seg[:19] = 2  # the content; the padding rows hold class 0
    conf = np.where(seg == 2, 0.9, 0.1).astype(np.float32)
    grid_masks = np.zeros((4, 8, 8), bool)
    grid_masks[0, :5, :4] = True  # rows 0-4 of the grid: the content (19 / 4 = 4.75 rows)
    item.update(
        seg_labels_full=seg, seg_confidence_full=conf, box_masks=grid_masks,
        seg_labels=np.zeros((8, 8), np.int32),
        boxes=np.array([[0, 0, 16, 19], [8, 4, 24, 12], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32),
    )  # fmt: skip
    original = np.full((60, 100, 3), 7, np.uint8)
    out = predictions.in_original_frame(item, original, (19, 32), (32, 32))
    assert out["image"] is not None and out["image"].shape == (60, 100, 3)
    assert frame.size(out) == (60, 100)
    full = frame.full(out, "seg_labels_full")
    assert full.shape == (60, 100) and (full == 2).all()  # the padding is never reached
    assert frame.full(out, "seg_confidence_full") == pytest.approx(0.9)
    np.testing.assert_allclose(out["boxes"][0], [0, 0, 50, 60])  # x * 100 / 32, y * 60 / 19
    np.testing.assert_allclose(out["boxes"][1], [25, 12.6316, 75, 37.8947], rtol=1e-4)
    mask = frame.from_grid(out, grid_masks[0])
    assert mask.shape == (60, 100) and mask.all(axis=0)[:50].all() and not mask[:, 50:].any()
    # the writers use the original size
    doc = coco.instances([out], seg_classes=SEG_CLASSES, det_to_seg=DET_TO_SEG, description="t")
    assert (doc["images"][0]["width"], doc["images"][0]["height"]) == (100, 60)
    boxes = [a for a in doc["annotations"] if a["segmentation"] == []]
    assert boxes[0]["bbox"] == pytest.approx([0, 0, 50, 60])
    task = label_studio.task(
        out, det_classes=DET_CLASSES, seg_classes=SEG_CLASSES, image_url="i", map_url="m",
        model_version="v",
    )  # fmt: skip
    rect = task["predictions"][0]["result"][0]
    assert (rect["original_width"], rect["original_height"]) == (100, 60)
    assert rect["value"]["width"] == pytest.approx(50.0)


def _probs_item(original_hw, content_hw, input_hw, grid_hw, seed=0):
    """An export item with random crop probabilities, boxes and windows (grid cells)."""
    from mtal_jax.export import frame
    from mtal_jax.scores import box_crops, boxmask

    rng = np.random.default_rng(seed)
    gh, gw = grid_hw
    k = 5
    x1, y1 = rng.uniform(0, gw - 2, k), rng.uniform(0, gh - 2, k)
    boxes = np.stack(
        [x1, y1, x1 + rng.uniform(0.3, gw - x1), y1 + rng.uniform(0.3, gh - y1)], 1
    ).astype(np.float32)
    windows = box_crops.crop_windows(boxes, context_margin=0.1, image_hw=grid_hw)
    probs = rng.uniform(0, 1, (k, 16, 16)).astype(np.float32)
    item = {
        "frame": frame.make(original_hw, content_hw, input_hw, grid_hw),
        "box_class_probs": probs, "box_windows_grid": np.asarray(windows),
        "boxes_grid": boxes, "box_mask_tau": 0.5,
        "box_masks": np.asarray(boxmask.box_masks_from_class_probs(
            probs, windows, boxes, tau=0.5, out_hw=grid_hw)),
    }  # fmt: skip
    return item, probs, np.asarray(windows), boxes


def test_exported_box_masks_follow_the_boxmask_rule_at_every_pixel():
    from mtal_jax.export import frame
    from mtal_jax.scores import boxmask

    # the exported image is the grid itself: the grid BoxMasks, exactly
    item, *_ = _probs_item((8, 12), (32, 48), (32, 48), (8, 12))
    for k in range(5):
        np.testing.assert_array_equal(frame.box_mask(item, k), item["box_masks"][k])
    # 4 pixels per grid cell: the library's rule on a 4x finer grid (boxes, windows x 4)
    item, probs, windows, boxes = _probs_item((32, 48), (32, 48), (32, 48), (8, 12), seed=1)
    fine = np.asarray(boxmask.box_masks_from_class_probs(
        probs, windows * 4, boxes * 4, tau=0.5, out_hw=(32, 48)))  # fmt: skip
    for k in range(5):
        got = frame.box_mask(item, k)
        assert got.shape == (32, 48)
        np.testing.assert_array_equal(got, fine[k])
    # an original of 60 x 100 in a 32 x 32 input (content 19 x 32): the rule at the
    # original's pixel centres, mapped through the content; nothing from the padding
    item, probs, windows, boxes = _probs_item((60, 100), (19, 32), (32, 32), (8, 8), seed=2)
    to_grid = np.array([32 * 8 / (100 * 32), 19 * 8 / (60 * 32)] * 2)
    np.testing.assert_allclose(item["frame"]["to_grid"], to_grid)
    for k in range(5):
        got = frame.box_mask(item, k)
        assert got.shape == (60, 100)
        want = np.asarray(boxmask.box_masks_from_class_probs(
            probs[k], windows[k] / to_grid, boxes[k] / to_grid, tau=0.5, out_hw=(60, 100)))  # fmt: skip
        assert (got != want).mean() < 1e-3  # float32 rounding at the thresholds only
        assert not got[np.arange(60) * 19 / 60 * 8 / 32 >= 19 * 8 / 32].any()


def test_exported_box_masks_have_smooth_edges():
    # one box over a diagonal probability ramp, exported at 8 pixels per grid cell: the
    # grid BoxMask read by nearest neighbour has stair steps a cell (8 columns) wide, the
    # exported-pixel one follows the ramp
    from mtal_jax.export import frame
    from mtal_jax.scores import boxmask

    item, *_ = _probs_item((64, 64), (32, 32), (32, 32), (8, 8))
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    probs = np.array(item["box_class_probs"])
    probs[0] = (xx + yy) / 2  # the edge at tau 0.5 runs along the anti-diagonal
    box = np.array([[0, 0, 8, 8]] + [[0, 0, 1, 1]] * 4, np.float32)
    grid = np.asarray(boxmask.box_masks_from_class_probs(probs, box, box, tau=0.5, out_hw=(8, 8)))
    item.update(box_class_probs=probs, box_windows_grid=box, boxes_grid=box, box_masks=grid)
    stairs = frame.from_grid(item, grid[0]).sum(axis=1)  # pixels inside, per row
    smooth = frame.box_mask(item, 0).sum(axis=1)
    assert np.abs(np.diff(stairs)).max() == 8
    assert np.abs(np.diff(smooth)).max() <= 2
    assert np.abs(smooth - stairs).max() <= 8  # the same mask, up to a cell


# ----------------------------------------------------------------------------- select.py end to end


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return fixtures.train_tiny_checkpoint(tmp_path_factory)


def test_select_exports_label_studio_and_coco(trained, tmp_path):
    from mtal_jax.al import select_cli

    config, run_dir, setup = trained
    # A low detection threshold, so the tiny model's boxes are exported and scored.
    config = config.copy_and_resolve_references()
    config.al.strategy.kwargs = {"ours": {"det_score_threshold": 0.0}}
    out = str(tmp_path / "ls")
    rows = select_cli.run(
        config, strategy="ours", checkpoint=run_dir, budget=3, output=out,
        fmt="label-studio", progress=False,
    )  # fmt: skip
    names = sorted(os.listdir(out))
    assert names == sorted(
        ["README.md", "disagreement", "images", "labeling_config.xml", "selection.json",
         "tasks.json"]
    )  # fmt: skip
    with open(os.path.join(out, "tasks.json")) as f:
        tasks = json.load(f)
    with open(os.path.join(out, "labeling_config.xml")) as f:
        config_xml = f.read()
    assert [t["data"]["rank"] for t in tasks] == [1, 2, 3]
    # threshold 0: every selected image has decoded boxes, so the per-box checks below run
    assert all(t["data"]["boxes"] for t in tasks)
    h, w = setup.spec.image_hw
    for task, row in zip(tasks, rows):
        _check_label_studio_task(task, config_xml)
        data = task["data"]
        assert data["image_id"] == row["image_id"]
        assert data["image"] == f"/data/local-files/?d=ls/images/{data['image'].split('/')[-1]}"
        image = np.asarray(
            PIL.Image.open(os.path.join(out, "images", data["image"].split("/")[-1]))
        )
        assert image.shape == (h, w, 3)
        map_name = data["disagreement"].split("/")[-1]
        assert "disagreement" in map_name
        assert PIL.Image.open(os.path.join(out, "disagreement", map_name)).size == (w, h)
        # The export recomputes the scores through the selection's code path: same values.
        for key in ("score", "s_seg", "s_loc_max", "s_cls_max"):
            assert data["consistency"][key] == pytest.approx(row[key], abs=1e-5)
        assert max(b["s_loc"] for b in data["boxes"]) == pytest.approx(row["s_loc_max"])
        brushes = [r for r in task["predictions"][0]["result"] if r["type"] == "brushlabels"]
        union = sum(
            brush_rle.decode(r["value"]["rle"], r["original_height"], r["original_width"])
            for r in brushes
        )
        assert union.shape == (h, w) and (union == 1).all()  # one class per pixel
    # Bad output folders fail before any scoring.
    with pytest.raises(ValueError, match="not empty"):
        select_cli.run(config, strategy="ours", checkpoint=run_dir, budget=3, output=out,
                       fmt="coco", progress=False)  # fmt: skip

    out = str(tmp_path / "coco")
    rows = select_cli.run(
        config, strategy="random", checkpoint=run_dir, budget=2, output=out, fmt="coco",
        progress=False,
    )  # fmt: skip
    assert sorted(os.listdir(out)) == sorted(
        ["README.md", "annotations", "cvat_labels.json", "disagreement", "images",
         "selection.json"]
    )  # fmt: skip
    api = coco_api.COCO(os.path.join(out, "annotations", "instances_default.json"))
    assert [c["name"] for c in api.loadCats(api.getCatIds())] == list(setup.dataset.seg_classes)
    # CVAT's raw labels: one per category, each declaring the score attribute it keeps
    with open(os.path.join(out, "cvat_labels.json")) as f:
        labels = json.load(f)
    assert [lab["name"] for lab in labels] == list(setup.dataset.seg_classes)
    for lab in labels:
        assert lab["attributes"] == [coco.SCORE_ATTRIBUTE] and lab["color"].startswith("#")
        assert len(lab["color"]) == 7 and lab["type"] == "any"
    files = sorted(img["file_name"] for img in api.loadImgs(api.getImgIds()))
    assert files == sorted(os.listdir(os.path.join(out, "images")))
    for img in api.loadImgs(api.getImgIds()):
        anns = api.loadAnns(api.getAnnIds(imgIds=[img["id"]]))
        assert anns  # at least the segmentation of one class
        for a in anns:
            if a["segmentation"] == []:  # a detection's box
                x, y, bw, bh = a["bbox"]
                assert 0 <= x <= x + bw <= img["width"] and 0 <= y <= y + bh <= img["height"]
                continue
            mask = api.annToMask(a)
            assert mask.shape == (img["height"], img["width"]) and mask.any()
    with open(os.path.join(out, "selection.json")) as f:
        selection = json.load(f)
    assert [s["image_id"] for s in selection["selected"]] == [r["image_id"] for r in rows]
    assert all(len(os.listdir(os.path.join(out, "disagreement"))) == 2 for _ in [0])
