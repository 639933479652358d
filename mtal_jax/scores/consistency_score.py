"""The score function of the ``ours`` strategy: Algorithm 1 on ``Predictions`` (paper III-G).

``make_score_fn`` reads the BoxMasks and scored detections that ``boxmask``'s predict-time
extra leaves in ``Predictions.extras``, runs ``consistency.consistency_scores`` on them and
the full-image segmentation, and reduces each image to the combined score (higher = more
inconsistent = more informative) plus the per-image diagnostics the analyses read
(docs/design.md §4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtal_jax import strategy_types, structs
from mtal_jax.scores import consistency

DEFAULT_WEIGHTS = (1.0, 1.0, 1.0)  # (w_loc, w_cls, w_seg) of ``ours``


def _masked_max(values: jax.Array, valid: jax.Array) -> jax.Array:
    """[B, K] -> [B] max over valid slots, 0 where none."""
    best = jnp.max(jnp.where(valid, values, -jnp.inf), axis=1)
    return jnp.where(jnp.any(valid, axis=1), best, 0.0)


def _best_box(values: jax.Array, s_box: jax.Array, valid: jax.Array) -> jax.Array:
    """[B, K] -> [B] value of the valid box with the largest S_box, 0 where none."""
    best = jnp.argmax(jnp.where(valid, s_box, -jnp.inf), axis=1)  # [B]
    picked = jnp.take_along_axis(values, best[:, None], axis=1)[:, 0]
    return jnp.where(jnp.any(valid, axis=1), picked, 0.0)


def make_score_fn(
    *,
    weights: tuple[float, float, float] = DEFAULT_WEIGHTS,
    eps: float = 1e-6,
    cls_divergence: str = "js",
) -> strategy_types.ScoreFn:
    """Score function of ``ours``: Algorithm 1 on ``Predictions`` with the BoxMask extras.

    Args:
      weights: (w_loc, w_cls, w_seg) (Table I ablations are 0/1 settings).
      eps: log floor of the divergences (``consistency.consistency_scores``).
      cls_divergence: S_cls divergence, ``"js"`` or ``"kl"``.

    Returns:
      ``score_fn(preds) -> dict`` of [B] arrays: ``score`` (higher = more inconsistent,
      -inf for padded examples; only content pixels count, ``preds.pixel_valid``),
      ``s_seg``, ``s_loc_max``, ``s_cls_max``, ``s_box_max`` (max over valid boxes, 0 with
      none), ``s_loc_best`` and ``s_cls_best`` (S_loc and S_cls of the box that attains
      ``s_box_max``, 0 with none: ``score = w_seg s_seg + w_loc s_loc_best + w_cls
      s_cls_best``), ``num_boxes`` and ``boxes_dropped``. Needs the extras of
      ``boxmask.make_box_mask_extra``.
    """

    consistency.check_eps(eps)  # when the strategy is built, not at its first score

    def score_fn(preds: structs.Predictions) -> dict[str, jax.Array]:
        valid = preds.extras["box_valid"]
        out = consistency.consistency_scores(
            preds.seg_probs,
            preds.extras["box_masks"],
            preds.detections.det_probs,
            valid,
            preds.extras["det_to_seg"][0],
            eps=eps,
            weights=weights,
            cls_divergence=cls_divergence,
            pixel_valid=preds.pixel_valid,
        )
        return strategy_types.mask_padded({
            "score": out.score,
            "s_seg": out.s_seg,
            "s_loc_max": _masked_max(out.s_loc, valid),
            "s_cls_max": _masked_max(out.s_cls, valid),
            "s_box_max": _masked_max(out.s_box, valid),
            "s_loc_best": _best_box(out.s_loc, out.s_box, valid),
            "s_cls_best": _best_box(out.s_cls, out.s_box, valid),
            "num_boxes": jnp.sum(valid, axis=1).astype(jnp.int32),
            "boxes_dropped": preds.extras["boxes_dropped"],
        }, preds.valid)  # fmt: skip

    return score_fn
