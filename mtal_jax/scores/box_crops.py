"""Crops around the detections, and the segmentation network run on them (paper III-C).

Steps 1-3 of the BoxMask pipeline (docs/design.md §4): ``crop_windows`` grows each
detected box by a context margin and clips it to the image (``"box"``, the paper's), or
takes a square of at least S input pixels around it (``"native"``);
``packed_crop_class_probs`` cuts the windows out of the batch's images
(``ops.crops.crop_and_resize``, bilinear sampling), runs the network's segmentation path
on them and keeps each crop's probability of its box's class. ``boxmask`` turns those
probabilities into BoxMasks.

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
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax.ops import boxes as box_ops
from mtal_jax.ops import crops as crop_ops

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
    """Runs ``segment_fn`` on the packed valid crops of a batch.

    Paper III-C; docs/design.md §4, steps 2-3.

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
