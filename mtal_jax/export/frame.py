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
      column), ``{"rows_grid", "cols_grid"}`` (grid cell) and ``"scale"`` [4] (the box
      scale, x y x y).
    """
    (h0, w0), (nh, nw), (hh, ww), (gh, gw) = original_hw, content_hw, input_hw, grid_hw
    return {
        "rows_input": _cells(h0, nh, hh, hh),
        "cols_input": _cells(w0, nw, ww, ww),
        "rows_grid": _cells(h0, nh, gh, hh),
        "cols_grid": _cells(w0, nw, gw, ww),
        "scale": np.array([w0 / nw, h0 / nh, w0 / nw, h0 / nh], np.float64),
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
