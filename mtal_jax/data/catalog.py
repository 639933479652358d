"""Dataset name -> builder preparation (a local variant table, docs/design.md §7).

``load(name, data_dir, root, builder_kwargs)`` prepares the TFDS builder if needed and
returns its random-access sources and class metadata. Builder modules are imported on
use so that a missing optional dependency of one dataset never breaks the others.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import inspect
import os
from typing import Any

from mtal_jax.data import decoded_cache, features

# name -> (module, takes a user data root, what in the module names its builder's options:
# a builder class, whose keyword-only parameters but ``root`` are the options, or a function
# returning their names)
_BUILDERS: dict[str, tuple[str, bool, str]] = {
    "synthetic_driving": ("mtal_jax.data.synthetic", False, "parameter_names"),
    "camvid": ("mtal_jax.data.camvid", True, "Camvid"),
    "nuimages": ("mtal_jax.data.nuimages", True, "Nuimages"),
    "a9": ("mtal_jax.data.openlabel", True, "Openlabel"),
    "openlabel": ("mtal_jax.data.openlabel", True, "Openlabel"),
    "coco_folder": ("mtal_jax.data.coco_folder", True, "CocoFolder"),
}

NAMES = tuple(_BUILDERS)

# name -> (what the dataset is called for users, what must be in its root folder)
_ROOT_CONTENTS = {
    "camvid": (
        "CamVid",
        (
            "train.txt and test.txt (lines '<image> <label>' relative to it) with the images and "
            "label PNGs they name (SegNet's CamVid layout)"
        ),
    ),
    "nuimages": (
        "nuImages",
        (
            "the table folders of config.data.builder_kwargs['splits'] (v1.0-train/, v1.0-val/, "
            "each with category.json, sample.json, sample_data.json, object_ann.json, "
            "surface_ann.json, ...) and the images under samples/<camera>/"
        ),
    ),
    "a9": (
        "A9 / TUMTraf",
        (
            "OpenLABEL label JSONs matching the globs of config.data.builder_kwargs['splits'] "
            "(e.g. train/**/*.json) and the images they name"
        ),
    ),
    "openlabel": (
        "OpenLABEL",
        (
            "label JSONs matching the globs of config.data.builder_kwargs['splits'] and the "
            "images they name"
        ),
    ),
    "coco_folder": (
        "COCO-style",
        "annotations/instances_<split>.json and images/ (optionally semantic/)",
    ),
}


class DataRootError(FileNotFoundError):
    """The user's dataset folder is unset or lacks the dataset's files; ``str`` is one line
    naming the option to set and what the folder must contain."""


class BuilderOptionError(ValueError):
    """``config.data.builder_kwargs`` names an option the dataset's builder does not take
    (e.g. a config written for another dataset); ``str`` is one line listing its options."""


def builder_options(name: str) -> tuple[str, ...]:
    """The options ``config.data.builder_kwargs`` may set for dataset ``name``.

    Raises:
      ValueError: unknown dataset name.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    module_name, _, source = _BUILDERS[name]
    target = getattr(importlib.import_module(module_name), source)
    if not isinstance(target, type):
        return tuple(target())
    params = inspect.signature(target.__init__).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "root")


def check_builder_kwargs(name: str, builder_kwargs: dict) -> None:
    """Refuses ``builder_kwargs`` naming an option dataset ``name`` does not take.

    Raises:
      BuilderOptionError: naming the unknown keys and listing the valid ones.
    """
    valid = builder_options(name)
    unknown = sorted(set(builder_kwargs) - set(valid))
    if unknown:
        raise BuilderOptionError(
            f"config.data.builder_kwargs sets {unknown}, not options of dataset {name!r} "
            f"(its options: {', '.join(valid)}); a config written for another dataset keeps "
            "its builder_kwargs: replace them, e.g. --config.data.builder_kwargs='{}'"
        )


def _missing_root_entry(name: str, root: str, builder_kwargs: dict) -> str | None:
    """The first required entry of dataset ``name`` absent from ``root`` (None: all there)."""
    if not root:
        return "config.data.root is not set"
    if not os.path.isdir(root):
        if not os.path.isabs(root):  # relative paths read from where the command runs
            return f"{root} is not a folder, relative to the current folder {os.getcwd()}"
        return f"{root} is not a folder"
    splits = builder_kwargs.get("splits") or {}
    if name == "camvid":
        needed = ["train.txt"]
    elif name == "nuimages":
        tables = list(splits.values()) or ["v1.0-train", "v1.0-val"]
        needed = [os.path.join(t, "category.json") for t in tables] + ["samples"]
    elif name in ("a9", "openlabel"):
        for pattern in splits.values() or ["**/*.json"]:
            if next(glob.iglob(os.path.join(root, pattern), recursive=True), None) is None:
                return f"no file matches {os.path.join(root, pattern)}"
        return None
    elif name == "coco_folder":
        if not glob.glob(os.path.join(root, "annotations", "instances_*.json")):
            return f"no {os.path.join(root, 'annotations', 'instances_*.json')}"
        return None
    else:
        return None
    for entry in needed:
        if not os.path.exists(os.path.join(root, entry)):
            return f"{os.path.join(root, entry)} not found"
    return None


def check_root(name: str, root: str, builder_kwargs: dict | None = None) -> None:
    """Raises ``DataRootError`` (one line) when ``root`` cannot hold dataset ``name``'s files.

    Args:
      name: dataset name (a key of the builder table).
      root: the user's dataset folder (``config.data.root``), user-expanded.
      builder_kwargs: the builder options (their ``splits`` name table folders / globs).
    """
    if name not in _ROOT_CONTENTS:
        return
    problem = _missing_root_entry(name, root, dict(builder_kwargs or {}))
    if problem is not None:
        title, contents = _ROOT_CONTENTS[name]
        raise DataRootError(
            f"{title} files not found ({problem}): set --config.data.root to the {title} folder, "
            f"which must hold {contents}"
        )


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
      BuilderOptionError: ``builder_kwargs`` names an option the dataset does not take.
      DataRootError: its folder is unset or lacks the dataset's files.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    module_name, needs_root, _ = _BUILDERS[name]
    module = importlib.import_module(module_name)
    data_dir = os.path.expanduser(data_dir)
    kwargs = dict(builder_kwargs or {})
    check_builder_kwargs(name, kwargs)
    if needs_root:
        root = os.path.expanduser(root)
        if not root or not os.path.isdir(root):
            check_root(name, root, kwargs)
        try:
            return module.prepare(data_dir, root, **kwargs)
        except (OSError, ValueError):  # its contents are checked only on failure
            check_root(name, root, kwargs)
            raise
    return module.prepare(data_dir, **kwargs)


def load(
    name: str, *, data_dir: str, root: str = "", builder_kwargs: dict | None = None
) -> Dataset:
    """Prepares dataset ``name`` and opens every split as a data source (decoded examples
    cached in memory up to a budget, ``decoded_cache``)."""
    builder = prepare(name, data_dir=data_dir, root=root, builder_kwargs=builder_kwargs)
    meta = features.read_metadata(builder.info)
    sources = {
        split: decoded_cache.wrap(builder.as_data_source(split=split))
        for split in builder.info.splits
    }
    return Dataset(sources=sources, name=name, builder=builder, **meta)
