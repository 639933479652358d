"""``analysis.box_errors``: the errors of the scored boxes (Fig. 6), against hand-computed
values."""

import math

import jax
import numpy as np
import pytest

from mtal_jax.analysis import box_errors


def _inputs():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    det_boxes = np.stack([
        np.array([[0, 0, 10, 10], [20, 20, 30, 25], [50, 50, 60, 60]], np.float32),
        np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 1, 1]], np.float32),
        np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 1, 1]], np.float32),
    ])  # fmt: skip
    det_probs = np.array([
        [[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]],
        [[0.9, 0.1], [0.5, 0.5], [0.5, 0.5]],
        [[0.9, 0.1], [0.5, 0.5], [0.5, 0.5]],
    ], np.float32)  # fmt: skip
    det_valid = np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0]], bool)
    gt_boxes = np.stack([gt, gt, gt])
    gt_labels = np.array([[0, 1], [0, 1], [0, 1]], np.int32)
    gt_valid = np.array([[1, 1], [0, 0], [1, 1]], bool)  # image 1: no ground truth
    return det_boxes, det_probs, det_valid, gt_boxes, gt_labels, gt_valid


def test_hand_computed_errors():
    """Image 0: IoU 1, 0.5 and 0 -> localization (0 + 0.5 + 1) / 3; the two matched boxes
    (IoU >= 0.5) -> classification (-log 0.8 - log 0.6) / 2. Image 1: a box but no ground
    truth -> localization 1, nothing matched (classification undefined: NaN). Image 2: no
    scored box -> both undefined (NaN), not 0."""
    out = box_errors.detected_box_errors(*_inputs())
    np.testing.assert_allclose(out["loc_error"], [0.5, 1.0, np.nan], atol=1e-6)
    expected_cls = (-math.log(0.8) - math.log(0.6)) / 2
    np.testing.assert_allclose(out["cls_error"], [expected_cls, np.nan, np.nan], atol=1e-6)
    np.testing.assert_array_equal(out["num_matched"], [2, 0, 0])


def test_the_class_is_the_matched_boxes_and_jit_agrees():
    """Swapping the ground-truth labels changes only the classification error (the true
    class is the matched box's); the jitted function gives the same values."""
    inputs = list(_inputs())
    inputs[4] = inputs[4][:, ::-1].copy()  # box 0 is class 1, box 1 class 0
    out = box_errors.detected_box_errors(*inputs)
    expected_cls = (-math.log(0.2) - math.log(0.4)) / 2
    assert float(out["cls_error"][0]) == pytest.approx(expected_cls, abs=1e-6)
    assert float(out["loc_error"][0]) == pytest.approx(0.5, abs=1e-6)
    jitted = jax.jit(box_errors.detected_box_errors)(*inputs)
    for key in out:
        np.testing.assert_allclose(jitted[key], out[key], atol=1e-6)


def test_a_zero_probability_is_floored():
    """A matched box that gives its true class probability 0 has a finite error."""
    inputs = list(_inputs())
    inputs[1] = inputs[1].copy()
    inputs[1][0, 0] = [0.0, 1.0]
    out = box_errors.detected_box_errors(*inputs)
    assert np.isfinite(float(out["cls_error"][0])) and float(out["cls_error"][0]) > 5.0


def test_matching_ignores_invalid_ground_truth_and_takes_the_best_overlap():
    """An invalid ground-truth row that overlaps more is ignored; a box over two ground-truth
    boxes of different classes takes the class of the one it overlaps most; duplicate boxes
    of one object are each matched (not one-to-one)."""
    det_boxes = np.array([[[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 16, 10]]], np.float32)
    det_probs = np.array([[[0.7, 0.3], [0.6, 0.4], [0.1, 0.9]]], np.float32)
    gt_boxes = np.array([[[0, 0, 10, 10], [8, 0, 18, 10], [0, 0, 16, 10]]], np.float32)
    gt_labels = np.array([[0, 1, 0]], np.int32)
    gt_valid = np.array([[True, True, False]])  # the exact match of box 2 is padding
    out = box_errors.detected_box_errors(
        det_boxes, det_probs, np.ones((1, 3), bool), gt_boxes, gt_labels, gt_valid
    )
    # boxes 0 and 1 (duplicates) match ground truth 0 (IoU 1); box 2 [0, 16] overlaps
    # ground truth 0 by 10 / 16 = 0.625 and ground truth 1 by 8 / 18 = 0.444: class 0
    iou2 = 10 / 16
    np.testing.assert_allclose(out["loc_error"], [(0 + 0 + (1 - iou2)) / 3], atol=1e-6)
    expected = (-math.log(0.7) - math.log(0.6) - math.log(0.1)) / 3
    np.testing.assert_allclose(out["cls_error"], [expected], atol=1e-6)
    assert int(out["num_matched"][0]) == 3


def test_shapes_are_checked():
    inputs = list(_inputs())
    inputs[3] = inputs[3][:, :, :2]
    with pytest.raises(ValueError, match="gt_boxes has shape"):
        box_errors.detected_box_errors(*inputs)
