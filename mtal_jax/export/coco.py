"""COCO 1.0 instances file of a selection, with the model's pre-annotations (pure).

Everything is in the pixels of the exported (original) image (``export.frame``). The
folder layout CVAT imports as "COCO 1.0" (``annotations/instances_default.json`` next
to ``images/``). Categories are the segmentation classes (id = class index + 1,
``supercategory`` "thing" for the classes detection maps into, else "stuff"); a
detection's category is the segmentation class its detection class maps to
(``det_to_seg``). Annotations:

- two per scored detection (``iscrowd`` 0, ``score`` = the detection confidence): its box
  (``bbox``, an empty ``segmentation``: CVAT makes a rectangle only of such an
  annotation; of one with both it keeps the mask), and its BoxMask as uncompressed RLE
  (the BoxMask rule at the image's pixels, ``export.frame.box_mask``; none when empty);
- one per segmentation class present in the predicted segmentation (``iscrowd`` 1, RLE):
  the pixels of that class not covered by a detection's mask, ``score`` = their mean
  softmax confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtal_jax.analysis import overlays
from mtal_jax.export import frame


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE of a mask (column-major runs, starting with background).

    Args:
      mask: [H, W] bool.

    Returns:
      ``{"size": [H, W], "counts": [int, ...]}``.
    """
    mask = np.asarray(mask, bool)
    flat = mask.reshape(-1, order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def _mask_bbox(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [
        float(cols[0]),
        float(rows[0]),
        float(cols[-1] + 1 - cols[0]),
        float(rows[-1] + 1 - rows[0]),
    ]


def image_annotations(
    item: dict[str, Any], *, image_id: int, first_id: int, num_seg_classes: int
) -> list[dict[str, Any]]:
    """The annotations of one image.

    Args:
      item: ``export.directory`` item (``boxes``, ``det_scores``, ``box_classes``,
        ``box_valid``, ``box_masks`` [K, h, w] and what ``frame.box_mask`` reads,
        ``seg_labels_full``, ``seg_confidence_full``).
      image_id: the COCO image id.
      first_id: id of the first annotation.
      num_seg_classes: C_seg.

    Returns:
      Annotation dicts with consecutive ids from ``first_id``.
    """
    seg = frame.full(item, "seg_labels_full")
    conf = frame.full(item, "seg_confidence_full")
    height, width = seg.shape
    out: list[dict[str, Any]] = []
    covered = np.zeros((height, width), bool)
    for k in np.flatnonzero(np.asarray(item["box_valid"], bool)):
        x1, y1, x2, y2 = np.clip(np.asarray(item["boxes"][k], np.float64), 0, [width, height] * 2)
        common = {
            "image_id": image_id,
            "category_id": int(item["box_classes"][k]) + 1,
            "iscrowd": 0,
            "score": float(item["det_scores"][k]),
        }
        # The box alone (an empty segmentation: CVAT's COCO import makes a rectangle only
        # of such an annotation, and keeps the mask, not the box, of one with both) ...
        out.append(
            {
                "id": first_id + len(out), **common,
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "area": float((x2 - x1) * (y2 - y1)), "segmentation": [],
            }
        )  # fmt: skip
        # ... and its BoxMask as a mask of its own (none when it is empty)
        mask = frame.box_mask(item, int(k))
        if mask.any():
            covered |= mask
            out.append(
                {
                    "id": first_id + len(out), **common, "bbox": _mask_bbox(mask),
                    "area": float(mask.sum()), "segmentation": rle_encode(mask),
                }
            )  # fmt: skip
    for c in range(num_seg_classes):
        mask = (seg == c) & ~covered
        if not mask.any():
            continue
        out.append(
            {
                "id": first_id + len(out),
                "image_id": image_id,
                "category_id": c + 1,
                "bbox": _mask_bbox(mask),
                "area": float(mask.sum()),
                "segmentation": rle_encode(mask),
                "iscrowd": 1,
                "score": float(conf[mask].mean()),
            }
        )
    return out


SCORE_ATTRIBUTE = {
    "name": "score",
    "mutable": False,
    "input_type": "number",
    "default_value": "0",
    "values": ["0", "1", "0.001"],  # CVAT's number attribute: min, max, step
}
"""The label attribute CVAT needs to keep each annotation's ``score`` (the confidence)."""


def cvat_labels(seg_classes: Sequence[str]) -> list[dict[str, Any]]:
    """CVAT's label definitions (a project's or task's "Raw" labels) of the categories of
    ``instances``, each with the ``score`` attribute: CVAT keeps only the attributes its
    labels declare, so without it every pre-annotation's confidence is dropped on import.

    Args:
      seg_classes: C_seg names (the categories, in id order).

    Returns:
      ``[{"name", "color", "type": "any", "attributes": [SCORE_ATTRIBUTE]}, ...]``.
    """
    colours = overlays.palette(len(seg_classes))
    return [
        {
            "name": name,
            "color": "#" + "".join(f"{int(v):02x}" for v in colour),
            "type": "any",
            "attributes": [dict(SCORE_ATTRIBUTE)],
        }
        for name, colour in zip(seg_classes, colours)
    ]


def instances(
    items: Sequence[dict[str, Any]],
    *,
    seg_classes: Sequence[str],
    det_to_seg: Sequence[int],
    description: str,
) -> dict[str, Any]:
    """The ``instances_default.json`` dict of the selection.

    Args:
      items: ``export.directory`` items in rank order (``file_name`` relative to ``images/``).
      seg_classes: C_seg names.
      det_to_seg: [C_det] segmentation id of each detection class.
      description: ``info.description``.

    Returns:
      The COCO dict (``info``, ``licenses``, ``categories``, ``images``, ``annotations``).
    """
    things = {int(c) for c in det_to_seg}
    categories = [
        {"id": c + 1, "name": name, "supercategory": "thing" if c in things else "stuff"}
        for c, name in enumerate(seg_classes)
    ]
    images, annotations = [], []
    for image_id, item in enumerate(items, start=1):
        height, width = frame.size(item)
        images.append(
            {"id": image_id, "file_name": item["file_name"], "width": int(width),
             "height": int(height), "license": 0, "flickr_url": "", "coco_url": "",
             "date_captured": 0}
        )  # fmt: skip
        annotations += image_annotations(
            item, image_id=image_id, first_id=len(annotations) + 1,
            num_seg_classes=len(seg_classes),
        )  # fmt: skip
    return {
        "info": {"description": description, "version": "1.0", "contributor": "mtal_jax"},
        "licenses": [{"id": 0, "name": "", "url": ""}],
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }
