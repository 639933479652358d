"""Reading a few fields of many examples without decoding their images.

Image ids (``select.py``'s id index) and box labels (CALD's labeled class histogram) are
needed for every image of a pool. Decoding each example's PNG image and mask for them
costs ~15 ms per example and dominates at 100k images; a TFDS data source reopened with
``tfds.decode.SkipDecoding`` for the image features parses only the small fields (~1 ms).
Examples are read in chunks, so memory stays bounded by one chunk plus the outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import decoded_cache

IMAGE_FEATURES = ("image", "segmentation")  # the PNG features of features.make_features
CHUNK = 1024


def without_images(source: Any) -> Any:
    """``source`` reopened so that its image features stay encoded bytes.

    Works for TFDS data sources (``as_data_source``), also inside the
    ``decoded_cache.CachedSource`` that ``catalog.load`` wraps every split in (reopened
    beneath it: reading through the cache would decode every image and fill the cache with
    examples only their labels were wanted of); any other source (lists of dicts in tests,
    custom sources) is returned unchanged.
    """
    if isinstance(source, decoded_cache.CachedSource):
        source = source.source
    feats = getattr(getattr(source, "dataset_info", None), "features", None)
    if not dataclasses.is_dataclass(source) or feats is None or not hasattr(source, "decoders"):
        return source
    skip = {k: tfds.decode.SkipDecoding() for k in IMAGE_FEATURES if k in feats}
    if not skip:
        return source
    return dataclasses.replace(source, decoders={**(source.decoders or {}), **skip})


def iter_field(source: Any, indices: Sequence[int], key: str, default: Any = None) -> Iterator[Any]:
    """Yields ``source[i].get(key, default)`` for each of ``indices`` (images undecoded)."""
    light = without_images(source)
    indices = np.asarray(indices, np.int64).reshape(-1)
    getitems = getattr(light, "__getitems__", None)
    for start in range(0, len(indices), CHUNK):
        chunk = [int(i) for i in indices[start : start + CHUNK]]
        examples = getitems(chunk) if getitems is not None else [light[i] for i in chunk]
        for ex in examples:
            yield ex.get(key, default)


def image_ids(source: Any, indices: Sequence[int]) -> list[str]:
    """The ``image_id`` text of each of ``indices`` ("" when an example has none)."""
    return [
        v.decode() if isinstance(v, bytes) else str(v)
        for v in iter_field(source, indices, "image_id", b"")
    ]


def class_counts(source: Any, indices: Sequence[int], num_classes: int) -> np.ndarray:
    """[num_classes] float64 number of ground-truth boxes per class over ``indices``
    (labels outside [0, num_classes) are skipped)."""
    counts = np.zeros(num_classes)
    for labels in iter_field(source, indices, "box_labels", ()):
        labels = np.asarray(labels).reshape(-1)
        counts += np.bincount(
            labels[(labels >= 0) & (labels < num_classes)].astype(np.int64), minlength=num_classes
        )
    return counts
