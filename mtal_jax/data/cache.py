"""Where a prepared dataset lives, so that different options never share a cache.

A builder's options (class map, camera choice, error policy, ...; the root's path only
when it holds no file) and the relative path, size and modification time of every file
under its root go into its ``BuilderConfig`` name as a hash:
``<data_dir>/<builder>/<hash>/<version>/``, so edited source files are prepared again
(the old prepared copy stays on disk until removed). The options themselves are stored in
``info.metadata["options"]`` and in the config description, so a prepared directory says
what it was built from.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator

import tensorflow_datasets as tfds
from tensorflow_datasets.core import constants as tfds_constants

from mtal_jax.data import features, files, no_tensorflow


def resolve_root(root: str | os.PathLike | None) -> str | None:
    """Absolute, user-expanded path of a dataset root (None stays None)."""
    if root is None:
        return None
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def canonical_options(options: dict) -> dict:
    """``options`` as plain JSON data (tuples to lists, keys sorted), for hashing and metadata."""
    return json.loads(json.dumps(options, sort_keys=True, default=list))


def source_fingerprint(
    root: str | None, *, exclude: str | os.PathLike | None = None, skip_dirs: tuple[str, ...] = ()
) -> str:
    """A hash of the relative path, size and modification time of every file under ``root``.

    Args:
      root: the dataset folder ("" when None or missing).
      exclude: a folder left out (the prepared ``data_dir`` when it lies inside root).
      skip_dirs: folder names left out wherever they occur (files the builder never reads).

    Returns:
      16 hex digits; any file added, removed, resized or rewritten changes it.
    """
    if root is None or not os.path.isdir(root):
        return ""
    exclude = os.path.abspath(os.fspath(exclude)) if exclude is not None else None
    digest = hashlib.sha256()

    def prune(directory: str, d: str) -> bool:
        return d in skip_dirs or os.path.abspath(os.path.join(directory, d)) == exclude

    for directory, _, names in files.walk(root, prune):  # linked folders too, as read
        for name in sorted(names):
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)
            except OSError:  # A dangling link: the builder reports it if it needs the file.
                continue
            relative = os.path.relpath(path, root)
            digest.update(
                f"{relative}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "replace")
            )
    return digest.hexdigest()[:16]


def make_config(
    options: dict, *, data_dir: str | os.PathLike | None = None, skip_dirs: tuple[str, ...] = ()
) -> tfds.core.BuilderConfig:
    """A ``BuilderConfig`` whose name is a hash of ``options`` and of the source files.

    With a ``root`` option, the files under it (``source_fingerprint``, ``data_dir`` and
    ``skip_dirs`` left out) are part of the identity: editing, adding or removing a dataset
    file prepares the dataset again instead of silently reusing the old one. The root's own
    path is not: the same files in another folder (the same data folder reached from
    another checkout by a relative path, a copy that kept the times) share one prepared
    copy, since a prepared dataset holds its images and never reads the root again. The
    description names it.
    """
    text = json.dumps(canonical_options(options), sort_keys=True)
    sources = source_fingerprint(options.get("root"), exclude=data_dir, skip_dirs=skip_dirs)
    identity = {
        k: v for k, v in canonical_options(options).items() if not (k == "root" and sources)
    }
    digest = hashlib.sha256(
        f"{json.dumps(identity, sort_keys=True)}\0{sources}".encode()
    ).hexdigest()[:16]
    return tfds.core.BuilderConfig(
        name=f"opts_{digest}", description=f"{text} (source files {sources or 'none'})"
    )


def builder_kwargs(options: dict, kwargs: dict, *, skip_dirs: tuple[str, ...] = ()) -> dict:
    """The ``GeneratorBasedBuilder.__init__`` arguments of a local-file builder.

    Args:
      options: the builder's canonicalisable options (``root`` among them).
      kwargs: the caller's builder arguments (``data_dir``, ...); not modified.
      skip_dirs: folder names under root the builder never reads (see ``make_config``).

    Returns:
      ``kwargs`` plus, unless given, ``config`` (``make_config`` of ``options``: the cache
      identity) and ``file_format="array_record"`` (read without TensorFlow).
    """
    kwargs = dict(kwargs)
    if "config" not in kwargs:
        kwargs["config"] = make_config(
            options, data_dir=kwargs.get("data_dir"), skip_dirs=skip_dirs
        )
    kwargs.setdefault("file_format", "array_record")
    return kwargs


def dataset_info(
    builder: tfds.core.DatasetBuilder,
    metadata: tfds.core.MetadataDict,
    *,
    description: str,
    homepage: str,
    crowd: bool = False,
) -> tfds.core.DatasetInfo:
    """The ``DatasetInfo`` every local-file builder returns: the common features (with
    ``crowd``, also the crowd regions), its class ``metadata`` plus its canonical
    ``options`` and an empty ``skipped`` count (filled while preparing)."""
    metadata["options"] = canonical_options(builder.options)
    metadata["skipped"] = {}
    return tfds.core.DatasetInfo(
        builder=builder,
        description=description,
        features=features.make_features(crowd=crowd),
        metadata=metadata,
        homepage=homepage,
    )


def download_and_prepare(builder: tfds.core.DatasetBuilder) -> tfds.core.DatasetBuilder:
    """Prepares ``builder`` unless its files already exist; returns it.

    Never contacts GCS (datasets are built from the user's local files), and works for
    splits above TFDS's 1 GB in-memory buffer without TensorFlow (``no_tensorflow``).

    Processes that start on a fresh cache at once (``al.parallel_cli``) wait for the one that
    prepares it; their builders were made before the files existed, so their ``info`` (the
    splits, the skipped counts) is read again from the prepared files.
    """
    with _preparing(builder):
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
        if not builder.info.splits:  # prepared by another process while this one waited
            builder.info.read_from_directory(builder.data_dir)
    return builder


@contextlib.contextmanager
def _preparing(builder: tfds.core.DatasetBuilder) -> Iterator[None]:
    """Holds the preparation lock of ``builder``'s config folder; removes stale temporaries.

    TFDS prepares into ``<config>/incomplete.<random>_<version>/`` and renames it when done;
    a killed preparation leaves that folder behind. With the lock held (a kernel lock,
    released when its holder dies) no other process is preparing this config, so such
    folders are stale and removed. A second process preparing the same dataset waits
    here, then finds it prepared.
    """
    version_dir = os.fspath(builder.data_dir)
    folder = os.path.dirname(version_dir)
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, ".prepare.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        pattern = f"{tfds_constants.INCOMPLETE_PREFIX}*_{os.path.basename(version_dir)}"
        for stale in glob.glob(os.path.join(glob.escape(folder), pattern)):
            shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        os.close(fd)  # Releases the lock.


def check_root(root: str | None, name: str) -> str:
    """Returns ``root``; a clear error when it is missing (a builder made only for reading)."""
    if root is None:
        raise ValueError(
            f"{name}: no root given; pass root=<folder of the dataset files> to prepare it"
        )
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{name}: dataset root {root} is not a directory")
    return root
