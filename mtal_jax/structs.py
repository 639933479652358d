"""Data containers shared by the whole library (pure data, no behaviour).

Dimension letters (docs/design.md §7): B batch, N pool size, M max ground-truth boxes,
K detection slots (decoded detections), C_det detection classes, C_seg segmentation
classes, H W input size, h w output map size (stride 4), D embedding dim.

All containers are ``flax.struct.dataclass`` pytrees, so they pass through ``jax.jit``
and shard like any other pytree.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax

Array = jax.Array

IGNORE_LABEL = 255
"""Segmentation label of pixels that carry no supervision (void, padding)."""


@flax.struct.dataclass
class Batch:
    """A batch of examples as produced by ``mtal_jax.data.pipeline``.

    Attributes:
      images: [B, H, W, 3] uint8 RGB.
      boxes: [B, M, 4] float32, xyxy in input pixels (padding rows are 0).
      box_labels: [B, M] int32 detection class ids in [0, C_det) (padding 0).
      box_valid: [B, M] bool, True for real boxes.
      seg_labels: [B, H, W] int32 segmentation ids in [0, C_seg) or IGNORE_LABEL.
      valid: [B] bool, False for padding examples of the last pool batch.
      index: [B] int32 position of the example in its split (the pool index), -1 for padding.
      content_hw: [B, 2] int32 (height, width) of the resized image before the bottom/right
        padding, (0, 0) for padding examples; None when unknown (no pixel is padding).
        Label-free, so pool scoring can leave padding out without reading annotations.
    """

    images: Array
    boxes: Array
    box_labels: Array
    box_valid: Array
    seg_labels: Array
    valid: Array
    index: Array
    content_hw: Array | None = None


@flax.struct.dataclass
class Outputs:
    """Raw outputs of ``models.multitask.Model`` (same in train and eval mode).

    Attributes:
      heatmap_logits: [B, h, w, C_det] CenterNet class heat-map logits (sigmoid -> peaks).
      box_size: [B, h, w, 2] float32 box (width, height) in output-grid cells.
      box_offset: [B, h, w, 2] float32 sub-cell centre offset (x, y) in cells.
      seg_logits: [B, h, w, C_seg] segmentation logits at stride 4.
      embedding: [B, D] global-average-pooled last backbone stage (Core-set features).
      loss_pred: [B, 2] predicted (detection, segmentation) losses of the LL4AL
        loss-prediction modules, or None when the model has none.
    """

    heatmap_logits: Array
    box_size: Array
    box_offset: Array
    seg_logits: Array
    embedding: Array
    loss_pred: Array | None = None


@flax.struct.dataclass
class Detections:
    """Fixed-size decoded detections (``mtal_jax.decode``).

    Attributes:
      boxes: [B, K, 4] float32 xyxy in input pixels.
      det_probs: [B, K, C_det] float32 class distribution of each detection; rows sum to 1.
      scores: [B, K] float32 confidence (peak heat-map probability) in [0, 1].
      labels: [B, K] int32 argmax class of ``det_probs``.
      valid: [B, K] bool, True for detections above the score threshold.
    """

    boxes: Array
    det_probs: Array
    scores: Array
    labels: Array
    valid: Array


@flax.struct.dataclass
class Predictions:
    """Everything a strategy's ``score`` may read, produced by ``train.step.make_predict_fn``.

    Attributes:
      detections: decoded detections of the image.
      seg_probs: [B, h, w, C_seg] softmax of the segmentation head.
      embedding: [B, D] pooled backbone features.
      valid: [B] bool, False for padding examples.
      loss_pred: [B, 2] LL4AL predicted losses, or None.
      pixel_valid: [B, h, w] bool, False for cells of the stride-4 map that lie in the
        bottom/right padding (``train.step.content_mask``), or None (every cell is content).
      content_hw: [B, 2] int32 (height, width) of the image content in input pixels before
        the padding (``Batch.content_hw``), or None (the whole input is content).
      extras: outputs of the strategy's extra functions (``Strategy.extras``), keyed by
        the names those functions choose (e.g. ``"seg_probs_flip"``, ``"box_masks"``).
    """

    detections: Detections
    seg_probs: Array
    embedding: Array
    valid: Array
    loss_pred: Array | None = None
    pixel_valid: Array | None = None
    extras: dict[str, Any] = flax.struct.field(default_factory=dict)
    content_hw: Array | None = None
