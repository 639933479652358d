"""The active-learning experiment (imperative shell): trials x strategies x cycles.

Modules: ``setup`` (the config boundary: ``Plan`` and ``Setup``), ``training`` (each
run's training settings from the config, checked against the devices), ``cycle`` (one
selection), ``durable`` (the run directory's durable state), ``protocol`` (the loop
over trials, strategies and cycles, and the reference run), ``share`` (finished runs
copied from another experiment, ``al.share_from``), ``archive`` (run directories without
checkpoints, to continue elsewhere).

Disk layout of ``workdir`` (every JSON written atomically, selections never rewritten):

  config.json                       the resolved config (a resume must match it)
  reference/                        fully trained reference run (100 % of the pool)
  trial_<t>/cycle_0/                the shared cycle-0 model of trial t (+ pool.json); only
                                    the strategies with more than t trials
                                    (``al.trials_per_strategy``) run in trial t
  trial_<t>/<strategy>/cycle_<k>/   k >= 1: selection.json (made with the cycle k-1 model),
                                    pool.json (labeled ids), scores.npz, train/, metrics.json,
                                    diagnostics.json (``ours``: score degeneracy, al.diagnostics)
  wall.json                         in each run directory above: its wall seconds
  shared_from.json                  in a run directory (reference, cycle_0, <strategy>)
                                    copied from another experiment (``share``): its source
  results.json, summary.md, summary.json, paired.json, mdsq.png, map.png, miou.png

The names below are the package's public API, shared by ``train.py``, ``select.py`` and
the analyses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mtal_jax.al.experiment.cycle import (
        cycle_context,
        labeled_class_hist,
        make_strategy,
        select_images,
    )
    from mtal_jax.al.experiment.durable import image_ids
    from mtal_jax.al.experiment.protocol import reference_metrics, run, run_plan
    from mtal_jax.al.experiment.setup import (
        Plan,
        Setup,
        StrategySpec,
        build_setup,
        plan_from_config,
        strategy_specs,
    )
    from mtal_jax.al.experiment.training import decode_kwargs, train_config

# Each name's module, imported on first use (PEP 562): importing one module of the package
# (``archive``, ``setup``) does not import the protocol and its plotting and statistics, so
# a command that needs one of them starts in about half the time (archive_cli: 5 s instead
# of 9 s on the box of 2026-12-05).
_MODULE_OF = {
    "cycle_context": "cycle",
    "labeled_class_hist": "cycle",
    "make_strategy": "cycle",
    "select_images": "cycle",
    "image_ids": "durable",
    "reference_metrics": "protocol",
    "run": "protocol",
    "run_plan": "protocol",
    "Plan": "setup",
    "Setup": "setup",
    "StrategySpec": "setup",
    "build_setup": "setup",
    "plan_from_config": "setup",
    "strategy_specs": "setup",
    "decode_kwargs": "training",
    "train_config": "training",
}
__all__ = [
    "Plan",
    "Setup",
    "StrategySpec",
    "build_setup",
    "cycle_context",
    "decode_kwargs",
    "image_ids",
    "labeled_class_hist",
    "make_strategy",
    "plan_from_config",
    "reference_metrics",
    "run",
    "run_plan",
    "select_images",
    "strategy_specs",
    "train_config",
]


# The package's modules, also attributes on first use (``experiment.cycle``), as when the
# package imported them all.
_SUBMODULES = ("archive", "cycle", "durable", "protocol", "setup", "share", "training")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # binds itself in globals()
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF) | set(_SUBMODULES))
