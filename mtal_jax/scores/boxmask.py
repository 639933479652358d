"""BoxMask generation (paper III-C) and the score function of the ``ours`` strategy (paper III-G).

The whole BoxMask scoring runs inside the jitted predict function:

1. ``make_box_mask_extra`` (a ``strategy_types.ExtraFn``): crop windows = detected boxes
   grown by a context margin and clipped to the image (``crop_window="box"``, the paper's),
   or squares of at least S input pixels around them (``"native"``, ``crop_windows``); the
   valid detections of the whole batch are *packed* (valid first, highest detection score
   first) and cut out in one gather
   (``ops.crops.crop_and_resize``); the network's segmentation path runs on the packed
   crops only; the probability of each box's class is resampled onto the output grid
   and thresholded at ``tau`` inside the box -> ``extras["box_masks"]``.
2. ``make_score_fn``: ``consistency.consistency_scores`` on the full-image segmentation,
   the BoxMasks and the detections.

Scored detections: only the decoded detections whose confidence is at least
``det_score_threshold`` (default 0.3), the boxes the detector asserts, get a BoxMask and
enter the scores. Scoring every top-K candidate above the decoder's threshold (0.05)
saturates S_loc: some low-confidence candidate always has an empty BoxMask (S_loc = 1), and
the max over boxes is then 1 on nearly every image. An image without a scored detection has
S_box = 0 and S_seg over the whole image.

Selection (``ours``), ``select.py`` and the analyses (Table II, Figs. 5-6,
``analysis.collect``) all score through this module's extra and score function, built by
``ours`` from the same keyword arguments, so what the analyses report is what selection
uses.

Packing (padded slots cost no network compute): the valid slots of the whole batch are
sorted to the front and run through the network ``crop_chunk`` crops at a time in a
``lax.while_loop`` of ``ceil(valid / crop_chunk)`` iterations. The network is compiled
once for a [crop_chunk, S, S, 3] input, so a batch with a different number of detections
never recompiles, a batch without detections makes no network call, and padding wastes
fewer than ``crop_chunk`` crops per batch. (A ``lax.switch`` over power-of-two bucket
sizes was the first design; it wastes up to half of the crop compute and compiles the
network once per bucket.) ``max_crops`` (default B*K: every valid detection fits) caps
the work per batch; when more detections are valid, the lowest-scoring ones are dropped: they get no
BoxMask, do not enter the scores (as if undetected) and are counted per image in
``extras["boxes_dropped"]`` and in the score dict, never silently.

Sampling: the crop is cut with bilinear sampling (``ops.crops``); the crop's class
probability map is read at each output-grid pixel centre's position inside the crop
window, bilinearly between crop pixel centres (edge-clamped), as separable interpolation
matrices (``Wy @ P @ Wx^T``), which maps to matrix multiplies on accelerators.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax import strategy_types, structs
from mtal_jax.ops import boxes as box_ops
from mtal_jax.ops import crops as crop_ops
from mtal_jax.scores import consistency

_HIGHEST = jax.lax.Precision.HIGHEST
DEFAULT_WEIGHTS = (1.0, 1.0, 1.0)  # (w_loc, w_cls, w_seg) of ``ours``


CROP_WINDOWS = ("box", "native")
"""``box``: the box grown by the margin, resized to S x S (default; a thin box is stretched,
a small one magnified); ``native``: a square around it, at least S input pixels (a small
object at the scale the network trained on, no stretch; a large one shrunk evenly)."""


def crop_windows(
    boxes_xyxy: ArrayLike,
    *,
    context_margin: float,
    image_hw: tuple[float, float],
    mode: str = "box",
    min_side: float = 0.0,
) -> jax.Array:
    """Crop window of each box (paper III-C; docs/design.md §4, step 1).

    Args:
      boxes_xyxy: [..., 4] float boxes.
      context_margin: fraction of the box size added on each side.
      image_hw: (H, W) of the image, or of its content before the letterbox padding, in
        the boxes' units: numbers, or arrays broadcasting against ``boxes_xyxy[..., 0]``
        (one size per image).
      mode: ``"box"``: the box grown by ``context_margin`` per side, clipped to the image;
        ``"native"``: the square of side max(grown width, grown height, ``min_side``) on the
        box's centre, moved inside the image where it fits, then clipped (``CROP_WINDOWS``).
      min_side: ``native``: the smallest side, the crop size S in input pixels.

    Returns:
      [..., 4] float32 windows.
    """
    height, width = image_hw  # scalars, or arrays broadcasting against boxes_xyxy[..., 0]
    grown = box_ops.enlarge_boxes(boxes_xyxy, context_margin)
    if mode == "native":
        x1, y1, x2, y2 = jnp.moveaxis(grown, -1, 0)
        side = jnp.maximum(jnp.maximum(x2 - x1, y2 - y1), min_side)
        left = jnp.clip((x1 + x2 - side) / 2, 0.0, jnp.maximum(width - side, 0.0))
        top = jnp.clip((y1 + y2 - side) / 2, 0.0, jnp.maximum(height - side, 0.0))
        grown = jnp.stack([left, top, left + side, top + side], axis=-1)
    elif mode != "box":
        raise ValueError(f"crop window mode must be one of {CROP_WINDOWS}, got {mode!r}")
    x1, y1, x2, y2 = jnp.moveaxis(grown, -1, 0)
    return jnp.stack(
        [jnp.clip(x1, 0.0, width), jnp.clip(y1, 0.0, height), jnp.clip(x2, 0.0, width),
         jnp.clip(y2, 0.0, height)], axis=-1,
    ).astype(jnp.float32)  # fmt: skip


def box_masks_from_class_probs(
    class_probs: ArrayLike,
    crop_windows_xyxy: ArrayLike,
    boxes_xyxy: ArrayLike,
    *,
    tau: float,
    out_hw: tuple[int, int],
) -> jax.Array:
    """BoxMasks from each crop's probability of its box's class (paper III-C; docs/design.md §4, step 4).

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


def packed_crop_class_probs(
    segment_fn: Callable[[jax.Array], jax.Array],
    images: ArrayLike,
    windows_xyxy: ArrayLike,
    seg_classes: ArrayLike,
    valid: ArrayLike,
    priority: ArrayLike,
    *,
    crop_size: int,
    max_crops: int,
    crop_chunk: int,
) -> tuple[jax.Array, jax.Array]:
    """Runs ``segment_fn`` on the packed valid crops of a batch (paper III-C; docs/design.md §4, steps 2-3).

    The kept slots (valid, at most ``max_crops``, highest ``priority`` first) are packed to
    the front and processed ``crop_chunk`` crops at a time in a ``lax.while_loop`` of
    ``ceil(kept / crop_chunk)`` iterations: compute scales with the number of valid
    detections (padding: under one chunk), and the shapes never change, so nothing
    recompiles.

    Args:
      segment_fn: uint8 images [P, S, S, 3] -> logits [P, S', S', C_seg].
      images: [B, H, W, 3] uint8.
      windows_xyxy: [B, K, 4] crop windows in input pixels.
      seg_classes: [B, K] int class whose probability is kept.
      valid: [B, K] bool, slots that need a crop.
      priority: [B, K] float, higher = kept first when more than ``max_crops`` slots are
        valid (the detection score).
      crop_size: S (static; the network needs S divisible by 32).
      max_crops: most crops per batch (static).
      crop_chunk: crops per network call (static).

    Returns:
      (class_probs [B, K, S', S'] float32 softmax probability of ``seg_classes`` over each
      window, zeros where not kept; kept [B, K] bool, the valid slots that got a crop).
    """
    images = jnp.asarray(images)
    valid = jnp.asarray(valid, bool)
    b, k = valid.shape
    n = b * k
    max_crops = min(max_crops, n)
    num_chunks_max = -(-max_crops // crop_chunk)
    flat_windows = jnp.asarray(windows_xyxy, jnp.float32).reshape(n, 4)
    flat_classes = jnp.asarray(seg_classes, jnp.int32).reshape(n)
    flat_priority = jnp.where(valid, jnp.asarray(priority, jnp.float32), -jnp.inf).reshape(n)
    order = jnp.argsort(-flat_priority, stable=True)[:max_crops]  # valid first, best first
    num_kept = jnp.minimum(jnp.sum(valid), max_crops)
    kept = jnp.zeros((n,), bool).at[order].set(jnp.arange(max_crops) < num_kept)
    # Packed slot list, padded to whole chunks with the out-of-range slot n (dropped on write).
    packed = jnp.full((num_chunks_max * crop_chunk,), n, jnp.int32)
    packed = packed.at[:max_crops].set(jnp.where(jnp.arange(max_crops) < num_kept, order, n))

    crop_shape = jax.ShapeDtypeStruct((crop_chunk, crop_size, crop_size, 3), jnp.uint8)
    crop_h, crop_w = jax.eval_shape(segment_fn, crop_shape).shape[1:3]

    def run_chunk(chunk: jax.Array, class_probs: jax.Array) -> jax.Array:
        index = jax.lax.dynamic_slice(packed, (chunk * crop_chunk,), (crop_chunk,))  # [P]
        slot = jnp.minimum(index, n - 1)  # padding reads any slot; its result is dropped
        crops = crop_ops.crop_and_resize(images, slot // k, flat_windows[slot], (crop_size,) * 2)
        crops = jnp.round(jnp.clip(crops, 0.0, 255.0)).astype(jnp.uint8)  # [P, S, S, 3]
        probs = jax.nn.softmax(segment_fn(crops).astype(jnp.float32), axis=-1)
        cls = flat_classes[slot][:, None, None, None]  # [P, 1, 1, 1]
        chunk_probs = jnp.take_along_axis(probs, cls, axis=-1)[..., 0]  # [P, S', S']
        return class_probs.at[index].set(chunk_probs, mode="drop")

    num_chunks = (num_kept + crop_chunk - 1) // crop_chunk
    class_probs = jax.lax.fori_loop(
        0, num_chunks, run_chunk, jnp.zeros((n, crop_h, crop_w), jnp.float32)
    )
    return class_probs.reshape(b, k, crop_h, crop_w), kept.reshape(b, k)


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
      crop_chunk: crops per network call (see module docstring).
      crop_window: ``"box"`` (default) or ``"native"`` (``CROP_WINDOWS``, ``crop_windows``).

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
    if crop_window not in CROP_WINDOWS:
        raise ValueError(f"crop_window must be one of {CROP_WINDOWS}, got {crop_window!r}")

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
        windows = crop_windows(
            det.boxes, context_margin=context_margin, image_hw=content,
            mode=crop_window, min_side=float(crop_size),
        )  # fmt: skip
        classes = consistency.box_seg_classes(det.det_probs, ctx.det_to_seg)
        class_probs, kept = packed_crop_class_probs(
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


def _masked_max(values: jax.Array, valid: jax.Array) -> jax.Array:
    """[B, K] -> [B] max over valid slots, 0 where none."""
    best = jnp.max(jnp.where(valid, values, -jnp.inf), axis=1)
    return jnp.where(jnp.any(valid, axis=1), best, 0.0)


def _best_box(values: jax.Array, s_box: jax.Array, valid: jax.Array) -> jax.Array:
    """[B, K] -> [B] value of the valid box with the largest S_box, 0 where none."""
    best = jnp.argmax(jnp.where(valid, s_box, -jnp.inf), axis=1)  # [B]
    picked = jnp.take_along_axis(values, best[:, None], axis=1)[:, 0]
    return jnp.where(jnp.any(valid, axis=1), picked, 0.0)


def make_score_fn(
    *,
    weights: tuple[float, float, float] = DEFAULT_WEIGHTS,
    eps: float = 1e-6,
    cls_divergence: str = "js",
) -> strategy_types.ScoreFn:
    """Score function of ``ours``: Algorithm 1 on ``Predictions`` with the BoxMask extras.

    Args:
      weights: (w_loc, w_cls, w_seg) (Table I ablations are 0/1 settings).
      eps: log floor of the divergences (``consistency.consistency_scores``).
      cls_divergence: S_cls divergence, ``"js"`` or ``"kl"``.

    Returns:
      ``score_fn(preds) -> dict`` of [B] arrays: ``score`` (higher = more inconsistent,
      -inf for padded examples; only content pixels count, ``preds.pixel_valid``),
      ``s_seg``, ``s_loc_max``, ``s_cls_max``, ``s_box_max`` (max over valid boxes, 0 with
      none), ``s_loc_best`` and ``s_cls_best`` (S_loc and S_cls of the box that attains
      ``s_box_max``, 0 with none: ``score = w_seg s_seg + w_loc s_loc_best + w_cls
      s_cls_best``), ``num_boxes`` and ``boxes_dropped``. Needs the extras of
      ``make_box_mask_extra``.
    """

    consistency.check_eps(eps)  # when the strategy is built, not at its first score

    def score_fn(preds: structs.Predictions) -> dict[str, jax.Array]:
        valid = preds.extras["box_valid"]
        out = consistency.consistency_scores(
            preds.seg_probs,
            preds.extras["box_masks"],
            preds.detections.det_probs,
            valid,
            preds.extras["det_to_seg"][0],
            eps=eps,
            weights=weights,
            cls_divergence=cls_divergence,
            pixel_valid=preds.pixel_valid,
        )
        return strategy_types.mask_padded({
            "score": out.score,
            "s_seg": out.s_seg,
            "s_loc_max": _masked_max(out.s_loc, valid),
            "s_cls_max": _masked_max(out.s_cls, valid),
            "s_box_max": _masked_max(out.s_box, valid),
            "s_loc_best": _best_box(out.s_loc, out.s_box, valid),
            "s_cls_best": _best_box(out.s_cls, out.s_box, valid),
            "num_boxes": jnp.sum(valid, axis=1).astype(jnp.int32),
            "boxes_dropped": preds.extras["boxes_dropped"],
        }, preds.valid)  # fmt: skip

    return score_fn
