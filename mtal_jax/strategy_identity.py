"""Strategy identity: when two settings of a strategy are the same selection.

Used by sharing between experiments (``al.experiment.share``, docs/design.md): a run whose
strategy has the same ``selection_identity`` as a finished run elsewhere, from the same
model and pool, selects the same images, so it is copied instead of run again.
"""

from __future__ import annotations

import inspect
from typing import Any

from mtal_jax import ours_strategy, strategies


def resolved_hyperparameters(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every keyword hyperparameter of strategy ``name``: ``kwargs`` over the factory's
    defaults (two specs build the same strategy when these are equal).

    Raises:
      ValueError: for an unknown name or keyword.
    """
    valid = strategies.hyperparameters(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"strategy {name!r} takes no keyword(s) {unknown}; valid: {valid}")
    params = inspect.signature(strategies.STRATEGIES[name]).parameters
    return {k: kwargs[k] if k in kwargs else params[k].default for k in valid}


# Hyperparameters of ``ours`` that only enter S_cls: with w_cls = 0 no score, box choice or
# selection depends on them (S_loc and S_seg are ratios of pixel counts, exact in float32).
_OURS_CLS_ONLY = ("cls_divergence", "eps")


def selection_identity(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``resolved_hyperparameters`` with those that cannot change what the strategy selects
    set to None: two specs with equal identities select the same images from the same model
    and pool, so their runs are the same runs (``al.experiment.share``).

    For ``ours`` with ``w_cls = 0`` (Table I's settings without S_cls) ``cls_divergence`` and
    ``eps`` only change the stored S_cls values, never the score: ``w_cls * S_cls`` is an
    exact 0 for the finite S_cls that both divergences give.

    Raises:
      ValueError: for an unknown name or keyword, or invalid ``ours`` weights.
    """
    params = resolved_hyperparameters(name, kwargs)
    if name == "ours":
        # (1, 0, 1) == [1.0, 0.0, 1.0]
        params["weights"] = ours_strategy.check_weights(params["weights"])
        if params["weights"][1] == 0.0:
            params.update({k: None for k in _OURS_CLS_ONLY})
    return params
