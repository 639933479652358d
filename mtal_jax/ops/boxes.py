"""Box helpers (pure ``jnp``, any leading batch dimensions).

Boxes are ``xyxy``: (x1, y1, x2, y2) with x to the right and y down, in whatever pixel
units the caller uses (input pixels or output-grid cells). Pixel (i, j) of a grid has its
centre at (x, y) = (j + 0.5, i + 0.5) (paper III-C; docs/design.md §4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def box_area(boxes_xyxy: ArrayLike) -> jax.Array:
    """Area of each box; 0 for degenerate boxes.

    Args:
      boxes_xyxy: [..., 4] float.

    Returns:
      [...] float, ``max(x2 - x1, 0) * max(y2 - y1, 0)``.
    """
    boxes_xyxy = jnp.asarray(boxes_xyxy)
    width = jnp.maximum(boxes_xyxy[..., 2] - boxes_xyxy[..., 0], 0.0)
    height = jnp.maximum(boxes_xyxy[..., 3] - boxes_xyxy[..., 1], 0.0)
    return width * height


def enlarge_boxes(boxes_xyxy: ArrayLike, margin: float) -> jax.Array:
    """Grows each box by ``margin`` times its width (height) on the left and right (top and bottom).

    Args:
      boxes_xyxy: [..., 4] float.
      margin: fraction of the box size added on each side (0.1 = 10 % per side, paper
        III-C; docs/design.md §4).

    Returns:
      [..., 4] float, same centre, size multiplied by ``1 + 2 * margin``.
    """
    boxes_xyxy = jnp.asarray(boxes_xyxy, jnp.float32)
    x1, y1, x2, y2 = jnp.moveaxis(boxes_xyxy, -1, 0)
    dx = margin * (x2 - x1)
    dy = margin * (y2 - y1)
    return jnp.stack([x1 - dx, y1 - dy, x2 + dx, y2 + dy], axis=-1)


def clip_boxes(boxes_xyxy: ArrayLike, height: float, width: float) -> jax.Array:
    """Clips boxes to the image rectangle [0, width] x [0, height].

    Args:
      boxes_xyxy: [..., 4] float.
      height: image height in the boxes' units.
      width: image width in the boxes' units.

    Returns:
      [..., 4] float.
    """
    boxes_xyxy = jnp.asarray(boxes_xyxy, jnp.float32)
    upper = jnp.array([width, height, width, height], jnp.float32)
    return jnp.clip(boxes_xyxy, 0.0, upper)


def pairwise_iou(boxes_a_xyxy: ArrayLike, boxes_b_xyxy: ArrayLike) -> jax.Array:
    """Intersection over union of every pair of boxes.

    Args:
      boxes_a_xyxy: [..., N, 4] float.
      boxes_b_xyxy: [..., M, 4] float (same leading dimensions).

    Returns:
      [..., N, M] float in [0, 1]; 0 where both boxes are empty.
    """
    a = jnp.asarray(boxes_a_xyxy, jnp.float32)[..., :, None, :]  # [..., N, 1, 4]
    b = jnp.asarray(boxes_b_xyxy, jnp.float32)[..., None, :, :]  # [..., 1, M, 4]
    top_left = jnp.maximum(a[..., :2], b[..., :2])
    bottom_right = jnp.minimum(a[..., 2:], b[..., 2:])
    wh = jnp.maximum(bottom_right - top_left, 0.0)
    intersection = wh[..., 0] * wh[..., 1]
    union = box_area(a) + box_area(b) - intersection
    return jnp.where(union > 0, intersection / jnp.where(union > 0, union, 1.0), 0.0)


def boxes_to_pixel_masks(boxes_xyxy: ArrayLike, out_hw: tuple[int, int]) -> jax.Array:
    """Which pixels of an ``h x w`` grid have their centre inside each box.

    Paper III-C; docs/design.md §4.

    Pixel (i, j) is inside box (x1, y1, x2, y2) iff ``x1 <= j + 0.5 < x2`` and
    ``y1 <= i + 0.5 < y2``.

    Args:
      boxes_xyxy: [..., 4] float, in grid cells.
      out_hw: (h, w), static.

    Returns:
      [..., h, w] bool.
    """
    boxes_xyxy = jnp.asarray(boxes_xyxy, jnp.float32)
    h, w = out_hw
    ys = jnp.arange(h, dtype=jnp.float32) + 0.5  # [h]
    xs = jnp.arange(w, dtype=jnp.float32) + 0.5  # [w]
    b = boxes_xyxy[..., None, :]  # [..., 1, 4]
    in_y = (b[..., 1] <= ys) & (ys < b[..., 3])  # [..., h]
    in_x = (b[..., 0] <= xs) & (xs < b[..., 2])  # [..., w]
    return in_y[..., :, None] & in_x[..., None, :]  # [..., h, w]
