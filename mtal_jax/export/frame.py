"""The exported image's frame: the predictions, made on the network input, mapped back to
the original image (shell, host numpy).

The network sees each image resized (aspect kept) to ``content_hw`` = (nh, nw) and padded to
its input size (H, W) (``data.pipeline.preprocess``); its segmentation comes out on a grid
(h, w) over the padded input. Annotators label the original image (h0, w0), so the export
maps every original pixel, by its centre, to the input pixel and to the grid cell it falls
in (nearest neighbour; the padding is never reached) and scales the boxes by
(w0 / nw, h0 / nh). The index arrays are kept with each exported item and applied when a
writer needs a full-size map, one image at a time, so that a large selection never holds
every full-size mask in memory. An item without a frame (made at the input size) is read
as before: its maps are already at the exported size, and grids are upsampled to it.

BoxMasks (``box_mask``) are not taken from the grid but made again at the exported pixels:
the BoxMask rule (``scores.boxmask.box_masks_from_class_probs``: centre inside the box and
the crop's class probability, sampled bilinearly at the centre, above tau) evaluated at
each exported pixel's centre. A grid BoxMask, read by nearest neighbour, has stair-step
edges a grid cell (4 input pixels) wide; next to the segmentation, which the export reads
bilinearly, they left thin slivers of the box's class outside every mask. Where the grid
divides the image exactly the two rules agree at the cell centres.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtal_jax.export import disagreement


def _cells(size_out: int, size_content: int, cells: int, size_frame: int) -> np.ndarray:
    """[size_out] index of the cell (of ``cells`` over ``size_frame`` input pixels) holding
    the centre of each output pixel, the output spanning ``size_content`` input pixels."""
    centres = (np.arange(size_out) + 0.5) * (size_content / size_out)
    return np.minimum(np.floor(centres * cells / size_frame).astype(np.int64), cells - 1)


def make(
    original_hw: tuple[int, int],
    content_hw: tuple[int, int],
    input_hw: tuple[int, int],
    grid_hw: tuple[int, int],
) -> dict[str, np.ndarray]:
    """The frame of one image.

    Args:
      original_hw: (h0, w0) of the original image.
      content_hw: (nh, nw), its size in the network input before padding.
      input_hw: (H, W), the network input.
      grid_hw: (h, w), the segmentation grid over the input.

    Returns:
      ``{"rows_input", "cols_input"}`` ([h0], [w0]: input pixel of each original row and
      column), ``{"rows_grid", "cols_grid"}`` (grid cell), ``"scale"`` [4] (the box
      scale, x y x y) and ``"to_grid"`` [4] (grid cells per original pixel, x y x y).
    """
    (h0, w0), (nh, nw), (hh, ww), (gh, gw) = original_hw, content_hw, input_hw, grid_hw
    return {
        "rows_input": _cells(h0, nh, hh, hh),
        "cols_input": _cells(w0, nw, ww, ww),
        "rows_grid": _cells(h0, nh, gh, hh),
        "cols_grid": _cells(w0, nw, gw, ww),
        "scale": np.array([w0 / nw, h0 / nh, w0 / nw, h0 / nh], np.float64),
        "to_grid": np.array([nw * gw / (w0 * ww), nh * gh / (h0 * hh)] * 2, np.float64),
    }


def full(item: dict[str, Any], key: str) -> np.ndarray:
    """``item[key]`` (an [H, W] map at the network input) at the exported image's size."""
    value = np.asarray(item[key])
    f = item.get("frame")
    return value if f is None else value[np.ix_(f["rows_input"], f["cols_input"])]


def size(item: dict[str, Any]) -> tuple[int, int]:
    """(height, width) of the exported image."""
    f = item.get("frame")
    if f is None:
        return tuple(np.asarray(item["seg_labels_full"]).shape)
    return len(f["rows_input"]), len(f["cols_input"])


def from_grid(item: dict[str, Any], grid: np.ndarray) -> np.ndarray:
    """An [h, w, ...] grid map (e.g. a BoxMask, the disagreement codes) at the exported
    image's size."""
    grid = np.asarray(grid)
    f = item.get("frame")
    if f is None:
        return disagreement.upsample(grid, *size(item))
    return grid[f["rows_grid"]][:, f["cols_grid"]]


def _interpolation(positions: np.ndarray, size: int) -> np.ndarray:
    """[n, size] linear interpolation rows, edge-clamped (``ops.crops.interpolation_matrix``)."""
    positions = np.clip(positions.astype(np.float32), 0.0, size - 1.0)
    lo = np.floor(positions)
    w_hi = positions - lo
    lo = lo.astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    out = np.zeros((positions.size, size), np.float32)
    rows = np.arange(positions.size)
    out[rows, lo] += 1.0 - w_hi
    out[rows, hi] += w_hi
    return out


def box_mask(item: dict[str, Any], k: int) -> np.ndarray:
    """BoxMask ``k`` at the exported image's size (see the module docstring).

    Args:
      item: an export item: ``frame``, ``box_masks`` [K, h, w], and for the exported-pixel
        rule ``box_class_probs`` [K, S', S'], ``box_windows_grid`` and ``boxes_grid``
        [K, 4] (grid cells) and ``box_mask_tau`` (``scores.boxmask.make_box_mask_extra``).

    Returns:
      [height, width] bool. An item without a frame or without the crop probabilities
      gets the grid BoxMask, upsampled.
    """
    f = item.get("frame")
    if f is None or "box_class_probs" not in item:
        return from_grid(item, np.asarray(item["box_masks"][k], bool))
    height, width = size(item)
    probs = np.asarray(item["box_class_probs"][k], np.float32)  # [S', S']
    x1, y1, x2, y2 = np.asarray(item["boxes_grid"][k], np.float32)
    wx1, wy1, wx2, wy2 = np.asarray(item["box_windows_grid"][k], np.float32)
    to_x, to_y = np.asarray(f["to_grid"][:2], np.float32)
    centres_y = (np.arange(height, dtype=np.float32) + 0.5) * to_y  # in grid cells
    centres_x = (np.arange(width, dtype=np.float32) + 0.5) * to_x
    rows = np.flatnonzero((y1 <= centres_y) & (centres_y < y2))
    cols = np.flatnonzero((x1 <= centres_x) & (centres_x < x2))
    mask = np.zeros((height, width), bool)
    if rows.size and cols.size:
        crop_h, crop_w = probs.shape
        pos_y = (centres_y[rows] - wy1) / max(wy2 - wy1, 1e-6) * crop_h - 0.5
        pos_x = (centres_x[cols] - wx1) / max(wx2 - wx1, 1e-6) * crop_w - 0.5
        sampled = _interpolation(pos_y, crop_h) @ probs @ _interpolation(pos_x, crop_w).T
        mask[np.ix_(rows, cols)] = sampled > float(item["box_mask_tau"])
    return mask
