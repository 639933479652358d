"""Dataset name -> builder preparation (a local variant table, STYLE.md §10).

``load(name, data_dir, root, builder_kwargs)`` prepares the TFDS builder if needed and
returns its random-access sources and class metadata. Builder modules are imported on
use so that a missing optional dependency of one dataset never breaks the others.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

from mtal_jax.data import features

# name -> (module, takes a user data root)
_BUILDERS: dict[str, tuple[str, bool]] = {
    "synthetic_driving": ("mtal_jax.data.synthetic", False),
    "camvid": ("mtal_jax.data.camvid", True),
    "nuimages": ("mtal_jax.data.nuimages", True),
    "a9": ("mtal_jax.data.openlabel", True),
    "openlabel": ("mtal_jax.data.openlabel", True),
    "coco_folder": ("mtal_jax.data.coco_folder", True),
}

NAMES = tuple(_BUILDERS)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A prepared dataset.

    Attributes:
      sources: split name -> random-access data source (``len``, ``[i]``).
      det_classes: C_det names.
      seg_classes: C_seg names.
      det_to_seg: [C_det] segmentation id of each detection class.
      name: dataset name.
      builder: the TFDS builder (info, paths).
    """

    sources: dict[str, Any]
    det_classes: list[str]
    seg_classes: list[str]
    det_to_seg: list[int]
    name: str
    builder: Any


def prepare(name: str, *, data_dir: str, root: str = "", builder_kwargs: dict | None = None):
    """Prepares (if needed) and returns the TFDS builder of dataset ``name``.

    Raises:
      ValueError: unknown dataset name (the message lists the valid ones).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    module_name, needs_root = _BUILDERS[name]
    module = importlib.import_module(module_name)
    data_dir = os.path.expanduser(data_dir)
    kwargs = dict(builder_kwargs or {})
    if needs_root:
        return module.prepare(data_dir, os.path.expanduser(root), **kwargs)
    return module.prepare(data_dir, **kwargs)


def load(
    name: str, *, data_dir: str, root: str = "", builder_kwargs: dict | None = None
) -> Dataset:
    """Prepares dataset ``name`` and opens every split as a data source."""
    builder = prepare(name, data_dir=data_dir, root=root, builder_kwargs=builder_kwargs)
    meta = features.read_metadata(builder.info)
    sources = {split: builder.as_data_source(split=split) for split in builder.info.splits}
    return Dataset(sources=sources, name=name, builder=builder, **meta)
