"""Image augmentations with box mapping, as batched pure ``jnp`` functions (CALD, EquAL).

They follow CALD's ``cald/cald_helper.py`` (we1pingyu/CALD; docs/baselines.md, "CALD").
Images are [B, H, W, 3] uint8 (the model's input) and stay uint8 with the same
static shape, so every augmented batch reuses the compiled model. Boxes are
[B, K, 4] float32 xyxy in input pixels.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax.ops import boxes as box_ops


def image_keys(images: jax.Array, key: jax.Array) -> jax.Array:
    """One PRNG key per image, derived from ``key`` and the image content.

    The key depends only on the pixels (a position-weighted wrapping uint32 checksum),
    not on the image's slot in the batch, so random augmentations are the same however
    the pool is batched or padded.

    Args:
      images: [B, H, W, 3] uint8.
      key: base PRNG key.

    Returns:
      [B] PRNG keys.
    """
    b = images.shape[0]
    flat = images.reshape(b, -1).astype(jnp.uint32)  # [B, H*W*3]
    weights = (jnp.arange(flat.shape[1], dtype=jnp.uint32) % jnp.uint32(65521)) + jnp.uint32(1)
    checksum = jnp.sum(flat * weights, axis=1, dtype=jnp.uint32)  # wraps mod 2**32
    return jax.vmap(lambda c: jax.random.fold_in(key, c))(checksum)


def hflip(images: jax.Array, boxes_xyxy: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Horizontal flip: x1' = W - x2, x2' = W - x1 (CALD ``HorizontalFlip``).

    Args:
      images: [B, H, W, 3].
      boxes_xyxy: [B, K, 4].

    Returns:
      (flipped images [B, H, W, 3], boxes [B, K, 4]).
    """
    width = images.shape[2]
    b = jnp.asarray(boxes_xyxy, jnp.float32)
    flipped = jnp.stack([width - b[..., 2], b[..., 1], width - b[..., 0], b[..., 3]], axis=-1)
    return jnp.flip(images, axis=2), flipped


def _intersection(a: jax.Array, b: jax.Array) -> jax.Array:
    """[T, 4] x [K, 4] -> [T, K] intersection areas."""
    top_left = jnp.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = jnp.maximum(bottom_right - top_left, 0.0)
    return wh[..., 0] * wh[..., 1]


def _cutout_one(image, boxes, box_valid, key, *, num_cuts, tries, ratio_range, size_range, fill):
    h, w = image.shape[:2]
    k_h, k_w, k_x, k_y = jax.random.split(key, 4)
    cut_h = jax.random.uniform(k_h, (tries,), minval=size_range[0] * h, maxval=size_range[1] * h)
    cut_w = jax.random.uniform(k_w, (tries,), minval=size_range[0] * w, maxval=size_range[1] * w)
    left = jax.random.uniform(k_x, (tries,)) * (w - cut_w)
    top = jax.random.uniform(k_y, (tries,)) * (h - cut_h)
    rects = jnp.floor(jnp.stack([left, top, left + cut_w, top + cut_h], -1))  # [T, 4] int()
    area = jnp.maximum(box_ops.box_area(boxes), 1e-12)  # [K]
    ratio = _intersection(rects, boxes) / area[None, :]  # [T, K]
    ratio = jnp.max(jnp.where(box_valid[None, :], ratio, -jnp.inf), axis=1)  # [T]
    accept = (ratio >= ratio_range[0]) & (ratio <= ratio_range[1])
    order = jnp.cumsum(accept)  # the c-th accepted try is the first with order == c
    rows = jnp.arange(h, dtype=jnp.float32)
    cols = jnp.arange(w, dtype=jnp.float32)
    cut = jnp.zeros((h, w), bool)
    for c in range(1, num_cuts + 1):
        t = jnp.argmax(order == c)
        used = order[-1] >= c
        x1, y1, x2, y2 = rects[t]
        in_rows = (rows >= y1) & (rows < y2)
        in_cols = (cols >= x1) & (cols < x2)
        cut = cut | (used & in_rows[:, None] & in_cols[None, :])
    return jnp.where(cut[..., None], jnp.asarray(fill, image.dtype), image)


def cutout(
    images: jax.Array,
    boxes_xyxy: ArrayLike,
    box_valid: ArrayLike,
    keys: jax.Array,
    *,
    num_cuts: int = 2,
    tries: int = 50,
    ratio_range: tuple[float, float] = (0.1, 0.4),
    size_range: tuple[float, float] = (0.05, 0.2),
    fill: int = 0,
) -> jax.Array:
    """CALD cutout: up to ``num_cuts`` rectangles filled with ``fill``; boxes unchanged.

    Each try draws a rectangle of height U(0.05 H, 0.2 H) and width U(0.05 W, 0.2 W) at a
    uniform position (corners truncated to integers). It is accepted only if the largest
    fraction of a (valid) reference box it covers, max_k |cut ∩ b_k| / |b_k|, lies in
    ``ratio_range``. The first ``num_cuts`` accepted of ``tries`` tries are applied; an
    image without valid boxes gets no cut.

    Args:
      images: [B, H, W, 3] uint8.
      boxes_xyxy: [B, K, 4] reference (predicted) boxes.
      box_valid: [B, K] bool.
      keys: [B] PRNG keys (``image_keys``).
      num_cuts: cuts per image (CALD: 2).
      tries: placements tried (CALD: 50).
      ratio_range: accepted [min, max] covered fraction (CALD: [0.1, 0.4]).
      size_range: cut size as a fraction of H and W (CALD: [0.05, 0.2]).
      fill: fill value (CALD: 0).

    Returns:
      [B, H, W, 3] images.
    """
    fn = functools.partial(
        _cutout_one,
        num_cuts=num_cuts,
        tries=tries,
        ratio_range=ratio_range,
        size_range=size_range,
        fill=fill,
    )
    return jax.vmap(fn)(images, jnp.asarray(boxes_xyxy, jnp.float32), jnp.asarray(box_valid), keys)


def _to_uint8(x: jax.Array, dtype) -> jax.Array:
    if jnp.issubdtype(dtype, jnp.integer):
        return jnp.clip(jnp.round(x), 0, 255).astype(dtype)
    return x.astype(dtype)


def resize(
    images: jax.Array, boxes_xyxy: ArrayLike, *, ratio: float = 0.8, mode: str = "down_up"
) -> tuple[jax.Array, jax.Array]:
    """CALD "smaller_resize" by ``ratio`` (bilinear), keeping the static image shape.

    * ``"down_up"`` (default): resize to (int(ratio H), int(ratio W)) and back to (H, W);
      boxes unchanged. This is what CALD's detector actually sees: torchvision's
      ``GeneralizedRCNNTransform`` rescales every input to its ``min_size``, so the
      reference's smaller image reaches the network at the original scale, only blurred.
    * ``"pad"``: resize to (int(ratio H), int(ratio W)), paste at the top-left of a zero
      canvas of (H, W); boxes scaled like the image (objects really shrink).

    Args:
      images: [B, H, W, 3].
      boxes_xyxy: [B, K, 4].
      ratio: scale factor (CALD: 0.8).
      mode: ``"down_up"`` or ``"pad"``.

    Returns:
      (images [B, H, W, 3], boxes [B, K, 4]).

    Raises:
      ValueError: for an unknown mode.
    """
    b, h, w, c = images.shape
    oh, ow = int(h * ratio), int(w * ratio)
    boxes_xyxy = jnp.asarray(boxes_xyxy, jnp.float32)
    small = jax.image.resize(images.astype(jnp.float32), (b, oh, ow, c), "linear")
    if mode == "down_up":
        out = jax.image.resize(small, (b, h, w, c), "linear")
        return _to_uint8(out, images.dtype), boxes_xyxy
    if mode == "pad":
        out = jnp.zeros((b, h, w, c), jnp.float32).at[:, :oh, :ow].set(small)
        scale = jnp.array([ow / w, oh / h, ow / w, oh / h], jnp.float32)
        return _to_uint8(out, images.dtype), boxes_xyxy * scale
    raise ValueError(f"unknown resize mode {mode!r}; valid: ('down_up', 'pad')")


def rotated_canvas_size(height: int, width: int, degrees: float) -> tuple[int, int]:
    """(nh, nw) of PIL's ``rotate(degrees, expand=True)`` canvas (ceil/floor of the corners)."""
    a = math.radians(degrees)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    half_w = (width * c + height * s) / 2.0
    half_h = (width * s + height * c) / 2.0
    nw = math.ceil(width / 2.0 + half_w) - math.floor(width / 2.0 - half_w)
    nh = math.ceil(height / 2.0 + half_h) - math.floor(height / 2.0 - half_h)
    return nh, nw


def rotate_boxes(boxes_xyxy: ArrayLike, height: int, width: int, degrees: float) -> jax.Array:
    """Maps boxes through CALD's ``rotate``: corners rotated, enclosing box, rescaled, clamped.

    Counter-clockwise by ``degrees`` on screen (y down) about the image centre, on PIL's
    expanded canvas (nh, nw), which is then resized back to (height, width).

    Args:
      boxes_xyxy: [..., 4] float.
      height: H.
      width: W.
      degrees: rotation angle (CALD: 5).

    Returns:
      [..., 4] float32, clamped to the image.
    """
    nh, nw = rotated_canvas_size(height, width, degrees)
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    b = jnp.asarray(boxes_xyxy, jnp.float32)
    xs = jnp.stack([b[..., 0], b[..., 2], b[..., 0], b[..., 2]], -1) - width / 2.0  # [..., 4]
    ys = jnp.stack([b[..., 1], b[..., 1], b[..., 3], b[..., 3]], -1) - height / 2.0
    rx = (c * xs + s * ys + nw / 2.0) * (width / nw)
    ry = (-s * xs + c * ys + nh / 2.0) * (height / nh)
    out = jnp.stack([rx.min(-1), ry.min(-1), rx.max(-1), ry.max(-1)], -1)
    return box_ops.clip_boxes(out, height, width)


def rotate(
    images: jax.Array, boxes_xyxy: ArrayLike, *, degrees: float = 5.0
) -> tuple[jax.Array, jax.Array]:
    """CALD rotation: PIL ``rotate(degrees, expand=True)`` then resize back to (H, W).

    One bilinear resampling (the reference does nearest-neighbour rotation then a bicubic
    resize); outside the source image is 0. Our canvas size is PIL's for both image and
    boxes (the reference's box map centres on ``int(h sin + w cos)`` instead, about one
    pixel off).

    Args:
      images: [B, H, W, 3].
      boxes_xyxy: [B, K, 4].
      degrees: counter-clockwise angle (CALD: 5).

    Returns:
      (images [B, H, W, 3], boxes [B, K, 4]).
    """
    _, h, w, _ = images.shape
    nh, nw = rotated_canvas_size(h, w, degrees)
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    v, u = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )  # [H, W] output pixel rows, cols
    dx = (u + 0.5) * (nw / w) - nw / 2.0  # position on the expanded canvas, from its centre
    dy = (v + 0.5) * (nh / h) - nh / 2.0
    src_x = c * dx - s * dy + w / 2.0 - 0.5  # inverse rotation, pixel-index coordinates
    src_y = s * dx + c * dy + h / 2.0 - 0.5
    coords = jnp.stack([src_y, src_x])  # [2, H, W]

    def sample(channel):  # [H, W] -> [H, W]
        return jax.scipy.ndimage.map_coordinates(channel, coords, order=1, mode="constant")

    per_image = jax.vmap(sample, in_axes=2, out_axes=2)  # over channels
    out = jax.vmap(per_image)(images.astype(jnp.float32))
    return _to_uint8(out, images.dtype), rotate_boxes(boxes_xyxy, h, w, degrees)
