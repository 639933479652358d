"""The common example format every dataset builder produces (docs/design.md §5).

One example = one image with its detection boxes and its semantic mask:

* ``image``: [H, W, 3] uint8 RGB, stored as PNG (feed a ``PIL.Image`` or PNG/JPEG bytes;
  numpy input would need TensorFlow to encode).
* ``segmentation``: [H, W, 1] uint8 class ids in [0, C_seg) or ``IGNORE_LABEL`` (255).
* ``boxes``: [M, 4] float32, xyxy in pixels of ``image`` (x right, y down, x2 > x1, y2 > y1).
* ``box_labels``: [M] int64 detection class ids in [0, C_det).
* ``image_id``: text, the dataset's own id of the image (file stem, token, ...).
* only where the source has crowd regions (``make_features(crowd=True)``, the COCO folder):
  ``crowd_boxes`` [K, 4] float32 xyxy and ``crowd_labels`` [K] int64, COCO's ``iscrowd``
  annotations of detection classes. They are not objects to detect: evaluation ignores the
  detections inside them (``mtal_jax.coco_map``), training does not see them.

Builders also set ``metadata`` with ``det_classes``, ``seg_classes`` (names) and
``det_to_seg`` (segmentation id of each detection class), read back by ``dataset_meta``.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.structs import IGNORE_LABEL

__all__ = ["IGNORE_LABEL", "make_features", "make_metadata", "read_metadata"]


def make_features(*, crowd: bool = False) -> tfds.features.FeaturesDict:
    """Returns the TFDS feature spec shared by every builder (with ``crowd``, also the
    crowd regions)."""
    spec = {
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
        "segmentation": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
        "boxes": tfds.features.Tensor(shape=(None, 4), dtype=np.float32),
        "box_labels": tfds.features.Tensor(shape=(None,), dtype=np.int64),
        "image_id": tfds.features.Text(),
    }
    if crowd:
        spec["crowd_boxes"] = tfds.features.Tensor(shape=(None, 4), dtype=np.float32)
        spec["crowd_labels"] = tfds.features.Tensor(shape=(None,), dtype=np.int64)
    return tfds.features.FeaturesDict(spec)


def make_metadata(
    det_classes: list[str], seg_classes: list[str], det_to_seg: list[int]
) -> tfds.core.MetadataDict:
    """Builds the metadata every builder stores beside its examples.

    Args:
      det_classes: C_det detection class names.
      seg_classes: C_seg segmentation class names.
      det_to_seg: [C_det] segmentation class id of each detection class.

    Raises:
      ValueError: when there is no detection or segmentation class (a network with no
        class to predict), or ``det_to_seg`` has the wrong length or an id outside
        [0, C_seg).
    """
    if not det_classes or not seg_classes:
        raise ValueError(
            f"the dataset has {len(det_classes)} detection and {len(seg_classes)} "
            "segmentation classes: both tasks need at least one (check the categories of "
            "the annotations, det_categories / det_classes and the class map)"
        )
    if len(det_to_seg) != len(det_classes):
        raise ValueError(f"det_to_seg has {len(det_to_seg)} entries for {len(det_classes)} classes")
    if any(not 0 <= s < len(seg_classes) for s in det_to_seg):
        raise ValueError(f"det_to_seg {det_to_seg} has ids outside [0, {len(seg_classes)})")
    return tfds.core.MetadataDict(
        det_classes=list(det_classes), seg_classes=list(seg_classes), det_to_seg=list(det_to_seg)
    )


def read_metadata(info: tfds.core.DatasetInfo) -> dict:
    """Returns ``{"det_classes", "seg_classes", "det_to_seg"}`` stored by a builder."""
    md = info.metadata
    return {k: list(md[k]) for k in ("det_classes", "seg_classes", "det_to_seg")}
