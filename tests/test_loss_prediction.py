"""Tests of LL4AL scoring (mtal_jax.scores.loss_prediction) and the ranking loss on a known pair."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax.models import loss_heads
from mtal_jax.scores import loss_prediction


def test_ranking_loss_known_pairs():
    # B = 4 pairs (0, 3) and (1, 2). Pair (0, 3): d_pred = 3 - 2 = 1, d_true = 0.5 > 0 ->
    # max(0, 1 - 1) = 0. Pair (1, 2): d_pred = 1, d_true = 0 (tie -> sign -1) ->
    # max(0, 1 + 1) = 2. Loss = (0 + 2) / 2 = 1.
    pred = jnp.array([3.0, 1.0, 0.0, 2.0])
    target = jnp.array([1.0, 2.0, 2.0, 0.5])
    assert float(loss_heads.margin_ranking_loss(pred, target, margin=1.0)) == pytest.approx(1.0)


def test_ll4al_normalisations():
    v = jnp.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0], [2.0, 99.0]])
    valid = jnp.array([True, True, True, False])
    rank = loss_prediction.normalize_columns(v, valid, "rank")
    np.testing.assert_allclose(rank, [[0, 0], [1, 1], [0.5, 0.5], [0, 0]])
    z = loss_prediction.normalize_columns(v, valid, "zscore")
    s = math.sqrt(2 / 3)
    np.testing.assert_allclose(z[:3, 0], [-1 / s, 1 / s, 0.0], rtol=1e-5)
    np.testing.assert_allclose(z[:3, 1], [-1 / s, 1 / s, 0.0], rtol=1e-5)
    ties = loss_prediction.normalize_columns(
        jnp.array([[1.0], [1.0], [2.0]]), jnp.ones(3, bool), "rank"
    )
    np.testing.assert_allclose(ties[:, 0], [0.25, 0.25, 1.0])  # ranks 0.5, 0.5, 2 over 2
    # Plain sum: the segmentation scale dominates; rank / z-score weigh both tasks equally.
    comb = loss_prediction.combined_predicted_loss(v, valid)
    np.testing.assert_allclose(comb, [11, 33, 22, 101])
    with pytest.raises(ValueError, match="zscore"):
        loss_prediction.normalize_columns(v, valid, "minmax")
