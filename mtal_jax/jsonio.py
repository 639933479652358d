"""Durable files: atomic write of any file and of JSON (temp file + fsync + rename), JSON read.

Experiment state (labeled pools, selections, results) goes through here, so a crash
leaves either the previous complete file or the new complete file, never a torn one.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import IO, Any

import numpy as np


def plain(obj: Any) -> Any:
    """numpy scalars/arrays -> Python; NaN/inf -> None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def normalize(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples -> lists, numpy -> Python, NaN -> None)."""
    return json.loads(json.dumps(plain(obj)))


def dumps(obj: Any) -> str:
    """``obj`` as the JSON text ``write_atomic`` writes (strict JSON, indent 1)."""
    return json.dumps(plain(obj), indent=1)


def write_file_atomic(
    path: str,
    write: Callable[[IO[Any]], Any],
    *,
    binary: bool = False,
    mode: int | None = None,
) -> None:
    """Calls ``write(file)`` on a temporary file beside ``path``, then renames it over.

    The file and its folder are fsynced, so a crash leaves the previous complete file or
    the new one, never a torn one; the temporary file never survives a failure.

    Args:
      path: the file to write (its folder is created).
      write: writes the content to the open file.
      binary: open the temporary file in binary mode.
      mode: permission bits of the new file (default: the process umask's).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:  # Never leave the temporary file behind (full disk, a folder...).
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_path(folder)


def fsync_path(path: str) -> None:
    """Flushes the file or folder ``path`` (a folder: its entries, e.g. a rename) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: str) -> None:
    """Flushes every file and folder under ``folder`` (and the folder's parent) to disk,
    so that a tree copied beside its place and then renamed into it is complete after a
    power loss, not only after a crash of the process."""
    for root, _, names in os.walk(folder):
        for name in names:
            if not os.path.islink(path := os.path.join(root, name)):
                fsync_path(path)
        fsync_path(root)
    fsync_path(os.path.dirname(os.path.abspath(folder)))


def write_atomic(path: str, obj: Any, *, overwrite: bool = True, compact: bool = False) -> None:
    """Writes ``obj`` as strict JSON to ``path`` atomically (``write_file_atomic``), one
    value per line, or on one line with ``compact`` (large arrays, e.g. RLE masks).

    Raises:
      FileExistsError: when ``overwrite`` is False and ``path`` exists (records that must
        never be rewritten, e.g. a cycle's selection).
    """
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and is never rewritten")
    options = {"separators": (",", ":")} if compact else {"indent": 1}
    write_file_atomic(path, lambda f: json.dump(plain(obj), f, **options))


def read(path: str) -> Any:
    """Reads a JSON file, with the path in the error message when it is malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON: {e}") from e
