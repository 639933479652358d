"""The classes of a COCO-style folder (``coco_folder``), from its categories and options.

A pure function of the COCO categories (id -> name, read by the builder) and the user's
class options (``det_categories``, ``seg_classes``, ``det_to_seg``): the C_det detection
and C_seg segmentation class names, ``det_to_seg``, and the maps from a category id to
its detection class (None: no box) and to its segmentation class (``IGNORE_LABEL`` when
``seg_classes`` has no such name). Defaults: every category is a detection class, in id
order; the segmentation classes are the category names + ``"background"``, the class
of the pixels no mask covers. The metadata of the common data format (docs/design.md
§5) comes from the first three.
"""

from __future__ import annotations

import os

from mtal_jax.data import errors
from mtal_jax.structs import IGNORE_LABEL


def resolve_classes(
    categories: dict[int | str, str],
    *,
    det_categories: list[str] | None,
    seg_classes: list[str] | None,
    det_to_seg: list[int] | None,
    path: str | os.PathLike,
) -> dict:
    """Class names and maps of a COCO folder.

    Args:
      categories: COCO category id -> name (ids sorted), those of every split's file.
      det_categories: category names that are detection classes (C_det, in this order);
        None: every category in id order ([] is no class, not every one).
      seg_classes: C_seg segmentation class names; None or []: the category names +
        ``"background"``.
      det_to_seg: [C_det] segmentation id of each detection class; None: by name.
      path: the annotation file the categories come from (named in errors).

    Returns:
      ``det_classes`` [C_det] names, ``seg_classes`` [C_seg] names, ``det_to_seg``
      [C_det] ints, ``category_to_det`` (category id -> detection id, or None: no box)
      and ``category_to_seg`` (category id -> segmentation id, or ``IGNORE_LABEL``).

    Raises:
      DatasetError: two categories share a name, or one is named ``"background"`` while
        ``seg_classes`` is not given (``MALFORMED_RECORD``).
      ValueError: ``det_categories`` names no category; ``seg_classes`` lacks
        ``"background"``; a detection class is not in ``seg_classes`` and no
        ``det_to_seg`` is given.
    """
    names = list(categories.values())
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise errors.DatasetError(
            f"category names {doubled} are given to several ids: a class is one name",
            path=path, record="categories", reason=errors.MALFORMED_RECORD,
        )  # fmt: skip
    if not seg_classes and "background" in names:
        raise errors.DatasetError(
            "a category is named 'background', the class this loader adds for the pixels "
            "no mask covers: rename it, or give seg_classes",
            path=path, record="categories", reason=errors.MALFORMED_RECORD,
        )  # fmt: skip
    det_classes = names if det_categories is None else det_categories
    unknown = [c for c in det_classes if c not in names]
    if unknown:
        raise ValueError(f"det_categories {unknown} are not categories of {path}: {names}")
    seg_classes = seg_classes or names + ["background"]
    if "background" not in seg_classes:
        raise ValueError(
            f"seg_classes {list(seg_classes)} lack 'background': the class of the pixels "
            "no mask covers"
        )
    if det_to_seg is None:
        missing = [c for c in det_classes if c not in seg_classes]
        if missing:
            raise ValueError(f"detection classes {missing} are not in seg_classes; pass det_to_seg")
        det_to_seg = [seg_classes.index(c) for c in det_classes]
    return {
        "det_classes": det_classes,
        "seg_classes": seg_classes,
        "det_to_seg": det_to_seg,
        "category_to_det": {
            i: (det_classes.index(n) if n in det_classes else None) for i, n in categories.items()
        },
        "category_to_seg": {
            i: (seg_classes.index(n) if n in seg_classes else IGNORE_LABEL)
            for i, n in categories.items()
        },
    }
