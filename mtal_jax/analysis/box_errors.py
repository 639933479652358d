"""The errors of the detected boxes of each image (pure): what the paper's Fig. 6 correlates
S_cls and S_loc with ("the classification and localization error in the detected boxes",
paper Sec. IV-E), beside the training losses, which CenterNet defines on every heat-map
cell rather than on the boxes the scores read.

Each scored box is matched to the ground-truth box it overlaps most (any class):

* localization error: ``1 - IoU`` with that box (1 when it overlaps none);
* classification error: the cross-entropy ``-log p(c)`` of the box's class distribution at
  the matched box's class ``c``, for boxes whose IoU reaches ``iou_threshold`` (a box that
  matches nothing has no true class to be wrong about; its error is localization's).

An image's error is the mean over its scored boxes (over its matched boxes for
classification), NaN without any: S_loc and S_cls are 0 without a scored box, and a 0 error
there would add a block of images that both columns rank lowest, a correlation the scores
do not earn. The matching is not one-to-one: duplicate boxes of one object are each
matched to it, as each is scored.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtal_jax.ops import boxes as boxes_lib


def detected_box_errors(
    det_boxes: jax.Array,
    det_probs: jax.Array,
    det_valid: jax.Array,
    gt_boxes: jax.Array,
    gt_labels: jax.Array,
    gt_valid: jax.Array,
    *,
    iou_threshold: float = 0.5,
    eps: float = 1e-7,
) -> dict[str, jax.Array]:
    """Per-image classification and localization errors of the scored boxes.

    Args:
      det_boxes: [B, K, 4] float xyxy, input pixels (``Detections.boxes``).
      det_probs: [B, K, C_det] float class distribution of each box (rows sum to 1).
      det_valid: [B, K] bool, the boxes the scores read (the BoxMask extra's ``box_valid``).
      gt_boxes: [B, M, 4] float xyxy, input pixels (``Batch.boxes``).
      gt_labels: [B, M] int detection class ids.
      gt_valid: [B, M] bool, real ground-truth boxes.
      iou_threshold: IoU from which a box is matched (its class is then known).
      eps: floor of a probability inside the log.

    Returns:
      ``cls_error`` [B] float32 (mean cross-entropy over matched scored boxes, NaN without
      one), ``loc_error`` [B] float32 (mean ``1 - IoU`` over scored boxes, NaN without one),
      ``num_matched`` [B] int32.
    """
    b, k = det_valid.shape
    m = gt_valid.shape[1]
    shapes = {
        "det_boxes": (det_boxes.shape, (b, k, 4)),
        "det_probs": (det_probs.shape[:2], (b, k)),
        "gt_boxes": (gt_boxes.shape, (b, m, 4)),
        "gt_labels": (gt_labels.shape, (b, m)),
    }
    for name, (got, want) in shapes.items():
        if tuple(got) != want:
            raise ValueError(f"detected_box_errors: {name} has shape {tuple(got)}, want {want}")
    iou = boxes_lib.pairwise_iou(det_boxes, gt_boxes)  # [B, K, M]
    iou = jnp.where(gt_valid[:, None, :], iou, 0.0)
    best = jnp.argmax(iou, axis=-1)  # [B, K]
    best_iou = jnp.take_along_axis(iou, best[..., None], axis=-1)[..., 0]
    valid = jnp.asarray(det_valid, bool)
    matched = valid & (best_iou >= iou_threshold)
    label = jnp.take_along_axis(jnp.asarray(gt_labels, jnp.int32), best, axis=-1)  # [B, K]
    p_true = jnp.take_along_axis(det_probs, label[..., None], axis=-1)[..., 0]
    ce = -jnp.log(jnp.maximum(p_true, eps))

    def mean_over(values, mask):
        n = jnp.sum(mask, axis=-1)
        total = jnp.sum(jnp.where(mask, values, 0.0), axis=-1)
        return jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan).astype(jnp.float32)

    return {
        "cls_error": mean_over(ce, matched),
        "loc_error": mean_over(1.0 - best_iou, valid),
        "num_matched": jnp.sum(matched, axis=-1).astype(jnp.int32),
    }
