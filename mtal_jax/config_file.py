"""An experiment config file loaded outside absl's flags (scripts, benchmarks, the docs).

``train.py`` and ``select.py`` take ``--config path/to/config.py[:preset]`` through
``ml_collections.config_flags``; tools that are not absl programs load the same spec here:

    config = config_file.load("configs/camvid.py:table1", ["train.cycle_epochs=3"])
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence

import ml_collections


def load(spec: str | os.PathLike, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """``get_config(preset)`` of the config file named by ``spec``, with ``overrides``.

    Args:
      spec: ``path/to/config.py`` or ``path/to/config.py:preset`` (the part after the last
        ``:`` that follows the ``.py``; no preset passes None, as ``config_flags`` does).
      overrides: ``"key.path=value"`` items applied in order; a value is parsed as JSON when
        it is JSON (numbers, lists, true/false), else kept as a string.

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
        try:
            value = json.loads(value)
        except ValueError:
            pass
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
        node[leaf] = value
    return config
