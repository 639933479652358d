"""BoxMask accuracy (paper Table II, Section IV-E): IoU of BoxMasks against the ground truth.

For every kept detection k with segmentation class c_k, inside its box b_k:
prediction = BM_k, ground truth = pixels whose centre lies in b_k and whose ground-truth
label is c_k. Ignored ground-truth pixels (``IGNORE_LABEL``) count for neither. Per class c,
intersections and unions are summed over all boxes of class c in the split; the accuracy
is the mean over classes with a non-empty union of ``I_c / U_c`` (the paper's "mIoU of the
binary masks inside detected boxes, for the box's class"). Everything is evaluated on the
segmentation output grid (h x w); the ground truth is read at each grid pixel centre
(nearest neighbour). The jittable part returns (sum, count)-style totals; the host divides
once (docs/design.md §7).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from mtal_jax import structs
from mtal_jax.ops import boxes as box_ops


def labels_on_grid(seg_labels: ArrayLike, out_hw: tuple[int, int]) -> jax.Array:
    """Ground-truth labels at the centres of an h x w grid (nearest neighbour).

    Args:
      seg_labels: [B, H, W] int labels at input resolution.
      out_hw: (h, w), static; grid pixel i covers input rows [i H / h, (i + 1) H / h).

    Returns:
      [B, h, w] int32, the label at input pixel ``floor((i + 0.5) H / h)``.
    """
    seg_labels = jnp.asarray(seg_labels, jnp.int32)
    height, width = seg_labels.shape[1:]
    h, w = out_hw
    rows = np.floor((np.arange(h) + 0.5) * height / h).astype(np.int32)
    cols = np.floor((np.arange(w) + 0.5) * width / w).astype(np.int32)
    return seg_labels[:, rows][:, :, cols]


def boxmask_iou_counts(
    box_masks: ArrayLike,
    boxes_xyxy: ArrayLike,
    seg_classes: ArrayLike,
    box_valid: ArrayLike,
    gt_labels: ArrayLike,
    num_seg_classes: int,
) -> tuple[jax.Array, jax.Array]:
    """Per-class intersection and union pixel counts of BoxMasks vs ground truth.

    Args:
      box_masks: [B, K, h, w] bool.
      boxes_xyxy: [B, K, 4] boxes in output-grid cells.
      seg_classes: [B, K] int segmentation class c_k.
      box_valid: [B, K] bool, detections that count.
      gt_labels: [B, h, w] int ground truth on the grid (``labels_on_grid``).
      num_seg_classes: C_seg, static.

    Returns:
      (intersection [C_seg] float32, union [C_seg] float32), summed over the batch.
    """
    box_masks = jnp.asarray(box_masks, bool)
    h, w = box_masks.shape[-2:]
    seg_classes = jnp.asarray(seg_classes, jnp.int32)
    gt_labels = jnp.asarray(gt_labels, jnp.int32)
    inside = box_ops.boxes_to_pixel_masks(boxes_xyxy, (h, w))  # [B, K, h, w]
    known = (gt_labels != structs.IGNORE_LABEL)[:, None]  # [B, 1, h, w]
    gt = inside & known & (gt_labels[:, None] == seg_classes[..., None, None])
    pred = box_masks & inside & known
    valid = jnp.asarray(box_valid, bool)
    inter = jnp.where(valid, jnp.sum(pred & gt, axis=(2, 3)), 0).astype(jnp.float32)  # [B, K]
    union = jnp.where(valid, jnp.sum(pred | gt, axis=(2, 3)), 0).astype(jnp.float32)
    one_hot = jax.nn.one_hot(seg_classes, num_seg_classes)  # [B, K, C_seg]
    return jnp.einsum("bk,bkc->c", inter, one_hot), jnp.einsum("bk,bkc->c", union, one_hot)


def box_counts(
    box_masks: ArrayLike, seg_classes: ArrayLike, box_valid: ArrayLike, num_seg_classes: int
) -> tuple[jax.Array, jax.Array]:
    """Per class: the kept boxes and those among them whose BoxMask is empty.

    An empty BoxMask scores S_loc = 1 by definition, whatever the segmentation says: a
    class whose boxes all come out empty is not measured by Table II's IoU (its union is
    the ground truth alone) and turns S_loc into "holds a box of that class".

    Args:
      box_masks: [B, K, h, w] bool.
      seg_classes: [B, K] int segmentation class c_k.
      box_valid: [B, K] bool, detections that count.
      num_seg_classes: C_seg, static.

    Returns:
      (boxes [C_seg] float32, empty [C_seg] float32), summed over the batch.
    """
    valid = jnp.asarray(box_valid, bool)
    empty = valid & ~jnp.any(jnp.asarray(box_masks, bool), axis=(2, 3))  # [B, K]
    one_hot = jax.nn.one_hot(jnp.asarray(seg_classes, jnp.int32), num_seg_classes)
    count = lambda m: jnp.einsum("bk,bkc->c", m.astype(jnp.float32), one_hot)
    return count(valid), count(empty)


def miou_from_counts(intersection: ArrayLike, union: ArrayLike) -> tuple[float, np.ndarray]:
    """Host reducer: mean IoU over classes with a non-empty union.

    Args:
      intersection: [C] summed intersections.
      union: [C] summed unions.

    Returns:
      (mIoU in [0, 1] or NaN when every union is empty, per-class IoU [C] with NaN for
      classes without boxes).
    """
    intersection = np.asarray(intersection, np.float64)
    union = np.asarray(union, np.float64)
    per_class = np.where(union > 0, intersection / np.maximum(union, 1), np.nan)
    present = union > 0
    return (float(np.mean(per_class[present])) if present.any() else float("nan")), per_class
