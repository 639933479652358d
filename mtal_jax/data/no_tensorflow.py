"""Preparing TFDS datasets larger than 1 GB without TensorFlow.

TFDS's writer keeps the serialized examples of a split in memory up to
``tensorflow_datasets.core.shuffle.MAX_MEM_BUFFER_SIZE`` (1000 MiB) and then spills
them to temporary bucket files through ``tf.io.gfile``, which fails with
``ModuleNotFoundError: No module named 'tensorflow'`` when TensorFlow is absent (the
project never installs it). So, as shipped, any split above 1 GB (nuImages, A9) cannot
be prepared. ``spill_to_local_files`` gives the shuffle module, for the duration of a
``download_and_prepare``, the four local-file operations it needs; with TensorFlow
installed it changes nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator

from tensorflow_datasets.core import shuffle


class _ResourceExhaustedError(OSError):
    """Never raised by local files; only named in an ``except`` clause of TFDS."""

    message = ""


class _Gfile:
    GFile = staticmethod(open)
    exists = staticmethod(os.path.exists)
    remove = staticmethod(os.remove)


class _Io:
    gfile = _Gfile


class _Errors:
    ResourceExhaustedError = _ResourceExhaustedError


class _LocalFilesTensorflow:
    """The part of the ``tf`` namespace that ``tensorflow_datasets.core.shuffle`` uses."""

    io = _Io
    errors = _Errors


@contextlib.contextmanager
def spill_to_local_files() -> Iterator[None]:
    """Lets TFDS's shuffle buffer spill to local files while the block runs (no TensorFlow)."""
    if importlib.util.find_spec("tensorflow") is not None:
        yield
        return
    original = shuffle.tf
    shuffle.tf = _LocalFilesTensorflow
    try:
        yield
    finally:
        shuffle.tf = original
