"""Durable JSON files: atomic write (temp file + fsync + rename) and read.

Experiment state (labeled pools, selections, results) goes through here, so a crash
leaves either the previous complete file or the new complete file, never a torn one.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np


def _plain(obj: Any) -> Any:
    """numpy scalars/arrays -> Python; NaN/inf -> None (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def normalize(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples -> lists, numpy -> Python, NaN -> None)."""
    return json.loads(json.dumps(_plain(obj)))


def dumps(obj: Any) -> str:
    """``obj`` as the JSON text ``write_atomic`` writes (strict JSON, indent 1)."""
    return json.dumps(_plain(obj), indent=1)


def write_atomic(path: str, obj: Any, *, overwrite: bool = True) -> None:
    """Writes ``obj`` as JSON to ``path`` atomically.

    Raises:
      FileExistsError: when ``overwrite`` is False and ``path`` exists (records that must
        never be rewritten, e.g. a cycle's selection).
    """
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and is never rewritten")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_plain(obj), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # Never leave the temporary file behind (full disk, a folder...).
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read(path: str) -> Any:
    """Reads a JSON file, with the path in the error message when it is malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON: {e}") from e
