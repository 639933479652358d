"""Tests of CDAL features and distances (mtal_jax.scores.diversity)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import selection
from mtal_jax.scores import diversity


def _h(p):
    p = np.asarray(p, float)
    return -np.sum(p * np.log(p))


def _np_sym_kl_rows(a, va, b, vb, reduce="mean"):
    """Reference CDAL_CS.py distance: per-row symmetric KL, drop rows absent in either."""
    vals = [
        0.5 * np.sum((a[r] - b[r]) * (np.log(a[r]) - np.log(b[r])))
        for r in range(len(a))
        if va[r] and vb[r]
    ]
    if not vals:
        return 0.0
    return float(np.mean(vals) if reduce == "mean" else np.sum(vals))


def test_seg_contextual_diversity_hand_computed():
    p1, p2, p3 = [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]
    probs = jnp.array([[[p1, p2, p3]]])  # [1, 1, 3, 2]
    rows, present = diversity.seg_contextual_diversity(probs)
    want0 = (_h(p1) * np.array(p1) + _h(p2) * np.array(p2)) / 2
    want1 = _h(p3) * np.array(p3)
    np.testing.assert_allclose(rows[0], [want0, want1], rtol=1e-5)
    assert present[0].tolist() == [True, True]
    rows, present = diversity.seg_contextual_diversity(jnp.array([[[p1, p2]]]))
    assert present[0].tolist() == [True, False]
    np.testing.assert_allclose(rows[0, 1], [0.0, 0.0])


def test_det_contextual_diversity_forms():
    q1, q2 = [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]
    probs = jnp.array([[q1, q2, q2]])
    valid = jnp.array([[True, True, False]])
    rows, present = diversity.det_contextual_diversity(probs, valid, form="vector")
    want = (_h(q1) * np.array(q1) + _h(q2) * np.array(q2)) / (_h(q1) + _h(q2))
    np.testing.assert_allclose(rows[0, 0], want, rtol=1e-5)
    assert present.tolist() == [[True]]
    rows, present = diversity.det_contextual_diversity(probs, valid, form="per_class")
    np.testing.assert_allclose(rows[0, 0], _h(q1) * np.array(q1), rtol=1e-5)
    np.testing.assert_allclose(rows[0, 2], _h(q2) * np.array(q2), rtol=1e-5)
    assert present[0].tolist() == [True, False, True]
    _, present = diversity.det_contextual_diversity(probs, jnp.zeros((1, 3), bool))
    assert present.tolist() == [[False]]
    with pytest.raises(ValueError, match="det_form"):
        diversity.det_contextual_diversity(probs, valid, form="bogus")


@pytest.mark.parametrize("det_form", ["vector", "per_class"])
@pytest.mark.parametrize("row_reduce", ["mean", "sum"])
def test_cdal_distance_matches_reference(det_form, row_reduce):
    rng = np.random.default_rng(0)
    n, cs, cd = 6, 4, 3
    seg = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 2, 3, cs)) * 3), -1)
    det = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 5, cd)) * 2), -1)
    det_valid = jnp.asarray(rng.random((n, 5)) < 0.5).at[0].set(False)  # image 0: no detection
    feats = diversity.cdal_features(seg, det, det_valid, det_form=det_form)
    assert feats.shape == (n, diversity.feature_dim(max(cs, cd), det_form))
    dist = diversity.make_cdal_distance(
        det_form=det_form, row_reduce=row_reduce, seg_weight=1.0, det_weight=0.5
    )
    got = np.asarray(dist(feats, feats))
    srows, spres = diversity.seg_contextual_diversity(seg)
    drows, dpres = diversity.det_contextual_diversity(det, det_valid, form=det_form)
    srows, spres, drows, dpres = map(np.asarray, (srows, spres, drows, dpres))
    for i in range(n):
        for j in range(n):
            want = _np_sym_kl_rows(srows[i], spres[i], srows[j], spres[j], row_reduce)
            want += 0.5 * _np_sym_kl_rows(drows[i], dpres[i], drows[j], dpres[j], row_reduce)
            assert got[i, j] == pytest.approx(want, rel=1e-3, abs=1e-4), (i, j)
    np.testing.assert_allclose(np.diag(got), 0.0, atol=1e-4)


def test_cdal_images_sharing_no_class_are_at_distance_zero():
    # The reference drops rows absent in either image; nothing left -> 0 (CDAL_CS.py quirk).
    seg = jnp.array([[[[0.9, 0.1]]], [[[0.2, 0.8]]]])  # image 0: class 0, image 1: class 1
    feats = diversity.cdal_features(seg, jnp.ones((2, 1, 2)) / 2, jnp.zeros((2, 1), bool))
    assert float(diversity.make_cdal_distance()(feats, feats)[0, 1]) == 0.0


def test_cdal_k_center_matches_brute_force():
    rng = np.random.default_rng(1)
    n = 16
    seg = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 2, 2, 3)) * 3), -1)
    det = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 4, 2)) * 2), -1)
    feats = diversity.cdal_features(seg, det, jnp.asarray(rng.random((n, 4)) < 0.6))
    dist = diversity.make_cdal_distance()
    centers = np.arange(n) < 4
    sel = ~centers
    got = selection.k_center_greedy(
        feats, sel, 5, jax.random.key(0), centers=centers, distance_fn=dist, block_size=3
    )
    d = np.asarray(dist(feats, feats))
    min_d = d[:, centers].min(1)
    want, picked = [], np.zeros(n, bool)
    for _ in range(5):
        i = int(np.argmax(np.where(sel & ~picked, min_d, -np.inf)))
        want.append(i)
        picked[i] = True
        min_d = np.minimum(min_d, d[:, i])
    assert got.tolist() == want
