"""Checks shared by every builder and the assembly of one example in the common format.

The format itself is defined by ``mtal_jax.data.features``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtal_jax.data import errors, files


def malformed(detail: str, path, record: str | None) -> errors.DatasetError:
    """A ``malformed_record`` ``DatasetError``: ``detail`` about ``record`` of ``path``."""
    return errors.DatasetError(detail, path=path, record=record, reason=errors.MALFORMED_RECORD)


def field(row, name: str, path, record: str | None):
    """``row[name]``; a ``malformed_record`` error naming ``path`` and ``record`` when the
    row is not an object or lacks the field."""
    if not isinstance(row, dict) or name not in row:
        raise malformed(f"missing field {name!r}", path, record)
    return row[name]


def clip_box(
    box_xyxy: Sequence[float], height: int, width: int, *, path, record: str | None
) -> tuple[np.ndarray, bool]:
    """Clips one xyxy pixel box to the image.

    Args:
      box_xyxy: [4] x1, y1, x2, y2 in pixels.
      height, width: image size.
      path, record: where the box comes from (for errors).

    Returns:
      ``(box [4] float32, clipped)``; ``clipped`` is True when the box reached
      outside the image and was cut to it.

    Raises:
      DatasetError: ``malformed_record`` for a non-numeric, non-finite or inverted
        box; ``box_outside_image`` when nothing of the box lies inside the image.
    """
    try:
        box = np.asarray(box_xyxy, np.float64).reshape(4)
    except (TypeError, ValueError) as e:
        raise errors.DatasetError(
            f"box {box_xyxy!r} is not 4 numbers",
            path=path,
            record=record,
            reason=errors.MALFORMED_RECORD,
        ) from e
    if not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise errors.DatasetError(
            f"box {box.tolist()} is not finite with x2 > x1 and y2 > y1",
            path=path,
            record=record,
            reason=errors.MALFORMED_RECORD,
        )
    clipped_box = np.clip(box, 0.0, [width, height, width, height])
    if clipped_box[2] <= clipped_box[0] or clipped_box[3] <= clipped_box[1]:
        raise errors.DatasetError(
            f"box {box.tolist()} lies outside the {width}x{height} image",
            path=path,
            record=record,
            reason=errors.BOX_OUTSIDE_IMAGE,
        )
    return clipped_box.astype(np.float32), bool(np.any(clipped_box != box))


def _hw(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _wxh(hw: tuple) -> str:
    return f"{hw[1]}x{hw[0]} (WxH)" if len(hw) == 2 else f"{list(hw)!r:.80} (not [height, width])"


def check_size(
    actual_hw: tuple[int, int], expected_hw: tuple[int, int], *, path, record: str | None, what: str
) -> None:
    """Raises ``DatasetError(size_mismatch)`` when ``what`` is not the image's size.

    Args:
      actual_hw: the size of ``what`` (declared in an annotation, or of a mask / label map),
        as written (any value: a malformed size is a mismatch too).
      expected_hw: the real size of the decoded image.
      path, record: where ``what`` comes from.
      what: the thing whose size ``actual_hw`` is (e.g. "COCO images[].height/width").
    """
    actual_hw, expected_hw = _hw(actual_hw), _hw(expected_hw)
    if actual_hw != expected_hw:
        raise errors.DatasetError(
            f"{what} is {_wxh(actual_hw)} but the image is {_wxh(expected_hw)}",
            path=path,
            record=record,
            reason=errors.SIZE_MISMATCH,
        )


def record_id(value, *, what: str, path, record: str | None) -> int | str:
    """An id or token read from an annotation: an int (integral floats too) or a string.

    Raises:
      DatasetError: ``malformed_record`` for anything else (a list, an object, NaN, a bool).
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise errors.DatasetError(
            f"{what} {value!r:.80} is not a number or a string",
            path=path,
            record=record,
            reason=errors.MALFORMED_RECORD,
        )
    return value


def check_new_key(seen: dict, key, *, what: str, path, record: str | None) -> None:
    """Records ``key`` in ``seen`` (key -> record); a ``duplicate_key`` error when it is there.

    Two images with one key would overwrite each other in the prepared dataset, and their
    annotations (indexed by the key) would be mixed.
    """
    if key in seen:
        raise errors.DatasetError(
            f"duplicate {what} {key!r:.200} (first at {seen[key]})",
            path=path,
            record=record,
            reason=errors.DUPLICATE_KEY,
        )
    seen[key] = record


def make_example(
    *,
    image: bytes,
    segmentation: np.ndarray,
    boxes: Sequence[np.ndarray],
    box_labels: Sequence[int],
    image_id: str,
    crowd_boxes: Sequence[np.ndarray] | None = None,
    crowd_labels: Sequence[int] | None = None,
) -> dict:
    """Assembles one example of the common format.

    Args:
      image: encoded RGB image (JPEG or PNG bytes).
      segmentation: [H, W] uint8 class ids or IGNORE_LABEL.
      boxes: M boxes, each [4] float32 xyxy pixels.
      box_labels: M detection class ids.
      image_id: the dataset's id of the image.
      crowd_boxes: K crowd regions, each [4] float32 xyxy pixels (only for builders whose
        features have them, ``make_features(crowd=True)``).
      crowd_labels: K detection class ids of the crowd regions.

    Returns:
      A dict matching ``features.make_features()`` (``crowd=True`` with crowd regions).
    """
    assert segmentation.ndim == 2 and segmentation.dtype == np.uint8, segmentation.dtype
    assert len(boxes) == len(box_labels)
    example = {
        "image": image,
        "segmentation": files.encode_png(segmentation),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "box_labels": np.asarray(box_labels, np.int64).reshape(-1),
        "image_id": image_id,
    }
    if crowd_boxes is not None:
        assert crowd_labels is not None and len(crowd_boxes) == len(crowd_labels)
        example["crowd_boxes"] = np.asarray(crowd_boxes, np.float32).reshape(-1, 4)
        example["crowd_labels"] = np.asarray(crowd_labels, np.int64).reshape(-1)
    return example
