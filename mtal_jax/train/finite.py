"""Divergence guard: a non-finite loss or gradient norm stops training before any save.

The train step's metrics are checked on device at every step without a host sync: a
device scalar carries the first step whose total loss or gradient norm was NaN or
infinite (-1 while none was). The loop reads it only where it syncs anyway (log steps)
and before every checkpoint save, and then also checks that the parameters themselves
are finite, so that no checkpoint of a diverged model is ever written.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss, gradient norm or parameter."""


@jax.jit
def track(first_bad: jax.Array, step: jax.Array, terms: dict[str, jax.Array]) -> jax.Array:
    """Updates the first non-finite step.

    Args:
      first_bad: [] int32, the first step whose metrics were not finite, or -1.
      step: [] int32, the step number of ``terms`` (the state's step after the update).
      terms: the train step's metrics; ``total`` and ``grad_norm`` are checked.

    Returns:
      [] int32, ``first_bad`` or ``step`` when these are the first non-finite metrics.
    """
    ok = jnp.isfinite(terms["total"]) & jnp.isfinite(terms["grad_norm"])
    return jnp.where((first_bad < 0) & ~ok, step.astype(jnp.int32), first_bad)


@jax.jit
def tree_is_finite(tree: Any) -> jax.Array:
    """[] bool: every floating-point leaf of ``tree`` is finite (no NaN, no inf)."""
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def check(first_bad: Any, *, where: str, hint: str = "") -> None:
    """Raises ``NonFiniteError`` when ``first_bad`` (host or device scalar) names a step.

    Args:
      first_bad: the value of ``track``.
      where: the run (workdir) for the message.
      hint: advice appended to the message (e.g. the learning rate).
    """
    bad = int(jax.device_get(first_bad))
    if bad >= 0:
        raise NonFiniteError(
            f"training diverged in {where}: the loss or the gradient norm is NaN or infinite "
            f"at step {bad}; no checkpoint of step {bad} or later was saved. {hint}".strip()
        )


def check_variables(variables: Any, *, where: str) -> None:
    """Raises ``NonFiniteError`` when a parameter or batch statistic is NaN or infinite."""
    if not bool(jax.device_get(tree_is_finite(variables))):
        raise NonFiniteError(
            f"{where}: the model's parameters or batch statistics contain NaN or infinite "
            "values (a diverged training run); refusing to use them"
        )
