"""Tests of EquAL (mtal_jax.scores.equal) and the entropy scores (mtal_jax.scores.uncertainty)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax.scores import equal, uncertainty


class _Ctx:
    def __init__(self, segment_fn):
        self.segment_fn = segment_fn


def _pixelwise_segment(images):
    """Flip-equivariant stand-in: per-pixel colour -> 3 logits, 4x4 average pooling."""
    x = images.astype(jnp.float32) / 255.0  # [B, H, W, 3]
    logits = jnp.stack([x[..., 0] * 3, x[..., 1] * 2 - x[..., 2], x[..., 2]], -1)
    b, h, w, c = logits.shape
    return logits.reshape(b, h // 4, 4, w // 4, 4, c).mean((2, 4))


def test_symmetric_image_equivariant_model_scores_zero():
    rng = np.random.default_rng(0)
    half = rng.integers(0, 255, (2, 16, 8, 3), dtype=np.uint8)
    images = jnp.asarray(np.concatenate([half, half[:, :, ::-1]], axis=2))  # left-right symmetric
    ctx = _Ctx(_pixelwise_segment)
    probs = jax.nn.softmax(_pixelwise_segment(images), -1)
    flip = equal.flip_extra(ctx, images, None)[equal.FLIP_KEY]
    np.testing.assert_allclose(flip, probs, atol=1e-6)
    for variant in ("kl", "sym_kl"):
        np.testing.assert_allclose(
            equal.flip_consistency(probs, flip, variant=variant), 0.0, atol=1e-6
        )
    ent = uncertainty.mean_pixel_entropy(probs)
    np.testing.assert_allclose(
        equal.flip_consistency(probs, flip, variant="entropy_sum"), 2 * ent, rtol=1e-6
    )


def test_flip_extra_realigns_any_image_for_equivariant_model():
    images = jnp.asarray(np.random.default_rng(1).integers(0, 255, (1, 8, 16, 3)), jnp.uint8)
    probs = jax.nn.softmax(_pixelwise_segment(images), -1)
    flip = equal.flip_extra(_Ctx(_pixelwise_segment), images, None)[equal.FLIP_KEY]
    np.testing.assert_allclose(flip, probs, atol=1e-6)


def test_hand_computed_kl():
    # Output columns: p = [.5, .5] at column 0 and q = [.8, .2] at column 1, whatever the
    # input; after flipping back, column 0 holds q and column 1 holds p.
    # KL(p||q) = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2) = 0.223144
    # KL(q||p) = 0.8 ln 1.6 + 0.2 ln 0.4 = 0.192745
    # kl = mean(KL(p||q), KL(q||p)) = 0.207944; sym_kl per pixel = 0.207944 too.
    table = jnp.log(jnp.array([[0.5, 0.5], [0.8, 0.2]]))

    def seg(images):
        return jnp.broadcast_to(table[None, None], (images.shape[0], 1, 2, 2))

    images = jnp.zeros((1, 4, 8, 3), jnp.uint8)
    probs = jax.nn.softmax(seg(images), -1)
    flip = equal.flip_extra(_Ctx(seg), images, None)[equal.FLIP_KEY]
    want = 0.5 * (
        0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(2.5) + 0.8 * math.log(1.6) + 0.2 * math.log(0.4)
    )
    assert float(equal.flip_consistency(probs, flip, variant="kl")[0]) == pytest.approx(
        want, abs=1e-6
    )
    assert float(equal.flip_consistency(probs, flip)[0]) == pytest.approx(want, abs=1e-6)
    # Only column 0 valid: kl = KL(p || q) = 0.223144.
    valid = jnp.array([[[True, False]]])
    got = equal.flip_consistency(probs, flip, variant="kl", pixel_valid=valid)
    assert float(got[0]) == pytest.approx(0.223144, abs=1e-5)
    assert float(equal.flip_consistency(probs, flip, pixel_valid=valid)[0]) == pytest.approx(
        0.223144, abs=1e-5
    )  # the default is the one-directional kl
    # sym_kl at column 0 alone: (KL(p||q) + KL(q||p)) / 2 = 0.207944, unlike kl's 0.223144
    got = equal.flip_consistency(probs, flip, variant="sym_kl", pixel_valid=valid)
    assert float(got[0]) == pytest.approx(want, abs=1e-6)


def test_unknown_variant():
    with pytest.raises(ValueError, match="sym_kl"):
        equal.flip_consistency(jnp.ones((1, 1, 1, 2)) / 2, jnp.ones((1, 1, 1, 2)) / 2, variant="x")


def test_entropy_properties():
    assert float(uncertainty.entropy(jnp.array([0.0, 1.0, 0.0]))) == 0.0
    assert float(uncertainty.entropy(jnp.ones(5) / 5)) == pytest.approx(math.log(5), rel=1e-6)
    det = uncertainty.mean_detection_entropy(
        jnp.ones((2, 3, 4)) / 4, jnp.array([[True, False, False], [False] * 3])
    )
    np.testing.assert_allclose(det, [math.log(4), 0.0], rtol=1e-6)
    out = uncertainty.entropy_scores(
        jnp.ones((2, 2, 2, 5)) / 5,
        jnp.ones((2, 3, 4)) / 4,
        jnp.array([[True, False, False], [False] * 3]),
    )
    np.testing.assert_allclose(out["score"], [math.log(5) + math.log(4), math.log(5)], rtol=1e-6)
