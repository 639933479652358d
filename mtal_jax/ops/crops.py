"""Batched crop-and-resize by gather-based bilinear sampling (pure ``jnp``).

Paper III-C; docs/design.md §4.

Sampling convention (the same everywhere in this module): pixel ``m`` of a grid covers
[m, m + 1) and has its centre at ``m + 0.5``. Resizing the window [x1, x2) to ``n`` output
pixels samples output pixel ``u`` at ``x = x1 + (u + 0.5) * (x2 - x1) / n``, i.e. at source
index ``x - 0.5``, bilinearly between the two nearest source pixel centres; positions
beyond the first or last centre take the edge value (clamp). This is TensorFlow's
``half_pixel_centers`` convention and ``jax.image.resize(method="linear")`` without
antialiasing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def sample_positions(start: ArrayLike, end: ArrayLike, num: int) -> jax.Array:
    """Source indices (pixel-centre index space) of ``num`` output pixels spanning [start, end).

    Args:
      start: [...] float window start in source pixels.
      end: [...] float window end in source pixels.
      num: number of output pixels (static).

    Returns:
      [..., num] float32: ``start + (u + 0.5) * (end - start) / num - 0.5``.
    """
    start = jnp.asarray(start, jnp.float32)[..., None]
    end = jnp.asarray(end, jnp.float32)[..., None]
    u = jnp.arange(num, dtype=jnp.float32) + 0.5  # [num]
    return start + u * (end - start) / num - 0.5


def linear_taps(positions: ArrayLike, size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The two source pixels and the weight of the upper one for linear interpolation.

    Args:
      positions: [...] float source indices (pixel ``m`` has its centre at index ``m``).
      size: number of source pixels (static).

    Returns:
      (lo [...] int32, hi [...] int32, w_hi [...] float32) with ``lo, hi`` in [0, size) and
      value = (1 - w_hi) * src[lo] + w_hi * src[hi]; clamped at the edges.
    """
    positions = jnp.clip(jnp.asarray(positions, jnp.float32), 0.0, size - 1.0)
    lo = jnp.floor(positions)
    w_hi = positions - lo
    lo = lo.astype(jnp.int32)
    hi = jnp.minimum(lo + 1, size - 1)
    return lo, hi, w_hi


def interpolation_matrix(positions: ArrayLike, size: int) -> jax.Array:
    """Linear interpolation as a matrix: ``values = matrix @ src`` (separable resampling).

    Args:
      positions: [..., n] float source indices.
      size: number of source pixels (static).

    Returns:
      [..., n, size] float32, each row has at most two non-zeros summing to 1.
    """
    lo, hi, w_hi = linear_taps(positions, size)
    return (1.0 - w_hi)[..., None] * jax.nn.one_hot(lo, size) + w_hi[..., None] * jax.nn.one_hot(
        hi, size
    )


def crop_and_resize(
    images: ArrayLike,
    image_index: ArrayLike,
    windows_xyxy: ArrayLike,
    out_hw: tuple[int, int],
) -> jax.Array:
    """Crops windows out of a batch of images and resizes them, in one gather.

    Each crop reads four source pixels per output pixel from the flattened batch, so the
    cost is proportional to the number of output pixels, not to the image size.

    Args:
      images: [B, H, W, C] any dtype (uint8 images stay uint8 in the gather).
      image_index: [P] int, which image each window is cut from.
      windows_xyxy: [P, 4] float, xyxy in input pixels (may extend past the image: edge
        pixels are repeated).
      out_hw: (S_h, S_w) output size (static).

    Returns:
      [P, S_h, S_w, C] float32 bilinear samples.
    """
    images = jnp.asarray(images)
    image_index = jnp.asarray(image_index, jnp.int32)
    windows_xyxy = jnp.asarray(windows_xyxy, jnp.float32)
    b, h, w, c = images.shape
    out_h, out_w = out_hw
    y_lo, y_hi, wy = linear_taps(
        sample_positions(windows_xyxy[:, 1], windows_xyxy[:, 3], out_h), h
    )  # [P, S_h]
    x_lo, x_hi, wx = linear_taps(
        sample_positions(windows_xyxy[:, 0], windows_xyxy[:, 2], out_w), w
    )  # [P, S_w]
    flat = images.reshape(b * h * w, c)
    row_base = image_index[:, None] * h  # [P, 1]

    def gather(rows, cols):
        index = (row_base + rows)[:, :, None] * w + cols[:, None, :]  # [P, S_h, S_w]
        return jnp.take(flat, index, axis=0, mode="clip").astype(jnp.float32)  # [P, S_h, S_w, C]

    wy = wy[:, :, None, None]  # [P, S_h, 1, 1]
    wx = wx[:, None, :, None]  # [P, 1, S_w, 1]
    top = gather(y_lo, x_lo) * (1.0 - wx) + gather(y_lo, x_hi) * wx
    bottom = gather(y_hi, x_lo) * (1.0 - wx) + gather(y_hi, x_hi) * wx
    return top * (1.0 - wy) + bottom * wy
