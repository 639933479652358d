"""Active-learning strategies: one explicit registry of factories (paper IV-B and III).

Each factory takes the cycle's ``strategy_types.CycleContext`` (positional, optional) and
keyword hyperparameters, and returns a ``strategy_types.Strategy`` (the protocol is
described there). ``get_strategy(name, context, **kwargs)`` resolves a name of
``STRATEGIES`` and rejects unknown names and keywords with the valid ones listed.

The factories live in ``baseline_strategies`` (the paper's baselines, docs/baselines.md)
and ``ours_strategy`` (the paper's strategy); ``strategy_identity`` tells when two
settings of a strategy select the same images.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mtal_jax import baseline_strategies, ours_strategy
from mtal_jax.strategy_types import CycleContext, Strategy

_NO_CONTEXT = CycleContext()

STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": baseline_strategies.random,
    "entropy": baseline_strategies.entropy,
    "cald": baseline_strategies.cald,
    "equal": baseline_strategies.equal,
    "alternation": baseline_strategies.alternation,
    "ll4al": baseline_strategies.ll4al,
    "cdal": baseline_strategies.cdal,
    "coreset": baseline_strategies.coreset,
    "ours": ours_strategy.ours,
}


NEEDS_LABELED_CLASS_HIST = frozenset({"cald", "alternation"})
"""Strategies whose context must carry ``labeled_class_hist`` (the shell computes it)."""


def get_strategy(name: str, context: CycleContext | None = None, **kwargs: Any) -> Strategy:
    """Builds the strategy ``name`` for ``context`` with keyword hyperparameters.

    Args:
      name: a key of ``STRATEGIES``.
      context: the cycle's context (default: cycle 0, no labeled-class histogram).
      **kwargs: the factory's keyword hyperparameters.

    Returns:
      the ``Strategy``.

    Raises:
      ValueError: for an unknown name or keyword, listing the valid ones (a typo must not
        be ignored silently).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid names: {sorted(STRATEGIES)}")
    factory = STRATEGIES[name]
    valid = hyperparameters(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"strategy {name!r} takes no keyword(s) {unknown}; valid: {valid}")
    return factory(_NO_CONTEXT if context is None else context, **kwargs)


def hyperparameters(name: str) -> list[str]:
    """The keyword hyperparameters of strategy ``name`` (its factory's keyword-only arguments).

    Raises:
      ValueError: for an unknown name.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid names: {sorted(STRATEGIES)}")
    params = inspect.signature(STRATEGIES[name]).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
