"""Where a prepared dataset lives, so that different options never share a cache.

A builder's options (root, class map, camera choice, error policy, ...) go into its
``BuilderConfig`` name as a hash: ``<data_dir>/<builder>/<hash>/<version>/``. The
options themselves are stored in ``info.metadata["options"]`` and in the config
description, so a prepared directory says what it was built from.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os

import tensorflow_datasets as tfds

from mtal_jax.data import features, no_tensorflow


def resolve_root(root: str | os.PathLike | None) -> str | None:
    """Absolute, user-expanded path of a dataset root (None stays None)."""
    if root is None:
        return None
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def canonical_options(options: dict) -> dict:
    """``options`` as plain JSON data (tuples to lists, keys sorted), for hashing and metadata."""
    return json.loads(json.dumps(options, sort_keys=True, default=list))


def make_config(options: dict) -> tfds.core.BuilderConfig:
    """A ``BuilderConfig`` whose name is a hash of ``options``."""
    text = json.dumps(canonical_options(options), sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return tfds.core.BuilderConfig(name=f"opts_{digest}", description=text)


def dataset_info(
    builder: tfds.core.DatasetBuilder,
    metadata: tfds.core.MetadataDict,
    *,
    description: str,
    homepage: str,
) -> tfds.core.DatasetInfo:
    """The ``DatasetInfo`` every local-file builder returns: the common features, its class
    ``metadata`` plus its canonical ``options`` and an empty ``skipped`` count (filled while
    preparing)."""
    metadata["options"] = canonical_options(builder.options)
    metadata["skipped"] = {}
    return tfds.core.DatasetInfo(
        builder=builder,
        description=description,
        features=features.make_features(),
        metadata=metadata,
        homepage=homepage,
    )


def download_and_prepare(builder: tfds.core.DatasetBuilder) -> tfds.core.DatasetBuilder:
    """Prepares ``builder`` unless its files already exist; returns it.

    Never contacts GCS (datasets are built from the user's local files), and works for
    splits above TFDS's 1 GB in-memory buffer without TensorFlow (``no_tensorflow``).
    """
    if not os.path.exists(os.path.join(builder.data_dir, "dataset_info.json")):
        logging.getLogger(__name__).info(
            "preparing %s from local data into %s (once; later runs reuse it)",
            builder.name, builder.data_dir,
        )  # fmt: skip
    # TFDS prints "Downloading and preparing dataset ..." to stdout; nothing is downloaded.
    with no_tensorflow.spill_to_local_files(), contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(try_download_gcs=False)
        )
    return builder


def check_root(root: str | None, name: str) -> str:
    """Returns ``root``; a clear error when it is missing (a builder made only for reading)."""
    if root is None:
        raise ValueError(
            f"{name}: no root given; pass root=<folder of the dataset files> to prepare it"
        )
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{name}: dataset root {root} is not a directory")
    return root
