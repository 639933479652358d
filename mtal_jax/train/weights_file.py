"""A run's model variables as one ``.npz`` file (``weights.npz``): no optimizer state, no
orbax, exact float values.

An archived experiment (``al.experiment.archive``) keeps the best weights of the runs that an
unfinished continuation still starts from in this form instead of their checkpoints (about a
third of a checkpoint's size: a fresh optimizer starts every continuation). Keys are the
``/``-joined paths of the variables (``params/resnet/stem/conv/kernel``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from flax import traverse_util

from mtal_jax import jsonio

FILENAME = "weights.npz"


def save(path: str, variables: dict) -> None:
    """Writes ``variables`` (``{"params", "batch_stats"}``, host or device arrays) to
    ``path`` atomically."""
    flat = traverse_util.flatten_dict(variables, sep="/")
    arrays = {k: np.asarray(v) for k, v in flat.items()}
    jsonio.write_file_atomic(path, lambda f: np.savez(f, **arrays), binary=True)


def load(path: str, like: Any = None) -> dict:
    """The variables of ``path`` (host numpy).

    Args:
      path: a file written by ``save``.
      like: optional variables pytree (arrays or ``jax.ShapeDtypeStruct``) the file must
        match in names, shapes and dtypes.

    Raises:
      FileNotFoundError: no such file.
      ValueError: unreadable, or not matching ``like`` (naming the file and the first
        differences).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with np.load(path) as data:
            flat = {k: data[k] for k in data.files}
    except Exception as e:  # zip/npy errors come in many types
        raise ValueError(f"{path}: not a readable weights file ({type(e).__name__}: {e})") from e
    if like is not None:
        want = {
            k: (tuple(v.shape), np.dtype(v.dtype))
            for k, v in traverse_util.flatten_dict(like, sep="/").items()
        }
        have = {k: (tuple(v.shape), v.dtype) for k, v in flat.items()}
        if want != have:
            missing = sorted(set(want) - set(have))[:3]
            extra = sorted(set(have) - set(want))[:3]
            differ = sorted(k for k in set(want) & set(have) if want[k] != have[k])[:3]
            raise ValueError(
                f"{path} does not match the model of the config: missing {missing}, "
                f"unexpected {extra}, other shape or dtype {differ}"
            )
    return traverse_util.unflatten_dict(flat, sep="/")
