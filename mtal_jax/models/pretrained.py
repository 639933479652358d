"""Loading converted backbone weights from a local file (nothing is ever downloaded).

Two formats:

* our own: an ``.npz`` whose keys are ``/``-joined paths below the backbone, e.g.
  ``params/stage1_block1/conv1/kernel`` and ``batch_stats/bn_stem/mean`` (what
  ``save_backbone`` writes);
* torchvision ResNet-18/34/50 state dicts exported to ``.npz`` with their own names
  (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...), e.g. with
  ``np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})``;
  ``convert_torchvision`` maps them to our names (OIHW kernels -> HWIO).

Only the ``resnet`` subtree is replaced; heads keep their initialisation. A file of our own
format may also hold the neck (``fpn``) under keys prefixed ``neck/`` (e.g.
``neck/params/lateral_0/kernel``; ``save_backbone(..., neck=True)``, what the sim-to-real
pretraining of ``mtal_jax.sim2real`` writes): then the neck is replaced as well.
"""

from __future__ import annotations

import os
import re

import numpy as np

NECK_PREFIX = "neck/"
"""Key prefix of the neck's weights in our format."""


class WeightsNotFoundError(FileNotFoundError):
    """The configured weights file does not exist (the message is one line for the user)."""


def check_exists(path: str) -> None:
    """Raises ``WeightsNotFoundError`` naming the option and the command that writes ``path``."""
    if not os.path.isfile(path):
        raise WeightsNotFoundError(
            f"{path}: weights file not found (config.model.pretrained_backbone); write the "
            "sim-to-real backbone + neck with `python -m mtal_jax.sim2real --config <this "
            "config>`, point the option at a converted .npz, or set "
            "--config.model.pretrained_backbone= for random initialisation"
        )


_BN = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else k
        out.update(_flatten(v, path) if isinstance(v, dict) else {path: np.asarray(v)})
    return out


def convert_torchvision(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """torchvision ResNet names -> our flat backbone paths (``params/...``, ``batch_stats/...``).

    Raises:
      ValueError: a key this converter does not know (other than the classifier ``fc.*``
        and ``num_batches_tracked``).
    """
    out = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue
        m = re.fullmatch(r"(conv1|bn1)\.(\w+)", name)
        if m:
            module = "stem" if m.group(1) == "conv1" else "bn_stem"
            out.update(_convert_leaf(module, m.group(2), value))
            continue
        m = re.fullmatch(r"layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.(\w+)", name)
        if not m:
            raise ValueError(f"unknown torchvision ResNet key {name!r}")
        stage, block, part, leaf = int(m.group(1)), int(m.group(2)) + 1, m.group(3), m.group(4)
        part = {"downsample.0": "proj", "downsample.1": "bn_proj"}.get(part, part)
        out.update(_convert_leaf(f"stage{stage}_block{block}/{part}", leaf, value))
    return out


def _convert_leaf(module: str, leaf: str, value: np.ndarray) -> dict[str, np.ndarray]:
    if leaf == "weight" and value.ndim == 4:  # conv OIHW -> HWIO
        return {f"params/{module}/kernel": value.transpose(2, 3, 1, 0)}
    collection = "batch_stats" if leaf in ("running_mean", "running_var") else "params"
    return {f"{collection}/{module}/{_BN[leaf]}": value}


def _module_flat(variables: dict, module: str) -> dict[str, np.ndarray]:
    """``{"params/<path>": array, "batch_stats/<path>": array}`` of one top-level module."""
    return {
        f"{col}/{k}": v
        for col in ("params", "batch_stats")
        for k, v in _flatten(variables.get(col, {}).get(module, {})).items()
    }


def _check(path: str, what: str, flat: dict, target: dict, hint: str) -> None:
    """Raises ``ValueError`` naming ``path`` and the first mismatching parameters."""
    missing = sorted(set(target) - set(flat))
    extra = sorted(set(flat) - set(target))
    if missing or extra:
        raise ValueError(
            f"{path}: {what} weights do not match the model (missing {missing[:5]}, "
            f"unexpected {extra[:5]}; {hint})"
        )
    bad = [
        f"{k}: file {flat[k].shape} vs model {v.shape}"
        for k, v in target.items()
        if flat[k].shape != v.shape
    ]
    if bad:
        raise ValueError(f"{path}: wrong {what} weight shapes: {bad[:5]} ({hint})")


def _unflatten_into(new: dict, module: str, flat: dict, target: dict) -> None:
    """Sets ``new[col][module]`` from the flat ``col/path`` arrays (dtypes of ``target``)."""
    for col, variables in new.items():
        tree: dict = {}
        for k, v in flat.items():
            c, *parts = k.split("/")
            if c != col:
                continue
            node = tree
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = np.asarray(v).astype(target[k].dtype)
        variables[module] = tree


def load_backbone(variables: dict, path: str) -> dict:
    """Returns ``variables`` with the backbone (``resnet``) replaced by the weights in ``path``,
    and the neck (``fpn``) too when the file holds it (keys prefixed ``neck/``).

    Args:
      variables: ``{"params", "batch_stats"}`` of ``models.multitask.Model``.
      path: ``.npz`` in our format or a torchvision ResNet export (detected by its keys).

    Raises:
      WeightsNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
      ValueError: missing, unexpected or wrongly shaped weights (names the file and them).
    """
    check_exists(path)
    with np.load(path) as data:
        flat = {k: data[k] for k in data.files}
    neck = {k[len(NECK_PREFIX) :]: v for k, v in flat.items() if k.startswith(NECK_PREFIX)}
    flat = {k: v for k, v in flat.items() if not k.startswith(NECK_PREFIX)}
    if any(k.startswith("layer1.") or k == "conv1.weight" for k in flat):
        flat = convert_torchvision(flat)
    target = _module_flat(variables, "resnet")
    _check(path, "backbone", flat, target, "check config.model.backbone")
    new = {col: dict(variables[col]) for col in ("params", "batch_stats")}
    _unflatten_into(new, "resnet", flat, target)
    if neck:
        neck_target = _module_flat(variables, "fpn")
        _check(path, "neck", neck, neck_target, "check config.model.neck_channels")
        _unflatten_into(new, "fpn", neck, neck_target)
    return new


def save_backbone(variables: dict, path: str, *, neck: bool = False) -> None:
    """Writes the backbone of ``variables`` (and with ``neck`` the neck, keys prefixed
    ``neck/``) in our ``.npz`` format; heads are never written."""
    flat = _module_flat(variables, "resnet")
    if neck:
        flat |= {NECK_PREFIX + k: v for k, v in _module_flat(variables, "fpn").items()}
    np.savez(path, **flat)
