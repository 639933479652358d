"""LL4AL scoring: combine the predicted detection and segmentation losses (paper IV-B).

Yoo & Kweon (CVPR 2019) rank images by the loss their loss-prediction module predicts.
The MTAL paper (IV-B) gives the network one module per task and sums the two predicted
losses. Because the two loss scales differ, each column can first be normalised over the
images being ranked (docs/baselines.md, "LL4AL"). Normalising needs the
whole pool, so it happens in ``select``, not in the batch-wise ``score``.

The modules and their margin-ranking training loss live in ``models/loss_heads.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

NORMALIZATIONS = ("none", "rank", "zscore")


def normalize_columns(values: ArrayLike, valid: ArrayLike, method: str = "none") -> jax.Array:
    """Normalises each column over the valid rows.

    * ``"none"``: unchanged (the paper's plain sum);
    * ``"rank"``: rank among the valid rows divided by (count - 1), in [0, 1]; tied values
      get the mean of their ranks;
    * ``"zscore"``: (x - mean) / std over the valid rows (std floored at 1e-12).

    Args:
      values: [N, T] float (T tasks).
      valid: [N] bool, rows that define the statistics (e.g. the selectable pool).
      method: one of ``NORMALIZATIONS``.

    Returns:
      [N, T] float32; invalid rows are 0 after ``rank`` / ``zscore``.

    Raises:
      ValueError: for an unknown method.

    Examples:
      >>> import jax.numpy as jnp
      >>> v = jnp.array([[1.0], [3.0], [2.0]])
      >>> normalize_columns(v, jnp.array([True, True, True]), "rank")[:, 0].tolist()
      [0.0, 1.0, 0.5]
    """
    x = jnp.asarray(values, jnp.float32)
    valid = jnp.asarray(valid, bool)
    vf = valid.astype(jnp.float32)[:, None]  # [N, 1]
    count = jnp.sum(vf)
    if method == "none":
        return x
    if method == "zscore":
        mean = jnp.sum(x * vf, axis=0) / jnp.maximum(count, 1.0)
        var = jnp.sum(jnp.square(x - mean) * vf, axis=0) / jnp.maximum(count, 1.0)
        return jnp.where(valid[:, None], (x - mean) / jnp.maximum(jnp.sqrt(var), 1e-12), 0.0)
    if method == "rank":
        # rank_i = #(valid x_j < x_i) + (#(valid x_j == x_i) - 1) / 2, per column, O(N log N).
        masked = jnp.where(valid[:, None], x, jnp.inf)
        srt = jnp.sort(masked, axis=0)  # [N, T], invalid rows last

        def per_col(col, s):
            below = jnp.searchsorted(s, col, side="left")
            upto = jnp.searchsorted(s, col, side="right")
            return below + (upto - below - 1) / 2.0

        ranks = jax.vmap(per_col, in_axes=(1, 1), out_axes=1)(x, srt)
        return jnp.where(valid[:, None], ranks / jnp.maximum(count - 1.0, 1.0), 0.0)
    raise ValueError(f"unknown normalisation {method!r}; valid: {NORMALIZATIONS}")


def combined_predicted_loss(
    loss_pred: ArrayLike,
    valid: ArrayLike,
    *,
    normalization: str = "none",
    weights: tuple[float, ...] = (1.0, 1.0),
) -> jax.Array:
    """LL4AL multi-task score: weighted sum of the (normalised) predicted losses.

    Args:
      loss_pred: [N, T] predicted losses (T = 2: detection, segmentation).
      valid: [N] bool rows that define the normalisation statistics.
      normalization: one of ``NORMALIZATIONS`` (default ``"none"``: the paper's sum).
      weights: [T] task weights.

    Returns:
      [N] float32, higher = more informative.
    """
    norm = normalize_columns(loss_pred, valid, normalization)
    return jnp.sum(norm * jnp.asarray(weights, jnp.float32), axis=-1)
