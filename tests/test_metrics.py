"""Tests of mtal_jax.metrics (and the COCO mAP of mtal_jax.coco_map) against references."""

import contextlib
import io
import math

import chex
import jax
import numpy as np
import pytest
from pycocotools import coco, cocoeval

from mtal_jax import metrics

# ---------------------------------------------------------------------- COCO reference


def _coco_reference(predictions, ground_truths, num_classes):
    """pycocotools COCOeval on in-memory data: (stats[0], stats[1], per-class AP [C])."""
    with contextlib.redirect_stdout(io.StringIO()):
        annotations = []
        for i, gt in enumerate(ground_truths):
            for key, crowd in (("", 0), ("crowd_", 1)):
                boxes = np.asarray(gt.get(key + "boxes", ()), np.float64).reshape(-1, 4)
                for box, label in zip(boxes, gt.get(key + "labels", ())):
                    w, h = box[2] - box[0], box[3] - box[1]
                    annotations.append(
                        {
                            "id": len(annotations) + 1,  # COCOeval: gt id 0 is "unmatched"
                            "image_id": i + 1,
                            "category_id": int(label) + 1,
                            "bbox": [box[0], box[1], w, h],
                            "area": w * h,
                            "iscrowd": crowd,
                        }
                    )
        gt_api = coco.COCO()
        gt_api.dataset = {
            "images": [{"id": i + 1} for i in range(len(ground_truths))],
            "annotations": annotations,
            "categories": [{"id": c + 1} for c in range(num_classes)],
        }
        gt_api.createIndex()
        results = []
        for i, pred in enumerate(predictions):
            boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)
            for box, score, label in zip(boxes, pred["scores"], pred["labels"]):
                results.append(
                    {
                        "image_id": i + 1,
                        "category_id": int(label) + 1,
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                        "score": float(score),
                    }
                )
        evaluator = cocoeval.COCOeval(gt_api, gt_api.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [T, R, C], area all, 100 dets
    per_class = np.where(precision[0, 0] > -1, precision.mean(axis=(0, 1)), np.nan)
    return evaluator.stats[0], evaluator.stats[1], per_class


def _random_split(rng, num_images, num_classes, *, integer=False, crowded=False):
    """Random ground truth and noisy predictions derived from it (plus false positives)."""
    predictions, ground_truths = [], []
    for _ in range(num_images):
        m = int(rng.integers(0, 8))
        xy = rng.uniform(0, 100, (m, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 40, (m, 2))], axis=1)
        if integer:  # exact IoU values on the thresholds (e.g. 0.5)
            boxes = np.round(boxes)
        labels = rng.integers(0, num_classes, m)
        ground_truths.append({"boxes": boxes, "labels": labels})
        n = 150 if crowded and rng.random() < 0.5 else int(rng.integers(0, 25))
        if m:
            source = rng.integers(0, m, n)
            pred_boxes = boxes[source] + rng.normal(0, 3, (n, 4))
            noise = rng.integers(0, num_classes, n)
            pred_labels = np.where(rng.random(n) < 0.8, labels[source], noise)
        else:
            pred_boxes = rng.uniform(0, 100, (n, 4))
            pred_labels = rng.integers(0, num_classes, n)
        pred_boxes[:, 2:] = np.maximum(pred_boxes[:, 2:], pred_boxes[:, :2] + 1)
        scores = rng.random(n)
        if integer:
            pred_boxes, scores = np.round(pred_boxes), np.round(scores, 1)  # many score ties
        predictions.append({"boxes": pred_boxes, "scores": scores, "labels": pred_labels})
    return predictions, ground_truths


def _add_crowds(rng, predictions, ground_truths, num_classes):
    """Adds crowd regions to some images: around some of the predictions (so detections
    fall inside, partly or wholly), over some ground truth, and at random."""
    for pred, gt in zip(predictions, ground_truths):
        k = int(rng.integers(0, 4))
        boxes, labels = [], []
        for _ in range(k):
            kind = rng.integers(0, 3)
            if kind == 0 and len(pred["labels"]):
                j = int(rng.integers(0, len(pred["labels"])))
                box = np.asarray(pred["boxes"][j], np.float64) + rng.uniform(-15, 15, 4)
                label = int(pred["labels"][j])
            elif kind == 1 and len(gt["labels"]):
                j = int(rng.integers(0, len(gt["labels"])))
                box = np.asarray(gt["boxes"][j], np.float64) + rng.uniform(-5, 5, 4)
                label = int(gt["labels"][j])
            else:
                xy = rng.uniform(0, 100, 2)
                box = np.concatenate([xy, xy + rng.uniform(10, 60, 2)])
                label = int(rng.integers(0, num_classes))
            box[2:] = np.maximum(box[2:], box[:2] + 1)
            boxes.append(box)
            labels.append(label)
        gt["crowd_boxes"] = np.asarray(boxes, np.float64).reshape(-1, 4)
        gt["crowd_labels"] = np.asarray(labels, np.int64)


def _assert_matches_coco(predictions, ground_truths, num_classes):
    result = metrics.detection_map(predictions, ground_truths, num_classes)
    ref_map, ref_ap50, ref_per_class = _coco_reference(predictions, ground_truths, num_classes)
    assert abs(result["map"] - ref_map) < 1e-9
    assert abs(result["ap50"] - ref_ap50) < 1e-9
    np.testing.assert_allclose(result["per_class_ap"], ref_per_class, atol=1e-9)
    assert len(result["per_class_ap50"]) == num_classes
    return result


@pytest.mark.parametrize("seed", range(20))
def test_detection_map_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(1, 6))
    predictions, ground_truths = _random_split(
        rng,
        num_images=int(rng.integers(1, 12)),
        num_classes=num_classes,
        integer=seed % 2 == 1,
        crowded=seed % 5 == 0,
    )
    if not any(len(p["labels"]) for p in predictions):  # loadRes cannot take no results
        predictions[0] = {"boxes": [[0.0, 0.0, 5.0, 5.0]], "scores": [0.5], "labels": [0]}
    _assert_matches_coco(predictions, ground_truths, num_classes)


@pytest.mark.parametrize("seed", range(12))
def test_detection_map_with_crowd_regions_matches_pycocotools(seed):
    rng = np.random.default_rng(100 + seed)
    num_classes = int(rng.integers(1, 4))
    predictions, ground_truths = _random_split(
        rng, num_images=int(rng.integers(1, 10)), num_classes=num_classes, integer=seed % 2 == 1
    )
    if not any(len(p["labels"]) for p in predictions):
        predictions[0] = {"boxes": [[0.0, 0.0, 5.0, 5.0]], "scores": [0.5], "labels": [0]}
    _add_crowds(rng, predictions, ground_truths, num_classes)
    result = _assert_matches_coco(predictions, ground_truths, num_classes)
    without = metrics.detection_map(
        predictions, [{k: g[k] for k in ("boxes", "labels")} for g in ground_truths], num_classes
    )
    if any(len(g["crowd_labels"]) for g in ground_truths) and not math.isnan(result["map"]):
        assert result["map"] >= without["map"] - 1e-12  # ignoring false positives only helps


def test_crowd_region_hand_computed():
    """One ground truth found at score 0.9; a false positive at 0.8 costs precision unless
    it lies inside a crowd region (intersection / its own area >= t), where it is ignored."""
    gt = {"boxes": np.array([[0.0, 0.0, 10.0, 10.0]]), "labels": np.array([0])}
    fp_box = [50.0, 50.0, 60.0, 60.0]  # 10 x 10
    pred = {
        "boxes": np.array([fp_box, [0.0, 0.0, 10.0, 10.0]]),
        "scores": np.array([0.9, 0.8]),
        "labels": np.array([0, 0]),
    }
    # Without a crowd: the false positive comes first, precision 1/2 at every recall.
    assert metrics.detection_map([pred], [gt], 1)["map"] == pytest.approx(0.5)
    # A crowd region covering 60 % of the false positive: ignored at t <= 0.6 (3 of 10
    # thresholds: 0.5, 0.55, 0.6), a false positive above.
    crowd = {**gt, "crowd_boxes": np.array([[54.0, 40.0, 90.0, 90.0]]), "crowd_labels": [0]}
    assert metrics.detection_map([pred], [crowd], 1)["map"] == pytest.approx(0.3 * 1 + 0.7 * 0.5)
    # Of another class, the crowd region changes nothing.
    other = {**crowd, "crowd_labels": [1]}
    assert metrics.detection_map([pred], [other], 2)["map"] == pytest.approx(0.5)
    # A class with only crowd regions has no ground truth: left out of the mean.
    only_crowd = metrics.detection_map([pred], [other], 2)
    assert math.isnan(only_crowd["per_class_ap"][1])
    _assert_matches_coco([pred], [crowd], 1)


def test_detection_map_edge_cases_match_pycocotools():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 50], [5, 5, 30, 30]], np.float64)
    ground_truths = [
        {"boxes": boxes, "labels": np.array([0, 0, 2])},  # class 1 and 3 have no ground truth
        {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)},  # image without ground truth
        {"boxes": boxes[:1], "labels": np.array([2])},  # image without predictions
    ]
    rng = np.random.default_rng(0)
    many = boxes[0] + rng.normal(0, 2, (130, 4))  # > 100 detections of one class
    predictions = [
        {
            "boxes": np.concatenate([many, boxes[1:]]),
            "scores": np.concatenate([np.full(130, 0.5), [0.5, 0.9]]),  # score ties
            "labels": np.concatenate([np.zeros(130, int), [0, 2]]),
        },
        {"boxes": boxes[:2], "scores": np.array([0.7, 0.2]), "labels": np.array([1, 3])},
        {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)},
    ]
    result = _assert_matches_coco(predictions, ground_truths, num_classes=4)
    assert math.isnan(result["per_class_ap"][1]) and math.isnan(result["per_class_ap"][3])
    assert math.isnan(result["per_class_ap50"][1])


def test_detection_map_perfect_predictions_is_one():
    rng = np.random.default_rng(1)
    _, ground_truths = _random_split(rng, num_images=6, num_classes=3)
    predictions = [
        {"boxes": g["boxes"], "scores": rng.random(len(g["labels"])), "labels": g["labels"]}
        for g in ground_truths
    ]
    result = metrics.detection_map(predictions, ground_truths, num_classes=3)
    assert result["map"] == pytest.approx(1.0) and result["ap50"] == pytest.approx(1.0)


def test_detection_map_no_predictions_is_zero_and_no_ground_truth_is_nan():
    empty_pred = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    gt = {"boxes": np.array([[0.0, 0.0, 4.0, 4.0]]), "labels": np.array([1])}
    result = metrics.detection_map([empty_pred], [gt], num_classes=2)
    assert result["map"] == 0.0 and result["ap50"] == 0.0
    assert math.isnan(result["per_class_ap"][0]) and result["per_class_ap"][1] == 0.0
    empty_gt = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}
    pred = {"boxes": gt["boxes"], "scores": np.array([0.9]), "labels": np.array([1])}
    result = metrics.detection_map([pred], [empty_gt], num_classes=2)
    assert math.isnan(result["map"]) and math.isnan(result["ap50"])
    assert math.isnan(metrics.detection_map([], [], num_classes=2)["map"])


def test_detection_map_rejects_bad_input():
    gt = {"boxes": np.zeros((1, 4)), "labels": np.array([5])}
    pred = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    with pytest.raises(ValueError, match="labels outside"):
        metrics.detection_map([pred], [gt], num_classes=2)
    with pytest.raises(ValueError, match="same images"):
        metrics.detection_map([pred, pred], [gt], num_classes=6)
    bad = {"boxes": np.zeros((2, 4)), "scores": np.zeros(1), "labels": np.zeros(2, int)}
    with pytest.raises(ValueError, match="disagree"):
        metrics.detection_map([bad], [gt], num_classes=6)
    # x2 < x1 (COCOeval drops such a detection, a false positive here) or NaN: refused
    for box in ([5, 0, 2, 4], [0, 4, 3, 1], [0, 0, float("nan"), 1]):
        inverted = {"boxes": np.array([box]), "scores": np.ones(1), "labels": np.zeros(1, int)}
        with pytest.raises(ValueError, match=r"predictions\[0\]: box 0 .* is not xyxy"):
            metrics.detection_map([inverted], [gt], num_classes=6)
    with pytest.raises(ValueError, match=r"ground_truths\[0\]: box 0"):
        metrics.detection_map([pred], [{"boxes": np.array([[3.0, 0, 1, 1]]),
                                        "labels": np.array([0])}], num_classes=6)  # fmt: skip


# ------------------------------------------------------------------------ segmentation


def _reference_confusion(pred, gt, num_classes, ignore_index=255):
    pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
    keep = (gt != ignore_index) & (gt >= 0) & (gt < num_classes)
    keep &= (pred >= 0) & (pred < num_classes)
    conf = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(conf, (gt[keep], pred[keep]), 1)
    return conf


def test_mean_iou_hand_computed():
    gt = np.array([[[0, 0, 1, 1], [2, 2, 255, 255]]])  # [1, 2, 4]
    pred = np.array([[[0, 1, 1, 1], [2, 0, 3, 0]]])
    # class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 2, gt 2, pred 3 -> 2/3;
    # class 2: tp 1, gt 2, pred 1 -> 1/2; class 3: only on ignored pixels -> absent;
    # class 4: absent from both -> NaN and left out of the mean.
    result = metrics.mean_iou(pred, gt, num_classes=5)
    np.testing.assert_allclose(result["per_class"][:3], [1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(result["per_class"][3]) and math.isnan(result["per_class"][4])
    assert result["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)


def test_mean_iou_class_only_in_prediction_counts_as_zero():
    gt = np.array([[0, 0]])
    pred = np.array([[0, 1]])
    result = metrics.mean_iou(pred, gt, num_classes=3)
    np.testing.assert_allclose(result["per_class"][:2], [0.5, 0.0])
    assert result["miou"] == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(3))
def test_confusion_matrix_jit_matches_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    num_classes = 6
    gt = rng.integers(-1, num_classes + 1, (4, 9, 7))  # includes out-of-range labels
    gt[rng.random(gt.shape) < 0.2] = 255
    pred = rng.integers(0, num_classes, gt.shape)
    valid = np.array([True, True, False, True])
    fn = jax.jit(metrics.confusion_matrix, static_argnums=(2, 3))
    conf = np.asarray(fn(pred, gt, num_classes, 255, valid))
    chex.assert_shape(conf, (num_classes, num_classes))
    np.testing.assert_array_equal(conf, _reference_confusion(pred[valid], gt[valid], num_classes))
    eager = np.asarray(metrics.confusion_matrix(pred, gt, num_classes))
    np.testing.assert_array_equal(eager, _reference_confusion(pred, gt, num_classes))


def test_accumulator_over_batches_equals_whole_split():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (6, 5, 5))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = np.where(rng.random(gt.shape) < 0.7, np.minimum(gt, 3), rng.integers(0, 4, gt.shape))
    total = np.zeros((4, 4), np.int64)
    for lo in range(0, 6, 2):
        total += np.asarray(metrics.confusion_matrix(pred[lo : lo + 2], gt[lo : lo + 2], 4))
    whole = metrics.mean_iou(pred, gt, num_classes=4)
    assert metrics.miou_from_confusion(total) == whole
    conf = _reference_confusion(pred, gt, 4)
    iou = np.diag(conf) / (conf.sum(0) + conf.sum(1) - np.diag(conf))
    assert whole["miou"] == pytest.approx(iou.mean())


def test_mdsq():
    assert metrics.mdsq(0.3, 0.6, 0.4, 0.8) == pytest.approx(0.75)
    assert metrics.mdsq(map=0.4, miou=0.8, map_full=0.4, miou_full=0.8) == pytest.approx(1.0)
    # Unequal ratios (the cases above have mAP / mAP_full == mIoU / mIoU_full, so any mean of
    # the two, or either ratio alone, gives the same value): Eq. 4 is their arithmetic mean,
    # (0.1 / 0.4 + 0.6 / 0.8) / 2 = (0.25 + 0.75) / 2; the geometric mean would give 0.433,
    # swapped references (0.1 / 0.8 + 0.6 / 0.4) / 2 = 0.8125.
    assert metrics.mdsq(0.1, 0.6, 0.4, 0.8) == pytest.approx(0.5)
    assert metrics.mdsq(map=0.3, miou=0.2, map_full=0.6, miou_full=0.8) == pytest.approx(0.375)
    assert math.isnan(metrics.mdsq(float("nan"), 0.6, 0.4, 0.8))
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"map_full must be a finite positive number"):
            metrics.mdsq(0.3, 0.6, bad, 0.8)
        with pytest.raises(ValueError, match=r"miou_full must be a finite positive number"):
            metrics.mdsq(0.3, 0.6, 0.4, bad)
