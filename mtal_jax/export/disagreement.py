"""Disagreement map of one image: where detection and segmentation disagree (pure NumPy).

The map shows the pixels behind the image's consistency scores (paper III-D..F), on the
segmentation output grid (h x w), drawn over the exported image (nearest neighbour; export.frame):

  red     BoxMask pixels whose segmentation label is not the box's class: the pixels that
          raise S_loc (Eq. 1);
  yellow  pixels outside every BoxMask segmented as a detection class: the pixels that
          raise S_seg (Eq. 3), objects the detector may have missed;
  green   BoxMask pixels where both tasks agree;
  box outlines: white, or red when the box's BoxMask is empty (S_loc = 1 with no pixel
  to show).

With non-overlapping BoxMasks, the red share of BoxMask k is its S_loc and the yellow
share of the pixels outside the BoxMasks is S_seg (``component_fractions``; a test checks
this against ``scores.consistency``). Where BoxMasks overlap, a pixel is red when any of
their classes differs from its label.
"""

from __future__ import annotations

import numpy as np

from mtal_jax.analysis import overlays

AGREE, LOC_DISAGREE, SEG_DISAGREE = (
    overlays.AGREE,
    overlays.LOC_DISAGREE,
    overlays.SEG_DISAGREE,
)
COLOURS = {AGREE: (40, 170, 60), LOC_DISAGREE: (230, 30, 30), SEG_DISAGREE: (250, 210, 20)}
"""RGB of each code."""
LEGEND = (
    "Disagreement map: red = box-mask pixels the segmentation labels as another class "
    "(S_loc), yellow = pixels outside every box mask segmented as an object class (S_seg), "
    "green = both tasks agree; a red box outline = a box without box-mask pixels."
)
_WHITE = np.array([255, 255, 255], np.uint8)
_RED = np.array(COLOURS[LOC_DISAGREE], np.uint8)


def component_fractions(
    code_map: np.ndarray, box_masks: np.ndarray, box_valid: np.ndarray
) -> tuple[np.ndarray, float]:
    """The scores as read off the map: red share per BoxMask, yellow share outside.

    Args:
      code_map: [h, w] codes of ``analysis.overlays.disagreement_codes``.
      box_masks: [K, h, w] bool.
      box_valid: [K] bool.

    Returns:
      (loc [K] float64: share of BoxMask k's pixels that are red, 1.0 for an empty
      BoxMask, 0.0 for invalid slots; seg: share of the pixels outside every valid BoxMask
      that are yellow, 0.0 when there is none).
    """
    valid = np.asarray(box_valid, bool)
    masks = np.asarray(box_masks, bool) & valid[:, None, None]
    red = code_map == LOC_DISAGREE
    count = masks.sum((1, 2))
    loc = np.where(count > 0, (masks & red).sum((1, 2)) / np.maximum(count, 1), 1.0)
    outside = ~masks.any(0)
    seg = float((outside & (code_map == SEG_DISAGREE)).sum() / max(int(outside.sum()), 1))
    return np.where(valid, loc, 0.0), seg


def upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an [h, w, ...] grid to [height, width, ...].

    Image pixel (r, c) takes grid cell (floor(r h / height), floor(c w / width)): the cell
    holding the pixel's centre when the grid divides the image evenly (stride 4).
    """
    rows = np.floor(np.arange(height) * grid.shape[0] / height).astype(int)
    cols = np.floor(np.arange(width) * grid.shape[1] / width).astype(int)
    return grid[rows][:, cols]


def _outline(canvas: np.ndarray, box: np.ndarray, rgb: np.ndarray) -> None:
    height, width = canvas.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    c1, r1 = int(np.clip(np.floor(x1), 0, width - 1)), int(np.clip(np.floor(y1), 0, height - 1))
    c2 = int(np.clip(np.ceil(x2) - 1, 0, width - 1))
    r2 = int(np.clip(np.ceil(y2) - 1, 0, height - 1))
    canvas[r1 : r2 + 1, [c1, c2]] = rgb
    canvas[[r1, r2], c1 : c2 + 1] = rgb


def render(
    image: np.ndarray,
    code_map: np.ndarray,
    boxes_xyxy: np.ndarray,
    box_valid: np.ndarray,
    box_masks: np.ndarray,
    *,
    alpha: float = 0.6,
) -> np.ndarray:
    """Draws the codes and the scored boxes over the image.

    Args:
      image: [H, W, 3] uint8.
      code_map: [h, w] codes of ``analysis.overlays.disagreement_codes``.
      boxes_xyxy: [K, 4] boxes in input pixels.
      box_valid: [K] bool, the boxes to outline.
      box_masks: [K, h, w] bool (an empty one gets a red outline).
      alpha: opacity of the code colours.

    Returns:
      [H, W, 3] uint8.
    """
    image = np.asarray(image, np.uint8)
    height, width = image.shape[:2]
    full = upsample(np.asarray(code_map), height, width)
    colour = np.zeros((4, 3), np.float32)
    for code, rgb in COLOURS.items():
        colour[code] = rgb
    out = image.astype(np.float32)
    where = full > 0
    out[where] = (1 - alpha) * out[where] + alpha * colour[full[where]]
    out = np.round(out).astype(np.uint8)
    valid = np.asarray(box_valid, bool)
    empty = ~np.asarray(box_masks, bool).any((1, 2))
    for k in np.flatnonzero(valid):
        _outline(out, np.asarray(boxes_xyxy)[k], _RED if empty[k] else _WHITE)
    return out
