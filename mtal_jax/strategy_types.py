"""The strategy protocol: the types every strategy and the shell agree on (pure data).

A strategy is like an optax ``GradientTransformation``: a small NamedTuple of pure
functions, built by a factory (``mtal_jax.strategies``) from keyword hyperparameters and
the cycle's ``CycleContext``.

* ``score(preds: Predictions) -> dict[str, [B] float32]`` runs inside the jitted predict
  function batch by batch. The dict must hold ``"score"`` (higher = more informative,
  ``-inf`` for padded examples); every other key is a score component recorded with the
  selection.
* ``select(scores [N], feats [N, D], selectable [N] bool, budget, key) -> [budget] int32``
  is pure and jittable with ``budget`` static. It never returns a non-selectable
  (labeled or padded) index or a duplicate, and is deterministic for a given key.
* ``features(preds) -> [B, D]`` (optional) gives the per-image features that diversity
  strategies select on; ``needs_labeled_features`` asks the shell to compute them for
  the labeled images too (k-centre seeding).
* ``extras``: functions the predict function runs after the forward pass, whose outputs
  land in ``Predictions.extras`` (flip views, crops, BoxMasks). A strategy never calls the
  model itself; extras receive the model's functions through ``PredictContext``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax import structs

Array = jax.Array


class CycleContext(NamedTuple):
    """What the shell knows about the current AL cycle, handed to every strategy factory.

    Attributes:
      cycle: the AL cycle whose model scores the pool (its selection is labeled in
        cycle + 1); 0 outside an experiment.
      labeled_class_hist: [C_det] mean ground-truth object count per class over the
        labeled set (CALD's class-distribution step), or None when unknown.
    """

    cycle: int = 0
    labeled_class_hist: ArrayLike | None = None


class PredictContext(NamedTuple):
    """Model functions available to extras (all pure, eval mode, variables closed over).

    Attributes:
      apply_fn: images [B, H, W, 3] uint8 -> ``structs.Outputs``.
      segment_fn: images [B', H', W', 3] uint8 -> seg logits [B', H'/4, W'/4, C_seg]
        (backbone + neck + segmentation head only; any batch and size).
      decode_fn: ``structs.Outputs`` -> ``structs.Detections``.
      det_to_seg: [C_det] int32 mapping detection classes to segmentation classes.
    """

    apply_fn: Callable[[Array], structs.Outputs]
    segment_fn: Callable[[Array], Array]
    decode_fn: Callable[[structs.Outputs], structs.Detections]
    det_to_seg: Array


ScoreFn = Callable[[structs.Predictions], dict[str, Array]]
SelectFn = Callable[[Array, Array, Array, int, Array], Array]
FeatureFn = Callable[[structs.Predictions], Array]
# (ctx, images [B, H, W, 3] uint8, preds) -> dict of [B, ...] arrays for Predictions.extras
ExtraFn = Callable[[PredictContext, Array, structs.Predictions], dict[str, Any]]


class Strategy(NamedTuple):
    """A selection strategy (see the module docstring)."""

    score: ScoreFn
    select: SelectFn
    features: FeatureFn | None = None
    extras: tuple[ExtraFn, ...] = ()
    needs_labeled_features: bool = False


def mask_padded(out: dict[str, Array], valid: Array) -> dict[str, Array]:
    """Sets ``out["score"]`` to -inf where ``valid`` [B] is False (padded examples)."""
    return {**out, "score": jnp.where(valid, out["score"], -jnp.inf)}
