"""An experiment config file loaded outside absl's flags (scripts, benchmarks, the docs).

``train.py`` and ``select.py`` take ``--config path/to/config.py[:preset]`` through
``ml_collections.config_flags``; tools that are not absl programs load the same spec here:

    config = config_file.load("configs/camvid.py:table1", ["train.cycle_epochs=3"])
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from collections.abc import Sequence
from typing import Any

import ml_collections


def load(spec: str | os.PathLike, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """``get_config(preset)`` of the config file named by ``spec``, with ``overrides``.

    Args:
      spec: ``path/to/config.py`` or ``path/to/config.py:preset`` (the part after the last
        ``:`` that follows the ``.py``; no preset passes None, as ``config_flags`` does).
      overrides: ``"key.path=value"`` items applied in order, each value read for the
        field's type as ``train.py``'s ``--config.key.path=value`` reads it (``_parse``).

    Returns:
      The config.

    Raises:
      FileNotFoundError: when the file does not exist (naming it).
      ValueError: an override without ``=`` or naming a key the config lacks.
    """
    spec = os.fspath(spec)
    path, sep, preset = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        path, preset = spec, ""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} not found")
    module_spec = importlib.util.spec_from_file_location("_mtal_jax_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(preset or None)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} of {spec}: expected key.path=value")
        node = config
        *parents, leaf = key.split(".")
        try:
            for p in parents:
                node = node[p]
            known = leaf in node  # a typo fails here instead of adding a new field
        except (KeyError, AttributeError, TypeError):
            known = False
        if not known:
            raise ValueError(f"override {item!r}: {spec} has no config key {key!r}")
        try:
            node[leaf] = _parse(value, node[leaf])
        except TypeError as e:  # ConfigDict's type check: one line naming the override
            raise ValueError(f"override {item!r} of {spec}: {e}") from None
    return config


def _parse(text: str, current: Any) -> Any:
    """An override's value for a field holding ``current``: the text itself for a string
    field (``data.root=2024`` stays a path), else JSON (``[64, 64]``, ``true``) or a
    Python literal (``(64, 64)``, ``False``, ``None``), else the text; a list for a tuple
    field becomes a tuple."""
    if isinstance(current, str):
        return text
    value: Any = text
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
            break
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    return value
