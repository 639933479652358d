"""BoxMask generation (paper III-C): the predict-time extra of the ``ours`` strategy.

The whole BoxMask scoring runs inside the jitted predict function:

1. ``make_box_mask_extra`` (a ``strategy_types.ExtraFn``): crop windows = detected boxes
   grown by a context margin and clipped to the image (``crop_window="box"``, the paper's),
   or squares of at least S input pixels around them (``"native"``,
   ``box_crops.crop_windows``); the valid detections of the whole batch are *packed* (valid
   first, highest detection score first) and cut out in one gather
   (``ops.crops.crop_and_resize``); the network's segmentation path runs on the packed
   crops only (``box_crops.packed_crop_class_probs``); the probability of each box's class
   is resampled onto the output grid and thresholded at ``tau`` inside the box
   (``box_masks_from_class_probs``) -> ``extras["box_masks"]``.
2. ``consistency_score.make_score_fn``: ``consistency.consistency_scores`` on the
   full-image segmentation, the BoxMasks and the detections.

Scored detections: only the decoded detections whose confidence is at least
``det_score_threshold`` (default 0.3), the boxes the detector asserts, get a BoxMask and
enter the scores. Scoring every top-K candidate above the decoder's threshold (0.05)
saturates S_loc: some low-confidence candidate always has an empty BoxMask (S_loc = 1), and
the max over boxes is then 1 on nearly every image. An image without a scored detection has
S_box = 0 and S_seg over the whole image.

Selection (``ours``), ``select.py`` and the analyses (Table II, Figs. 5-6,
``analysis.collect``) all score through this module's extra and
``consistency_score.make_score_fn``, built by ``ours`` from the same keyword arguments, so
what the analyses report is what selection uses.

Packing, ``max_crops`` and the dropped boxes: see ``box_crops``.

Sampling: the crop is cut with bilinear sampling (``ops.crops``); the crop's class
probability map is read at each output-grid pixel centre's position inside the crop
window, bilinearly between crop pixel centres (edge-clamped), as separable interpolation
matrices (``Wy @ P @ Wx^T``), which maps to matrix multiplies on accelerators.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax import strategy_types, structs
from mtal_jax.ops import boxes as box_ops
from mtal_jax.ops import crops as crop_ops
from mtal_jax.scores import box_crops, consistency

_HIGHEST = jax.lax.Precision.HIGHEST


def box_masks_from_class_probs(
    class_probs: ArrayLike,
    crop_windows_xyxy: ArrayLike,
    boxes_xyxy: ArrayLike,
    *,
    tau: float,
    out_hw: tuple[int, int],
) -> jax.Array:
    """BoxMasks from each crop's probability of its box's class.

    Paper III-C; docs/design.md §4, step 4.

    Output-grid pixel (i, j) is in BM_k iff its centre (j + 0.5, i + 0.5) lies inside box k
    (``x1 <= j + 0.5 < x2``, ``y1 <= i + 0.5 < y2``) and the class probability, bilinearly
    sampled at that centre's position inside window k, is > ``tau``.

    Args:
      class_probs: [..., S', S'] probability of the box's class over each crop window
        (crop pixel m covers [m, m + 1) / S' of the window).
      crop_windows_xyxy: [..., 4] windows in output-grid cells.
      boxes_xyxy: [..., 4] boxes in output-grid cells.
      tau: probability threshold (paper Table II: 0.3).
      out_hw: (h, w) output grid, static.

    Returns:
      [..., h, w] bool.
    """
    class_probs = jnp.asarray(class_probs, jnp.float32)
    windows = jnp.asarray(crop_windows_xyxy, jnp.float32)
    h, w = out_hw
    crop_h, crop_w = class_probs.shape[-2:]
    win_w = jnp.maximum(windows[..., 2] - windows[..., 0], 1e-6)[..., None]  # [..., 1]
    win_h = jnp.maximum(windows[..., 3] - windows[..., 1], 1e-6)[..., None]
    centres_y = jnp.arange(h, dtype=jnp.float32) + 0.5  # [h]
    centres_x = jnp.arange(w, dtype=jnp.float32) + 0.5  # [w]
    # Position of each grid centre in crop-pixel index space (crop pixel m centred at m).
    pos_y = (centres_y - windows[..., 1:2]) / win_h * crop_h - 0.5  # [..., h]
    pos_x = (centres_x - windows[..., 0:1]) / win_w * crop_w - 0.5  # [..., w]
    rows = crop_ops.interpolation_matrix(pos_y, crop_h)  # [..., h, S']
    cols = crop_ops.interpolation_matrix(pos_x, crop_w)  # [..., w, S']
    sampled = jnp.einsum("...is,...st->...it", rows, class_probs, precision=_HIGHEST)
    sampled = jnp.einsum("...it,...jt->...ij", sampled, cols, precision=_HIGHEST)  # [..., h, w]
    return box_ops.boxes_to_pixel_masks(boxes_xyxy, out_hw) & (sampled > tau)


def box_masks_from_crops(
    crop_probs: ArrayLike,
    crop_windows_xyxy: ArrayLike,
    boxes_xyxy: ArrayLike,
    seg_classes: ArrayLike,
    *,
    tau: float,
    out_hw: tuple[int, int],
) -> jax.Array:
    """BoxMasks from the segmentation of each crop window (paper III-C; docs/design.md §4).

    Args:
      crop_probs: [B, K, S', S', C_seg] segmentation probabilities over each crop window.
      crop_windows_xyxy: [B, K, 4] windows, xyxy in output-grid cells.
      boxes_xyxy: [B, K, 4] boxes, xyxy in output-grid cells.
      seg_classes: [B, K] int segmentation class c_k of each box.
      tau: threshold on the probability of class c_k.
      out_hw: (h, w), static.

    Returns:
      [B, K, h, w] bool; see ``box_masks_from_class_probs`` for the rule and sampling.
    """
    crop_probs = jnp.asarray(crop_probs)
    index = jnp.asarray(seg_classes, jnp.int32)[..., None, None, None]  # [B, K, 1, 1, 1]
    class_probs = jnp.take_along_axis(crop_probs, index, axis=-1)[..., 0]  # [B, K, S', S']
    return box_masks_from_class_probs(
        class_probs, crop_windows_xyxy, boxes_xyxy, tau=tau, out_hw=out_hw
    )


def make_box_mask_extra(
    *,
    crop_size: int = 64,
    context_margin: float = 0.1,
    tau: float = 0.3,
    det_score_threshold: float = 0.3,
    max_crops: int | None = None,
    crop_chunk: int = 16,
    crop_window: str = "box",
) -> strategy_types.ExtraFn:
    """The BoxMask extra of the ``ours`` strategy (paper III-C, paper III-C; docs/design.md §4).

    Args:
      crop_size: S, side of the square crops fed to the network (divisible by 32).
      context_margin: window = box grown by this fraction of its size per side.
      tau: BoxMask threshold on the class probability.
      det_score_threshold: only detections whose score is at least this get a BoxMask and
        are scored, on top of the decoder's own ``valid`` mask.
      max_crops: most crops per batch (None: B*K, every valid detection fits).
      crop_chunk: crops per network call (see ``box_crops``).
      crop_window: ``"box"`` (default) or ``"native"`` (``box_crops.CROP_WINDOWS``,
        ``box_crops.crop_windows``).

    Returns:
      ``extra(ctx, images, preds) -> dict`` with
      ``box_masks`` [B, K, h, w] bool, ``box_valid`` [B, K] bool (detections that are valid,
      above the threshold and kept), ``boxes_dropped`` [B] int32 (valid detections beyond
      ``max_crops``), ``det_to_seg`` [B, C_det] int32 (the context's mapping, one row per
      image, so the score function can read it from ``Predictions``), and for the
      analyses (unused outputs cost nothing under jit): ``box_classes`` [B, K] int32 (c_k),
      ``box_class_probs`` [B, K, S', S'] float32 (crop probability of c_k, 0 where not
      kept), ``box_windows_grid`` and ``boxes_grid`` [B, K, 4] float32 (crop windows and
      boxes in output-grid cells; ``box_masks_from_class_probs`` of these three at another
      tau gives the BoxMasks at that tau).

    Raises:
      ValueError: a ``crop_size`` that is not a positive multiple of 32, ``crop_chunk`` or
        ``max_crops`` below 1, ``tau`` outside [0, 1) or a negative ``context_margin``.
    """
    if crop_size <= 0 or crop_size % 32:
        raise ValueError(f"crop_size must be a positive multiple of 32, got {crop_size}")
    if crop_chunk < 1:
        raise ValueError(f"crop_chunk must be at least 1, got {crop_chunk}")
    if max_crops is not None and max_crops < 1:
        raise ValueError(f"max_crops must be None (no cap) or at least 1, got {max_crops}")
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"tau (the BoxMask threshold) must be in [0, 1), got {tau}")
    if not context_margin >= 0.0:
        raise ValueError(f"context_margin must be >= 0, got {context_margin}")
    if crop_window not in box_crops.CROP_WINDOWS:
        raise ValueError(
            f"crop_window must be one of {box_crops.CROP_WINDOWS}, got {crop_window!r}"
        )

    def box_mask_extra(
        ctx: strategy_types.PredictContext, images: jax.Array, preds: structs.Predictions
    ) -> dict[str, jax.Array]:
        det = preds.detections
        b, height, width, _ = images.shape
        h, w = preds.seg_probs.shape[1:3]
        k = det.valid.shape[1]
        valid = det.valid & (det.scores >= det_score_threshold)
        # windows inside the image content: the letterbox padding is black, never the scene
        content = (
            (jnp.float32(height), jnp.float32(width))
            if preds.content_hw is None
            else tuple(jnp.asarray(preds.content_hw, jnp.float32)[:, i : i + 1] for i in (0, 1))
        )
        windows = box_crops.crop_windows(
            det.boxes, context_margin=context_margin, image_hw=content,
            mode=crop_window, min_side=float(crop_size),
        )  # fmt: skip
        classes = consistency.box_seg_classes(det.det_probs, ctx.det_to_seg)
        class_probs, kept = box_crops.packed_crop_class_probs(
            ctx.segment_fn,
            images,
            windows,
            classes,
            valid,
            det.scores,
            crop_size=crop_size,
            max_crops=b * k if max_crops is None else max_crops,
            crop_chunk=crop_chunk,
        )
        to_grid = jnp.array([w / width, h / height] * 2, jnp.float32)  # input px -> grid cells
        masks = box_masks_from_class_probs(
            class_probs, windows * to_grid, det.boxes * to_grid, tau=tau, out_hw=(h, w)
        )
        det_to_seg = jnp.asarray(ctx.det_to_seg, jnp.int32)
        return {
            "box_masks": masks & kept[..., None, None],
            "box_valid": kept,
            "boxes_dropped": jnp.sum(valid & ~kept, axis=1).astype(jnp.int32),
            "det_to_seg": jnp.broadcast_to(det_to_seg, (b, det_to_seg.shape[0])),
            "box_classes": classes,
            "box_class_probs": class_probs,
            "box_windows_grid": windows * to_grid,
            "boxes_grid": det.boxes * to_grid,
        }

    return box_mask_extra
