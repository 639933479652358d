"""Tests of mtal_jax.selection: top-k, random subsets, blocked k-centre greedy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtal_jax import selection


def _np_k_center(feats, selectable, centers, budget, first=None):
    """Brute-force reference: full distance matrix, squared Euclidean."""
    d = ((feats[:, None, :] - feats[None, :, :]) ** 2).sum(-1)
    min_d = d[:, centers].min(1) if centers.any() else np.full(len(feats), np.inf)
    picked, out = np.zeros(len(feats), bool), []
    for t in range(budget):
        cand = np.where(selectable & ~picked, min_d, -np.inf)
        i = first if (t == 0 and first is not None) else int(np.argmax(cand))
        out.append(i)
        picked[i] = True
        min_d = np.minimum(min_d, d[:, i])
    return out


def test_top_k_order_and_mask():
    scores = jnp.array([0.1, 0.9, 0.5, 0.7])
    sel = jnp.array([True, False, True, True])
    assert selection.top_k(scores, sel, 2).tolist() == [3, 2]


def test_top_k_nonfinite_scores_never_beat_selectability():
    scores = jnp.array([jnp.inf, -jnp.inf, jnp.nan, 1.0])
    sel = jnp.array([False, True, True, False])
    out = selection.top_k(scores, sel, 2)
    assert sorted(out.tolist()) == [1, 2]


def test_top_k_ties_go_to_lower_index():
    assert selection.top_k(jnp.zeros(5), jnp.ones(5, bool), 3).tolist() == [0, 1, 2]


def test_budget_zero():
    assert selection.top_k(jnp.zeros(3), jnp.ones(3, bool), 0).shape == (0,)
    out = selection.k_center_greedy(jnp.zeros((3, 2)), jnp.ones(3, bool), 0, jax.random.key(0))
    assert out.shape == (0,)


def test_check_budget_eager_error():
    with pytest.raises(ValueError, match="budget 3 exceeds the 2 selectable"):
        selection.top_k(jnp.zeros(4), jnp.array([True, True, False, False]), 3)
    with pytest.raises(ValueError, match="pool size 4"):
        selection.top_k(jnp.zeros(4), jnp.ones(4, bool), 5)
    with pytest.raises(ValueError, match="static Python int"):
        selection.check_budget(jnp.ones(4, bool), 1.5)


def test_check_budget_error_under_jit():
    fn = jax.jit(selection.top_k, static_argnums=2)
    assert fn(jnp.zeros(4), jnp.array([True, True, False, False]), 2).shape == (2,)
    with pytest.raises(Exception, match="budget 3 exceeds the 2 selectable"):
        jax.block_until_ready(fn(jnp.zeros(4), jnp.array([True, True, False, False]), 3))


def test_random_k_deterministic_and_prefix_stable():
    sel = jnp.arange(20) % 3 != 0
    a = selection.random_k(sel, 5, jax.random.key(1))
    b = selection.random_k(sel, 5, jax.random.key(1))
    c = selection.random_k(sel, 5, jax.random.key(2))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert bool(jnp.all(sel[a])) and len(set(a.tolist())) == 5
    padded = jnp.concatenate([sel, jnp.zeros(4, bool)])  # padding appended
    assert selection.random_k(padded, 5, jax.random.key(1)).tolist() == a.tolist()


def test_k_center_points_on_a_line():
    # x = 0 is labeled; squared distances to it: 1, 4, 9, 100, 121.
    # Picks: 11 (121); then 3 (min(9, 64) = 9); then the tie {1, 2, 10} at 1 -> index 1.
    feats = jnp.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0]])
    centers = jnp.array([True, False, False, False, False, False])
    sel = ~centers
    out = selection.k_center_greedy(feats, sel, 3, jax.random.key(0), centers=centers)
    assert out.tolist() == [5, 3, 1]


def test_k_center_without_centers_starts_random_then_farthest():
    feats = jnp.array([[0.0], [1.0], [5.0], [9.0]])
    sel = jnp.ones(4, bool)
    firsts = set()
    for seed in range(8):
        out = selection.k_center_greedy(feats, sel, 2, jax.random.key(seed)).tolist()
        farthest = int(np.argmax(np.abs(np.array([0.0, 1.0, 5.0, 9.0]) - [0, 1, 5, 9][out[0]])))
        assert out[1] == farthest
        firsts.add(out[0])
    assert len(firsts) > 1  # the first pick depends on the key


@pytest.mark.parametrize("block_size", [1, 3, 64])
def test_min_distance_to_centers_blocks(block_size):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(23, 5)).astype(np.float32)
    centers = rng.random(23) < 0.4
    got = selection.min_distance_to_centers(feats, centers, block_size=block_size)
    want = ((feats[:, None] - feats[None, centers]) ** 2).sum(-1).min(1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert bool(jnp.all(jnp.isinf(selection.min_distance_to_centers(feats, np.zeros(23, bool)))))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), budget=st.integers(1, 6), block=st.sampled_from([2, 7, 256]))
def test_k_center_matches_brute_force(seed, budget, block):
    rng = np.random.default_rng(seed)
    n = 30
    feats = rng.normal(size=(n, 4)).astype(np.float32)
    centers = rng.random(n) < 0.3
    centers[0] = True
    sel = ~centers & (rng.random(n) < 0.9)
    if sel.sum() < budget:
        return
    got = selection.k_center_greedy(
        feats, sel, budget, jax.random.key(seed), centers=centers, block_size=block
    )
    assert got.tolist() == _np_k_center(feats, sel, centers, budget)


def test_k_center_jit_equals_eager_and_random_first():
    rng = np.random.default_rng(3)
    feats = jnp.asarray(rng.normal(size=(40, 3)), jnp.float32)
    centers = jnp.arange(40) < 10
    sel = ~centers
    key = jax.random.key(7)
    eager = selection.k_center_greedy(feats, sel, 6, key, centers=centers, random_first=True)
    jitted = jax.jit(
        lambda f, s, k, c: selection.k_center_greedy(f, s, 6, k, centers=c, random_first=True)
    )(feats, sel, key, centers)
    assert eager.tolist() == jitted.tolist()
    first = int(eager[0])
    rest = _np_k_center(np.asarray(feats), np.asarray(sel), np.asarray(centers), 6, first=first)
    assert eager.tolist() == rest


def test_k_center_duplicates_and_exhaustion():
    feats = jnp.zeros((5, 2))  # all identical: every distance is 0
    sel = jnp.array([True, True, False, True, True])
    out = selection.k_center_greedy(feats, sel, 4, jax.random.key(0), centers=~sel)
    assert sorted(out.tolist()) == [0, 1, 3, 4]
