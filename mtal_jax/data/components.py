"""Detection boxes from connected components of thing classes in a label map.

Used where a dataset has semantic labels but no instances (CamVid): touching objects
of one class merge into one box and an occluded object may split in two, so the boxes
are approximate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def component_boxes(
    label_map: np.ndarray, class_ids: Sequence[int], *, min_area: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of the 4-connected components of each class in ``class_ids``.

    Args:
      label_map: [H, W] integer class ids.
      class_ids: C_det segmentation ids of the thing classes; the i-th gives
        detection class i.
      min_area: components with fewer pixels are dropped.

    Returns:
      ``(boxes, labels)``: [M, 4] float32 xyxy pixel boxes (tight, exclusive max,
      see ``rasterize``) and [M] int64 detection class ids, in class order, then
      in raster order of each component's first pixel.
    """
    boxes, labels = [], []
    for det_id, class_id in enumerate(class_ids):
        components, count = ndimage.label(label_map == class_id, structure=_FOUR_CONNECTED)
        if count == 0:
            continue
        areas = np.bincount(components.ravel(), minlength=count + 1)
        for index, slices in enumerate(ndimage.find_objects(components), start=1):
            if slices is None or areas[index] < min_area:
                continue
            rows, cols = slices
            boxes.append([cols.start, rows.start, cols.stop, rows.stop])
            labels.append(det_id)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)
