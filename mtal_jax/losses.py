"""Detection and segmentation losses: per-example values, the caller reduces.

Paper III-A; docs/design.md.

* CenterNet focal loss on the class heat map (Zhou et al. 2019, alpha 2, beta 4), L1 on
  box size and centre offset at the ground-truth centres;
* softmax cross-entropy of the segmentation, ignore label excluded, on logits upsampled
  to the input size.

Targets are rendered inside jit from the padded boxes (``render_targets``).

Conventions that differ from the CenterNet code (Zhou et al.), so that its loss weights
do not carry over one for one:

* the L1 losses sum the two coordinates (w + h, dx + dy) and divide by the objects;
  CenterNet's ``RegL1Loss`` divides by twice the objects: ``loss.det_size = 0.1`` and
  ``loss.det_offset = 1.0`` weigh twice what the same numbers weigh there;
* the focal loss is normalised by each image's objects and averaged over the batch;
  CenterNet divides the batch's sum by the batch's objects (the same when every image
  holds as many objects).

Optimiser (``train.state``): AdamW's weight decay applies to every parameter, BatchNorm
scales and biases included (lr x decay = 2e-7 per step at the defaults: negligible; mask
them before raising the decay to the usual AdamW 1e-2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mtal_jax import structs
from mtal_jax.models.multitask import STRIDE


class Targets(NamedTuple):
    """CenterNet targets of one example.

    Attributes:
      heatmap: [h, w, C_det] float32 Gaussian peaks (exactly 1 at object centres).
      size: [M, 2] float32 box (w, h) in cells.
      offset: [M, 2] float32 centre minus its integer cell.
      index: [M] int32 flat cell index (y * w + x) of each centre.
      valid: [M] bool.
    """

    heatmap: jax.Array
    size: jax.Array
    offset: jax.Array
    index: jax.Array
    valid: jax.Array


def gaussian_radius(height: jax.Array, width: jax.Array, min_overlap: float = 0.7) -> jax.Array:
    """CenterNet's Gaussian radius: the smallest of the three IoU >= min_overlap cases.

    Args:
      height, width: [...] box size in cells.

    Returns:
      [...] float32 radius in cells (>= 0).
    """
    mo = min_overlap
    b1 = height + width
    c1 = width * height * (1 - mo) / (1 + mo)
    r1 = (b1 + jnp.sqrt(jnp.maximum(b1**2 - 4 * c1, 0.0))) / 2
    b2 = 2 * (height + width)
    c2 = (1 - mo) * width * height
    r2 = (b2 + jnp.sqrt(jnp.maximum(b2**2 - 16 * c2, 0.0))) / 2
    b3 = -2 * mo * (height + width)
    c3 = (mo - 1) * width * height
    r3 = (b3 + jnp.sqrt(jnp.maximum(b3**2 - 16 * mo * c3, 0.0))) / 2
    return jnp.maximum(jnp.minimum(jnp.minimum(r1, r2), r3), 0.0)


def render_targets(
    boxes: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    *,
    out_hw: tuple[int, int],
    num_classes: int,
) -> Targets:
    """Renders CenterNet targets for one example.

    Args:
      boxes: [M, 4] float32 xyxy in input pixels.
      labels: [M] int32 detection classes.
      valid: [M] bool.
      out_hw: (h, w) of the stride-4 output grid.
      num_classes: C_det.

    Returns:
      ``Targets``.
    """
    h, w = out_hw
    cells = boxes / STRIDE  # [M, 4] in cells
    cx, cy = (cells[:, 0] + cells[:, 2]) / 2, (cells[:, 1] + cells[:, 3]) / 2
    bw, bh = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    ix = jnp.clip(jnp.floor(cx), 0, w - 1)
    iy = jnp.clip(jnp.floor(cy), 0, h - 1)
    radius = jnp.floor(gaussian_radius(jnp.ceil(bh), jnp.ceil(bw)))  # [M]
    sigma = (2 * radius + 1) / 6
    ys = jnp.arange(h, dtype=jnp.float32)[None, :, None]  # [1, h, 1]
    xs = jnp.arange(w, dtype=jnp.float32)[None, None, :]  # [1, 1, w]
    dy, dx = ys - iy[:, None, None], xs - ix[:, None, None]  # [M, h, w]
    g = jnp.exp(-(dx**2 + dy**2) / (2 * sigma[:, None, None] ** 2))
    window = (jnp.abs(dx) <= radius[:, None, None]) & (jnp.abs(dy) <= radius[:, None, None])
    g = jnp.where(window & valid[:, None, None], g, 0.0)  # [M, h, w]
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)  # [M, C]
    heatmap = jnp.max(g[..., None] * onehot[:, None, None, :], axis=0, initial=0.0)  # [h, w, C]
    return Targets(
        heatmap=heatmap,
        size=jnp.stack([bw, bh], -1),
        offset=jnp.stack([cx - ix, cy - iy], -1),
        index=(iy * w + ix).astype(jnp.int32),
        valid=valid,
    )


def focal_heatmap_loss(*, logits: jax.Array, targets: jax.Array) -> jax.Array:
    """CenterNet penalty-reduced focal loss of one example, normalised by its object count.

    Args:
      logits: [h, w, C] heat-map logits.
      targets: [h, w, C] Gaussian targets, 1 at centres.

    Returns:
      scalar float32.
    """
    logits = logits.astype(jnp.float32)
    p = jax.nn.sigmoid(logits)
    pos = targets >= 1.0 - 1e-6
    pos_term = jax.nn.log_sigmoid(logits) * (1 - p) ** 2
    neg_term = jax.nn.log_sigmoid(-logits) * p**2 * (1 - targets) ** 4
    total = jnp.sum(jnp.where(pos, pos_term, neg_term))
    return -total / jnp.maximum(jnp.sum(pos), 1.0)


def masked_l1(*, pred: jax.Array, target: jax.Array, valid: jax.Array) -> jax.Array:
    """Mean over valid rows of the L1 distance. pred, target [M, D]; valid [M]. Scalar."""
    l1 = jnp.sum(jnp.abs(pred - target), -1)
    return jnp.sum(jnp.where(valid, l1, 0.0)) / jnp.maximum(jnp.sum(valid), 1.0)


def segmentation_xent(
    *,
    logits: jax.Array,
    labels: jax.Array,
    num_classes: int,
    class_weights: jax.Array | None = None,
) -> jax.Array:
    """Softmax cross-entropy of one image over pixels that are not ignored.

    Args:
      logits: [h, w, C_seg] logits (any stride; bilinearly resized to the labels' size).
      labels: [H, W] int32 class ids or ``structs.IGNORE_LABEL``.
      num_classes: C_seg; ids outside [0, C_seg) are ignored too.
      class_weights: optional [C_seg] float32 weight of each ground-truth class (e.g.
        median-frequency balancing, SegNet's choice on CamVid): the loss is then the
        weighted mean ``sum(w[y] * nll) / sum(w[y])`` over valid pixels, so its scale stays
        that of the unweighted mean; None = every class weighs 1 (the plain mean).

    Returns:
      scalar float32 (0 when every pixel is ignored or weighs 0).
    """
    hh, ww = labels.shape
    logits = jax.image.resize(logits.astype(jnp.float32), (hh, ww, logits.shape[-1]), "bilinear")
    valid = (labels >= 0) & (labels < num_classes)
    safe = jnp.where(valid, labels, 0)
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, safe[..., None], -1)[..., 0]
    if class_weights is None:  # the plain mean (the expression of earlier releases)
        return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(jnp.sum(valid), 1.0)
    w = jnp.where(valid, jnp.asarray(class_weights, jnp.float32)[safe], 0.0)
    return jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1e-6)


def check_class_weights(weights: Sequence[float], num_classes: int, *, name: str) -> None:
    """Raises ``ValueError`` (naming ``name``) unless ``weights`` is empty (no weighting) or
    holds ``num_classes`` finite non-negative values, not all 0."""
    if not len(weights):
        return
    w = np.asarray(weights, np.float64)
    if w.shape != (num_classes,):
        raise ValueError(
            f"{name} has {w.size} values; the dataset has {num_classes} segmentation classes "
            "(one weight each, or () for none)"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"{name} must be finite, >= 0 and not all 0, got {list(weights)}")


def per_example_losses(
    outputs: structs.Outputs,
    batch: structs.Batch,
    *,
    seg_class_weights: Sequence[float] = (),
) -> dict[str, jax.Array]:
    """Per-image loss terms.

    Args:
      outputs: model outputs of the batch.
      batch: the batch (boxes in input pixels, seg labels at input size).
      seg_class_weights: [C_seg] weights of the segmentation classes in ``seg``
        (``segmentation_xent``); () = unweighted.

    Returns:
      dict of [B] float32: ``det_heatmap`` (classification), ``det_size``, ``det_offset``
      (localisation) and ``seg``.
    """
    _, h, w, c = outputs.heatmap_logits.shape
    num_seg = outputs.seg_logits.shape[-1]
    seg_w = jnp.asarray(seg_class_weights, jnp.float32) if len(seg_class_weights) else None

    def one(heat, size, offset, seg, boxes, labels, box_valid, seg_labels):
        t = render_targets(boxes, labels, box_valid, out_hw=(h, w), num_classes=c)
        size_at = size.reshape(h * w, 2)[t.index]  # [M, 2]
        offset_at = offset.reshape(h * w, 2)[t.index]
        return {
            "det_heatmap": focal_heatmap_loss(logits=heat, targets=t.heatmap),
            "det_size": masked_l1(pred=size_at, target=t.size, valid=t.valid),
            "det_offset": masked_l1(pred=offset_at, target=t.offset, valid=t.valid),
            "seg": segmentation_xent(
                logits=seg, labels=seg_labels, num_classes=num_seg, class_weights=seg_w
            ),
        }

    return jax.vmap(one)(
        outputs.heatmap_logits,
        outputs.box_size,
        outputs.box_offset,
        outputs.seg_logits,
        batch.boxes,
        batch.box_labels,
        batch.box_valid,
        batch.seg_labels,
    )


def weighted_total(
    per_example: dict[str, jax.Array], weights: dict[str, float], valid: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Weighted sum of the batch means of every term.

    Args:
      per_example: dict of [B] terms.
      weights: weight per term (missing terms weigh 0).
      valid: [B] bool, padding examples excluded.

    Returns:
      (scalar total, dict of scalar batch means of every term).
    """
    n = jnp.maximum(jnp.sum(valid), 1.0)
    means = {k: jnp.sum(jnp.where(valid, v, 0.0)) / n for k, v in per_example.items()}
    total = sum(weights.get(k, 0.0) * v for k, v in means.items())
    return total, means
