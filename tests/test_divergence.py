"""Tests of scores/divergence.py: Jensen-Shannon hand-computed cases and properties."""

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtal_jax.scores import divergence

EPS = 1e-6


def _kl(a, b):
    """Hand formula of KL(a||b) with the eps rule, plain Python (natural log)."""
    return sum(ai * (math.log(max(ai, EPS)) - math.log(max(bi, EPS))) for ai, bi in zip(a, b))


def _js(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return (_kl(p, m) + _kl(q, m)) / (2 * math.log(2))


def test_js_hand_computed_cases():
    js = lambda p, q: float(divergence.js_divergence(np.array(p), np.array(q)))
    assert js([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-7)  # p = q
    assert js([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0, abs=1e-7)  # disjoint supports
    assert js([0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.3, 0.7]) == pytest.approx(1.0, abs=1e-6)
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4), JS = 1.5 ln(4/3) / (2 ln 2) = 0.311278.
    assert js([1.0, 0.0], [0.5, 0.5]) == pytest.approx(1.5 * math.log(4 / 3) / (2 * math.log(2)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sharp=st.booleans())
def test_js_range_and_symmetry(seed, sharp):
    rng = np.random.default_rng(seed)
    p = np.asarray(jax.nn.softmax(rng.normal(size=(50, 6)) * (20.0 if sharp else 2.0)))
    q = np.asarray(jax.nn.softmax(rng.normal(size=(50, 6)) * (20.0 if sharp else 2.0)))
    pq = np.asarray(divergence.js_divergence(p, q))
    assert np.all((pq >= 0) & (pq <= 1))
    np.testing.assert_allclose(pq, np.asarray(divergence.js_divergence(q, p)), atol=1e-7)
    np.testing.assert_allclose(np.asarray(divergence.js_divergence(p, p)), 0.0, atol=1e-6)
    want = [_js(a.astype(float), b.astype(float)) for a, b in zip(p, q)]
    np.testing.assert_allclose(pq, want, rtol=1e-5, atol=1e-6)
