"""Evaluation metrics of the paper (paper IV-A): mAP, mIoU, mDSQ and label efficiency.

Split between device and host as in docs/design.md §7:

- ``confusion_matrix`` is pure ``jnp`` and jit-able: the jitted eval step returns one
  [K, K] count matrix per batch (the segmentation "sum"), never the predictions.
- the host sums those matrices over the split and ``miou_from_confusion`` finishes mIoU
  once per split.
- ``detection_map`` (COCO mAP, implemented in ``mtal_jax.coco_map``) runs on the host
  over the decoded detections of the whole split.
- ``mdsq`` combines both into the multi-task score of Eq. 4, and ``label_efficiency``
  reads the labeled fraction at which an mDSQ curve reaches a level (host side).

Examples:
  >>> import numpy as np
  >>> gt = np.array([[0, 1], [1, 255]])
  >>> pred = np.array([[0, 1], [0, 1]])
  >>> result = mean_iou(pred, gt, num_classes=3)
  >>> round(result["miou"], 4), [round(v, 4) for v in result["per_class"][:2]]
  (0.5, [0.5, 0.5])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtal_jax import coco_map

# Re-exported: the mAP implementation lives in its own module (one concept per module).
detection_map = coco_map.detection_map


def confusion_matrix(
    pred_labels: jax.typing.ArrayLike,
    gt_labels: jax.typing.ArrayLike,
    num_classes: int,
    ignore_index: int = 255,
    valid: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """Segmentation confusion matrix of one batch (pure, jit-able with static ``num_classes``).

    A pixel is counted when its ground truth is in [0, K) (so ``ignore_index`` and any
    other out-of-range label are skipped), its prediction is in [0, K), and its example
    is valid.

    Args:
      pred_labels: [B, H, W] (or any shape) int predicted class ids.
      gt_labels: same shape as ``pred_labels``, int ground-truth ids in [0, K) or
        ``ignore_index``.
      num_classes: K, number of segmentation classes (static under jit).
      ignore_index: ground-truth label of unsupervised pixels.
      valid: optional [B] bool, False for padding examples of the last batch; it masks
        the leading axis.

    Returns:
      [K, K] int32 counts, rows = ground truth, columns = prediction.
    """
    pred_labels = jnp.asarray(pred_labels).astype(jnp.int32)
    gt_labels = jnp.asarray(gt_labels).astype(jnp.int32)
    if pred_labels.shape != gt_labels.shape:
        raise ValueError(f"pred_labels {pred_labels.shape} != gt_labels {gt_labels.shape}")
    counted = (
        (gt_labels != ignore_index)
        & (gt_labels >= 0)
        & (gt_labels < num_classes)
        & (pred_labels >= 0)
        & (pred_labels < num_classes)
    )
    if valid is not None:
        valid = jnp.asarray(valid, bool)
        if valid.shape != gt_labels.shape[:1]:
            raise ValueError(f"valid {valid.shape} must be [B] with B = {gt_labels.shape[0]}")
        counted &= valid.reshape(valid.shape + (1,) * (gt_labels.ndim - 1))  # [B, 1, 1]
    # Uncounted pixels go to bin 0 with weight 0, so the indices stay in range.
    flat = jnp.where(counted, gt_labels * num_classes + pred_labels, 0).reshape(-1)
    counts = jnp.zeros(num_classes * num_classes, jnp.int32)
    counts = counts.at[flat].add(counted.reshape(-1).astype(jnp.int32))
    return counts.reshape(num_classes, num_classes)


def miou_from_confusion(conf: np.typing.ArrayLike) -> dict[str, Any]:
    """Per-class IoU and mIoU from a (split-level) confusion matrix.

    IoU_k = conf[k, k] / (sum_j conf[k, j] + sum_i conf[i, k] - conf[k, k]). Classes absent
    from both prediction and ground truth (zero row and column) have no IoU and are
    left out of the mean (paper IV-A).

    Args:
      conf: [K, K] counts, rows = ground truth, columns = prediction.

    Returns:
      A dict with ``miou`` (float in [0, 1], NaN when every class is absent),
      ``per_class`` (list of K floats, NaN for absent classes) and ``pixel_accuracy``
      (float, NaN with no counted pixel).
    """
    conf = np.asarray(conf, np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"conf must be [K, K], got {conf.shape}")
    tp = np.diag(conf)  # [K]
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp  # [K]
    present = union > 0
    per_class = np.full(len(tp), np.nan)
    per_class[present] = tp[present] / union[present]
    total = conf.sum()
    return {
        "miou": float(per_class[present].mean()) if present.any() else float("nan"),
        "per_class": per_class.tolist(),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
    }


def mean_iou(
    pred_labels: jax.typing.ArrayLike,
    gt_labels: jax.typing.ArrayLike,
    num_classes: int,
    ignore_index: int = 255,
) -> dict[str, Any]:
    """mIoU of label maps held in memory (convenience for tests and small splits).

    Args:
      pred_labels: [B, H, W] (or any shape) int predicted class ids.
      gt_labels: same shape, int ground-truth ids in [0, K) or ``ignore_index``.
      num_classes: K.
      ignore_index: ground-truth label of unsupervised pixels.

    Returns:
      ``miou_from_confusion`` of the whole input: ``miou``, ``per_class`` (NaN for
      classes absent from both prediction and ground truth), ``pixel_accuracy``.
    """
    conf = confusion_matrix(pred_labels, gt_labels, num_classes, ignore_index)
    return miou_from_confusion(np.asarray(jax.device_get(conf)))


def mdsq(map: float, miou: float, map_full: float, miou_full: float) -> float:
    """Multi-task detection-segmentation quality, paper Eq. 4 (paper IV-A).

    mDSQ = (mAP / mAP_full + mIoU / mIoU_full) / 2, where the ``_full`` values are those
    of the model trained on 100 % of the pool; 1.0 means "as good as full supervision".

    Args:
      map: mAP@[.50:.95] of the model, fraction in [0, 1].
      miou: mIoU of the model, fraction in [0, 1].
      map_full: mAP of the fully trained reference, > 0.
      miou_full: mIoU of the fully trained reference, > 0.

    Returns:
      The mDSQ (float; NaN if ``map`` or ``miou`` is NaN).

    Raises:
      ValueError: if a reference value is not a finite positive number.

    Examples:
      >>> round(mdsq(0.3, 0.6, 0.4, 0.8), 6)
      0.75
    """
    for name, value in (("map_full", map_full), ("miou_full", miou_full)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite positive number, got {value}")
    return (float(map) / map_full + float(miou) / miou_full) / 2


LABEL_EFFICIENCY_TARGET = 0.95
"""mDSQ level that defines label efficiency (paper IV-A: 95 % of full supervision)."""


def label_efficiency(
    fractions: Sequence[float],
    mdsq_values: Sequence[float],
    target: float = LABEL_EFFICIENCY_TARGET,
) -> float:
    """Labeled fraction at which an mDSQ curve first reaches ``target`` (paper IV-A).

    Points are taken in increasing fraction order; between the last point below the
    target and the first point at or above it the fraction is interpolated linearly.

    Args:
      fractions: [P] labeled fractions of the curve's points.
      mdsq_values: [P] mDSQ at those fractions (NaN points never reach the target).
      target: level to reach.

    Returns:
      The fraction (float); the first fraction if the first point already reaches the
      target; NaN if the curve never does.

    Examples:
      >>> round(label_efficiency([0.4, 0.5, 0.6], [0.8, 0.9, 1.0]), 6)
      0.55
    """
    fractions = np.asarray(fractions, np.float64)
    values = np.asarray(mdsq_values, np.float64)
    if fractions.shape != values.shape or fractions.ndim != 1:
        raise ValueError(f"fractions {fractions.shape} and mdsq_values {values.shape} must be [P]")
    order = np.argsort(fractions, kind="stable")
    fractions, values = fractions[order], values[order]
    reached = np.flatnonzero(values >= target)
    if not len(reached):
        return float("nan")
    i = int(reached[0])
    if i == 0 or not np.isfinite(values[i - 1]):
        return float(fractions[i])
    f0, f1, v0, v1 = fractions[i - 1], fractions[i], values[i - 1], values[i]
    return float(f0 + (target - v0) * (f1 - f0) / (v1 - v0))
