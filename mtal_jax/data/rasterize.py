"""Instance masks from COCO RLE and polygons, tight boxes, and semantic maps from masks.

Pixel convention: pixel (row i, column j) covers [j, j+1) x [i, i+1), so the tight
box of a mask is ``[x_min, y_min, x_max + 1, y_max + 1]`` (as ``pycocotools.mask.toBbox``).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Sequence

import numpy as np
import PIL.Image
import PIL.ImageDraw
from pycocotools import mask as mask_utils

from mtal_jax.data import errors
from mtal_jax.structs import IGNORE_LABEL


def _bad_mask(detail: str, path, record) -> errors.DatasetError:
    return errors.DatasetError(detail, path=path, record=record, reason=errors.BAD_MASK)


def decode_rle(rle, *, path="<memory>", record: str | None = None) -> np.ndarray:
    """Decodes a COCO RLE ``{"size": [h, w], "counts": str | bytes | list[int]}``.

    ``counts`` as a string or bytes is the compressed form, as a list the
    uncompressed run lengths.

    Returns:
      [h, w] bool mask.

    Raises:
      DatasetError: ``bad_mask`` when the record is not a valid RLE.
    """
    try:
        height, width = (int(v) for v in rle["size"])
        counts = rle["counts"]
        if isinstance(counts, list):
            runs = [int(c) for c in counts]
            rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        else:
            counts = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
            runs = _runs_of_compressed(counts)
            rle = {"size": [height, width], "counts": counts}
        # pycocotools fills what the runs do not cover with whatever memory holds
        if any(r < 0 for r in runs) or sum(runs) != height * width:
            raise ValueError(
                f"its runs cover {sum(runs)} pixels (negative: {any(r < 0 for r in runs)}), "
                f"its size {height} x {width} = {height * width}"
            )
        mask = mask_utils.decode(rle)
    except (KeyError, TypeError, ValueError, OverflowError, UnicodeEncodeError) as e:
        raise _bad_mask(f"invalid RLE mask ({type(e).__name__}: {e})", path, record) from e
    if mask.shape != (height, width):
        raise _bad_mask(f"RLE decodes to {mask.shape}, size says {(height, width)}", path, record)
    return mask.astype(bool)


def _runs_of_compressed(counts: bytes) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``: 5 bits
    per character from ``"0"``, a continuation bit, a sign bit on the last character, runs
    after the second stored as differences from the run two before).

    Raises:
      ValueError: a character outside the code, or a value cut short.
    """
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise ValueError("compressed RLE counts end inside a value")
            c = counts[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"byte {counts[p]!r} at {p} is not a compressed RLE character")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def decode_nuimages_mask(mask: dict, *, path="<memory>", record: str | None = None) -> np.ndarray:
    """Decodes a nuImages mask: ``counts`` is base64 of the compressed COCO RLE bytes.

    Returns:
      [h, w] bool mask (h, w from ``mask["size"]``).
    """
    try:
        counts = base64.b64decode(mask["counts"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as e:
        raise _bad_mask(
            f"mask counts are not base64 ({type(e).__name__}: {e})", path, record
        ) from e
    return decode_rle({"size": mask.get("size"), "counts": counts}, path=path, record=record)


def _finite_coordinates(values, path, record) -> list[float]:
    """``values`` as floats; a ``bad_mask`` error naming the first bad value otherwise."""
    try:
        xy = [float(v) for v in values]
    except (TypeError, ValueError, OverflowError) as e:
        raise _bad_mask(
            f"non-numeric polygon coordinates ({type(e).__name__}: {e})", path, record
        ) from e
    bad = [v for v in xy if not math.isfinite(v)]
    if bad:
        raise _bad_mask(f"polygon coordinate {bad[0]!r} is not finite", path, record)
    return xy


def _clip_window(height: int, width: int) -> tuple[float, float, float, float]:
    """The rectangle polygons are clipped to: the image plus four image sizes on each side.

    Far enough that rasterisers round the clipped polygon like the original (measured on
    random polygons: 9 pixels differ in 300 with this margin, 296 with a margin of one
    pixel), near enough to bound their work and memory.
    """
    margin = 4.0 * max(height, width) + 1.0
    return -margin, -margin, width + margin, height + margin


def clip_polygon(
    points: Sequence[tuple[float, float]], x_min: float, y_min: float, x_max: float, y_max: float
) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clipping of a polygon to the rectangle [x_min, x_max] x [y_min, y_max].

    The clipped polygon covers exactly the part of the polygon inside the rectangle, so
    rasterised inside a rectangle larger than the image it gives the same region, while
    the rasteriser only ever sees bounded coordinates (huge ones overflow pycocotools'
    and PIL's integer arithmetic; pycocotools allocates in proportion to the perimeter,
    which for a NaN or a 1e12 coordinate exhausts memory or crashes the process).

    Returns:
      The clipped vertices (empty when nothing lies inside).
    """
    pts = [(float(x), float(y)) for x, y in points]
    for axis, bound, keep_above in ((0, x_min, True), (0, x_max, False), (1, y_min, True), (1, y_max, False)):  # fmt: skip

        def inside(p, axis=axis, bound=bound, keep_above=keep_above):
            return p[axis] >= bound if keep_above else p[axis] <= bound

        def cross(p, q, axis=axis, bound=bound):
            t = (bound - p[axis]) / (q[axis] - p[axis])
            other = p[1 - axis] + t * (q[1 - axis] - p[1 - axis])
            return (bound, other) if axis == 0 else (other, bound)

        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        pts = out
        if not pts:
            break
    return pts


def coco_polygons_mask(
    polygons: Sequence[Sequence[float]], height: int, width: int, *, path="<memory>", record=None
) -> np.ndarray:
    """Rasterises COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` (union) as pycocotools does.

    Coordinates may lie outside the image (polygons reaching far outside are clipped to
    a window around it first, so that memory stays bounded), but must be finite.

    Returns:
      [height, width] bool mask.

    Raises:
      DatasetError: ``bad_mask`` for a polygon that is not a list of at least three
        finite x, y pairs (the message names the first bad value).
    """
    if not isinstance(polygons, (list, tuple)) or not polygons:
        raise _bad_mask("COCO polygons must be a non-empty list of coordinate lists", path, record)
    clipped = []
    for polygon in polygons:
        if not isinstance(polygon, (list, tuple)):
            raise _bad_mask(f"COCO polygon {polygon!r:.80} is not a list", path, record)
        xy = _finite_coordinates(polygon, path, record)
        if len(xy) < 6 or len(xy) % 2:
            raise _bad_mask(
                "a COCO polygon needs an even number (>= 6) of coordinates", path, record
            )
        points = clip_polygon(list(zip(xy[0::2], xy[1::2])), *_clip_window(height, width))
        flat = [v for p in points for v in p]
        if not all(math.isfinite(v) for v in flat):  # Overflow near the float64 limit.
            raise _bad_mask(f"polygon coordinates too large: {polygon!r:.120}", path, record)
        if len(points) >= 3:
            clipped.append(flat)
    if not clipped:
        return np.zeros((height, width), bool)
    rles = mask_utils.frPyObjects(clipped, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _depths(hierarchy: Sequence[Sequence[int]] | None, n: int) -> list[int]:
    """Nesting depth of each contour from OpenCV-style ``[next, prev, child, parent]``."""
    if hierarchy is None:
        return [0] * n
    parents = [int(h[3]) if h is not None and len(h) == 4 else -1 for h in hierarchy]
    depths = []
    for i in range(n):
        depth, j = 0, parents[i]
        while 0 <= j < n and depth <= n:
            depth, j = depth + 1, parents[j]
        depths.append(depth)
    return depths


def contour_mask(
    contours: Sequence[Sequence[float]],
    height: int,
    width: int,
    *,
    hierarchy: Sequence[Sequence[int]] | None = None,
    path="<memory>",
    record: str | None = None,
) -> np.ndarray:
    """Rasterises pixel-index contours (OpenLABEL ``poly2d`` / OpenCV ``findContours``).

    Vertices are pixel indices of boundary pixels, so boundary pixels belong to the
    mask. With a hierarchy (``[next, prev, first_child, parent]`` per contour), contours
    at odd nesting depth are holes: their inside is cleared, their outline kept.

    Args:
      contours: flat ``[x0, y0, x1, y1, ...]`` lists (one point or two are allowed).
      height, width: mask size.
      hierarchy: optional per-contour hierarchy; without it all contours are filled.

    Returns:
      [height, width] bool mask.
    """
    canvas = PIL.Image.new("L", (width, height), 0)
    draw = PIL.ImageDraw.Draw(canvas)
    if hierarchy is not None and (
        not isinstance(hierarchy, (list, tuple)) or len(hierarchy) != len(contours)
    ):
        raise _bad_mask(
            f"hierarchy {hierarchy!r:.80} is not one row per contour ({len(contours)})",
            path, record,
        )  # fmt: skip
    try:
        depths = _depths(hierarchy, len(contours))
    except (TypeError, ValueError, OverflowError) as e:
        raise _bad_mask(
            f"hierarchy rows must be 4 integers [next, prev, child, parent] "
            f"({type(e).__name__}: {e})", path, record,
        ) from None  # fmt: skip
    for depth, contour in sorted(zip(depths, contours), key=lambda t: t[0]):
        if not isinstance(contour, (list, tuple)):
            raise _bad_mask(f"polygon {contour!r:.80} is not a list", path, record)
        xy = _finite_coordinates(contour, path, record)
        if len(xy) < 2 or len(xy) % 2:
            raise _bad_mask("a polygon needs finite x, y pairs", path, record)
        # Clipped far outside the canvas: PIL's integer arithmetic overflows on huge
        # coordinates (wrong pixels); the clipped outline lies off the canvas.
        num_points = len(xy) // 2
        points = clip_polygon(list(zip(xy[0::2], xy[1::2])), *_clip_window(height, width))
        if not all(math.isfinite(v) for p in points for v in p):
            raise _bad_mask(f"polygon coordinates too large: {contour!r:.120}", path, record)
        hole = depth % 2 == 1
        if not points:
            continue
        if num_points < 3 or len(points) < 3:
            draw.line(points, fill=1) if len(points) >= 2 else draw.point(points, fill=1)
        else:
            draw.polygon(points, fill=0 if hole else 1, outline=1)
    return np.asarray(canvas, dtype=bool)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight xyxy box of a [H, W] bool mask ([4] float32), or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def paint_semantic(
    height: int,
    width: int,
    *,
    background: int,
    layers: Iterable[tuple[np.ndarray, int]],
    unmasked_boxes: Iterable[np.ndarray] = (),
) -> np.ndarray:
    """Composes a semantic map from instance or surface masks.

    Args:
      height, width: map size.
      background: label of pixels no mask covers.
      layers: ``(mask [H, W] bool, label)`` painted in order, later layers on top
        (use ``IGNORE_LABEL`` for objects of ignored categories).
      unmasked_boxes: xyxy boxes of objects that have no mask: pixels inside them
        still at ``background`` get ``IGNORE_LABEL`` (their class is unknown there).

    Returns:
      [height, width] uint8 labels.
    """
    semantic = np.full((height, width), background, np.uint8)
    for mask, label in layers:
        semantic[mask] = label
    for box in unmasked_boxes:
        x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
        x2, y2 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
        patch = semantic[y1:y2, x1:x2]  # A view: writes go to `semantic`.
        patch[patch == background] = IGNORE_LABEL
    return semantic
