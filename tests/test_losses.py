"""Tests of losses.py (CenterNet targets, focal, L1, segmentation CE, weighting) and of the
LL4AL margin ranking loss (models/loss_heads.py)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import losses, structs
from mtal_jax.models import loss_heads
from tests import fixtures

h, w, C = 16, 16, 3  # output grid of a 64x64 input


_render_jit = jax.jit(losses.render_targets, static_argnames=("out_hw", "num_classes"))


def _render(boxes, labels, valid=None):
    boxes = jnp.asarray(boxes, jnp.float32)
    valid = jnp.ones(len(labels), bool) if valid is None else jnp.asarray(valid)
    return _render_jit(boxes, jnp.asarray(labels, jnp.int32), valid, out_hw=(h, w), num_classes=C)


# ---------------------------------------------------------------- render_targets


def test_render_targets_peaks_at_centre_cells_in_class_channel():
    # Box 0: cells (2.5, 2.5, 5, 7.5): centre (3.75, 5) -> cell x=3, y=5, offset (0.75, 0).
    # Box 1: cells (10, 0, 16, 4): centre (13, 2), offset (0, 0).
    t = _render([[10, 10, 20, 30], [40, 0, 64, 16]], [2, 0])
    chex.assert_shape(t.heatmap, (h, w, C))
    heat = np.asarray(t.heatmap)
    assert heat[5, 3, 2] == 1.0 and heat[2, 13, 0] == 1.0
    assert heat[5, 3, :2].max() == 0.0 and heat[2, 13, 1:].max() == 0.0
    assert (heat == 1.0).sum() == 2, "exactly one 1.0 per object"
    assert heat.max() == 1.0 and heat.min() == 0.0
    np.testing.assert_allclose(np.asarray(t.size), [[2.5, 5.0], [6.0, 4.0]])
    np.testing.assert_allclose(np.asarray(t.offset), [[0.75, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(t.index), [5 * w + 3, 2 * w + 13])
    # The Gaussian decays away from the centre, in the object's channel only.
    assert 0 < heat[5, 4, 2] < 1 and heat[5, 4, 0] == 0


def test_render_targets_ignores_padding_rows():
    with_pad = _render(
        [[10, 10, 20, 30], [1, 1, 60, 60], [0, 0, 0, 0]], [1, 2, 0], [True, False, False]
    )
    alone = _render([[10, 10, 20, 30]], [1])
    np.testing.assert_allclose(np.asarray(with_pad.heatmap), np.asarray(alone.heatmap), atol=1e-6)


def test_render_targets_box_at_the_border_stays_on_the_grid():
    t = _render([[56, 56, 64, 64], [0, 0, 0.5, 0.5]], [0, 1])
    idx = np.asarray(t.index)
    assert ((idx >= 0) & (idx < h * w)).all()
    heat = np.asarray(t.heatmap)
    assert heat[15, 15, 0] == 1.0 and heat[0, 0, 1] == 1.0


def test_gaussian_radius_non_negative_and_monotone():
    sizes = jnp.array([0.0, 0.5, 1.0, 4.0, 20.0])
    r = np.asarray(losses.gaussian_radius(sizes, sizes))
    assert (r >= 0).all() and (np.diff(r) >= 0).all()


# ---------------------------------------------------------------- focal heat-map loss


def test_focal_loss_near_zero_for_a_perfect_heatmap():
    targets = _render([[10, 10, 20, 30], [40, 0, 64, 16]], [2, 0]).heatmap
    perfect = jnp.where(targets >= 1.0, 30.0, -30.0)
    assert float(losses.focal_heatmap_loss(logits=perfect, targets=targets)) < 1e-6


def test_focal_loss_hand_computed():
    # CenterNet's penalty-reduced focal loss (alpha 2, beta 4) on a 1 x 3 grid of 2 classes,
    # plain Python: at a centre (target 1) log(p) (1 - p)^2, elsewhere log(1 - p) p^2 (1 -
    # y)^4; the negated sum divided by the number of centres (2). (The value tests that
    # otherwise pin it, tests/test_torch_twin.py, skip without torch.)
    targets = np.array([[[1.0, 0.0], [0.5, 0.0], [0.0, 1.0]]], np.float32)  # [1, 3, 2]
    logits = np.array([[[0.0, 2.0], [1.0, -1.0], [-2.0, 3.0]]], np.float32)
    sig = lambda x: 1 / (1 + math.exp(-x))

    def pos(x):
        return math.log(sig(x)) * (1 - sig(x)) ** 2

    def neg(x, y):
        return math.log(1 - sig(x)) * sig(x) ** 2 * (1 - y) ** 4

    total = pos(0.0) + neg(1.0, 0.5) + neg(-2.0, 0.0) + neg(2.0, 0.0) + neg(-1.0, 0.0) + pos(3.0)
    got = losses.focal_heatmap_loss(logits=jnp.asarray(logits), targets=jnp.asarray(targets))
    assert float(got) == pytest.approx(-total / 2, rel=1e-5)
    # one centre only (the other lowered to 0.9, a negative): divided by 1
    one = targets.copy()
    one[0, 2, 1] = 0.9
    want = -(pos(0.0) + neg(1.0, 0.5) + neg(-2.0, 0.0) + neg(2.0, 0.0) + neg(-1.0, 0.0)
             + neg(3.0, 0.9))  # fmt: skip
    got = losses.focal_heatmap_loss(logits=jnp.asarray(logits), targets=jnp.asarray(one))
    assert float(got) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("logit", [-3.0, 0.0, 3.0])
def test_focal_loss_positive_for_imperfect_heatmaps(logit):
    targets = _render([[10, 10, 20, 30]], [1]).heatmap
    loss = float(losses.focal_heatmap_loss(logits=jnp.full((h, w, C), logit), targets=targets))
    assert np.isfinite(loss) and loss > 0.01


def test_focal_loss_without_objects_is_finite_and_only_penalises_confidence():
    empty = jnp.zeros((h, w, C))
    low = float(losses.focal_heatmap_loss(logits=jnp.full((h, w, C), -10.0), targets=empty))
    high = float(losses.focal_heatmap_loss(logits=jnp.full((h, w, C), 2.0), targets=empty))
    assert 0 <= low < 1e-3 < high and np.isfinite(high)


def test_focal_loss_no_nan_at_extreme_logits():
    targets = _render([[10, 10, 20, 30]], [1]).heatmap
    for v in (-1e4, 1e4):
        loss, grad = jax.value_and_grad(
            lambda x: losses.focal_heatmap_loss(logits=x, targets=targets)
        )(jnp.full((h, w, C), v))
        chex.assert_tree_all_finite((loss, grad))


# ---------------------------------------------------------------- segmentation cross-entropy


def _xent_reference(logits, labels, num_classes):
    logits = np.asarray(logits, np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = (labels >= 0) & (labels < num_classes)
    nll = -np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0]
    return nll[valid].mean()


def test_segmentation_xent_ignores_255_and_padding():
    rng = np.random.default_rng(0)
    k = 5
    logits = rng.normal(size=(8, 8, k)).astype(np.float32)
    labels = rng.integers(0, k, (8, 8)).astype(np.int32)
    labels[:2] = structs.IGNORE_LABEL  # void
    labels[:, 6:] = structs.IGNORE_LABEL  # padding (right)
    got = float(
        losses.segmentation_xent(
            logits=jnp.asarray(logits), labels=jnp.asarray(labels), num_classes=k
        )
    )
    np.testing.assert_allclose(got, _xent_reference(logits, labels, k), rtol=1e-5)
    # Logits under ignored pixels do not matter.
    changed = logits.copy()
    changed[:2] = 100.0
    changed[:, 6:] = -100.0
    again = float(
        losses.segmentation_xent(
            logits=jnp.asarray(changed), labels=jnp.asarray(labels), num_classes=k
        )
    )
    np.testing.assert_allclose(again, got, rtol=1e-6)


def test_segmentation_xent_upsamples_stride_4_logits():
    # Constant logits per image: the resize is exact, so the loss equals the per-pixel CE.
    k = 4
    logits = jnp.broadcast_to(jnp.array([2.0, 0.0, -1.0, 0.5]), (4, 4, k))
    labels = jnp.full((16, 16), 1, jnp.int32)
    got = float(losses.segmentation_xent(logits=logits, labels=labels, num_classes=k))
    np.testing.assert_allclose(got, -float(jax.nn.log_softmax(logits[0, 0])[1]), rtol=1e-5)


def test_segmentation_xent_fully_ignored_is_zero_with_finite_grad():
    labels = jnp.full((8, 8), structs.IGNORE_LABEL, jnp.int32)
    loss, grad = jax.value_and_grad(
        lambda x: losses.segmentation_xent(logits=x, labels=labels, num_classes=3)
    )(jnp.ones((8, 8, 3)))
    assert float(loss) == 0.0
    chex.assert_tree_all_finite(grad)


def test_segmentation_xent_class_weights_hand_computed():
    # Two labelled pixels (class 0 with nll a, class 1 with nll b), one void pixel:
    # weights (1, 3) give (1 * a + 3 * b) / 4; uniform weights give the plain mean.
    logits = jnp.array([[[0.0, 0.0], [2.0, 0.0], [5.0, -5.0]]])  # [1, 3, 2]
    labels = jnp.array([[0, 1, structs.IGNORE_LABEL]], jnp.int32)
    a, b = np.log(2.0), np.log1p(np.exp(2.0))
    got = losses.segmentation_xent(
        logits=logits, labels=labels, num_classes=2, class_weights=jnp.array([1.0, 3.0])
    )
    np.testing.assert_allclose(float(got), (a + 3 * b) / 4, rtol=1e-5)
    for uniform in (jnp.array([2.0, 2.0]), None):
        got = losses.segmentation_xent(
            logits=logits, labels=labels, num_classes=2, class_weights=uniform
        )
        np.testing.assert_allclose(float(got), (a + b) / 2, rtol=1e-5)
    # A class of weight 0 is ignored; all-zero weights on the image give 0, finite grad.
    got = losses.segmentation_xent(
        logits=logits, labels=labels, num_classes=2, class_weights=jnp.array([0.0, 1.0])
    )
    np.testing.assert_allclose(float(got), b, rtol=1e-5)
    loss, grad = jax.value_and_grad(
        lambda x: losses.segmentation_xent(
            logits=x, labels=labels[:, :1], num_classes=2, class_weights=jnp.array([0.0, 1.0])
        )
    )(logits[:, :1])
    assert float(loss) == 0.0
    chex.assert_tree_all_finite(grad)


def test_per_example_losses_passes_seg_class_weights():
    batch = fixtures.to_batch(fixtures.host_batch(fixtures.scene_examples(2, seed=1)))
    outputs = fixtures.random_outputs(2)
    k = outputs.seg_logits.shape[-1]
    plain = losses.per_example_losses(outputs, batch)
    ones = losses.per_example_losses(outputs, batch, seg_class_weights=(1.0,) * k)
    chex.assert_trees_all_close(ones, plain, rtol=1e-5)
    # Weight only on the most frequent class = the plain CE over that class's pixels.
    labels = np.asarray(batch.seg_labels)
    c = int(np.bincount(labels[(labels >= 0) & (labels < k)]).argmax())
    only = losses.per_example_losses(
        outputs, batch, seg_class_weights=tuple(float(i == c) for i in range(k))
    )
    masked = batch.replace(
        seg_labels=jnp.where(batch.seg_labels == c, batch.seg_labels, structs.IGNORE_LABEL)
    )
    expected = losses.per_example_losses(outputs, masked)
    np.testing.assert_allclose(only["seg"], expected["seg"], rtol=1e-5)
    for term in ("det_heatmap", "det_size", "det_offset"):
        np.testing.assert_array_equal(only[term], plain[term])
    assert not np.allclose(only["seg"], plain["seg"])


@pytest.mark.parametrize(
    "weights,match",
    [((1.0, 2.0), "has 2 values; the dataset has 3"), ((1.0, -1.0, 1.0), ">= 0"),
     ((0.0, 0.0, 0.0), "not all 0"), ((1.0, float("nan"), 1.0), "finite")],
)  # fmt: skip
def test_check_class_weights_names_the_option(weights, match):
    losses.check_class_weights((), 3, name="loss.seg_class_weights")  # none: fine
    losses.check_class_weights((0.5, 1.0, 2.0), 3, name="loss.seg_class_weights")
    with pytest.raises(ValueError, match=f"loss.seg_class_weights.*{match}|{match}"):
        losses.check_class_weights(weights, 3, name="loss.seg_class_weights")


def test_masked_l1_ignores_invalid_rows_and_empty_is_zero():
    pred = jnp.array([[1.0, 2.0], [5.0, 5.0], [np.nan, 0.0]])
    target = jnp.array([[0.0, 0.0], [5.0, 4.0], [0.0, 0.0]])
    got = losses.masked_l1(pred=pred, target=target, valid=jnp.array([True, True, False]))
    np.testing.assert_allclose(float(got), (3.0 + 1.0) / 2)
    assert (
        float(losses.masked_l1(pred=pred[:2], target=target[:2], valid=jnp.zeros(2, bool))) == 0.0
    )


# ---------------------------------------------------------------- per-example losses


TERMS = {"det_heatmap", "det_size", "det_offset", "seg"}


def test_per_example_losses_contract():
    batch = fixtures.to_batch(fixtures.host_batch(fixtures.scene_examples(2, seed=1)))
    loss, terms, means, grads = fixtures.loss_and_grads(fixtures.random_outputs(2), batch)
    assert set(terms) == TERMS == set(means)
    chex.assert_shape(list(terms.values()), (2,))
    chex.assert_type(list(terms.values()), jnp.float32)
    chex.assert_tree_all_finite((loss, terms, grads))
    assert all(bool(jnp.all(v >= 0)) for v in terms.values())
    assert float(loss) > 0


def test_no_nan_with_zero_boxes_and_fully_ignored_masks():
    host = fixtures.host_batch(fixtures.scene_examples(2, seed=2))
    host["box_valid"][:] = False
    host["seg_labels"][:] = structs.IGNORE_LABEL
    loss, terms, means, grads = fixtures.loss_and_grads(
        fixtures.random_outputs(2), fixtures.to_batch(host)
    )
    chex.assert_tree_all_finite((loss, terms, grads))
    assert float(means["det_size"]) == float(means["det_offset"]) == float(means["seg"]) == 0.0
    assert float(means["det_heatmap"]) > 0  # confident peaks on an empty image still cost


def test_weighted_total_excludes_invalid_examples():
    per_example = {
        "a": jnp.array([1.0, 2.0, 1e6]),
        "b": jnp.array([4.0, 0.0, jnp.nan]),
        "c": jnp.ones(3),
    }
    valid = jnp.array([True, True, False])
    total, means = losses.weighted_total(per_example, {"a": 2.0, "b": 0.5}, valid)
    np.testing.assert_allclose(float(means["a"]), 1.5)
    np.testing.assert_allclose(float(means["b"]), 2.0)
    np.testing.assert_allclose(float(total), 2.0 * 1.5 + 0.5 * 2.0)  # "c" has no weight
    # The total is a function of the valid examples only.
    grad = jax.grad(lambda a: losses.weighted_total({"a": a}, {"a": 1.0}, valid)[0])(
        per_example["a"]
    )
    np.testing.assert_allclose(np.asarray(grad), [0.5, 0.5, 0.0])


def test_weighted_total_all_invalid_is_zero():
    total, means = losses.weighted_total(
        {"a": jnp.array([3.0, 4.0])}, {"a": 1.0}, jnp.zeros(2, bool)
    )
    assert float(total) == 0.0 and float(means["a"]) == 0.0


# ---------------------------------------------------------------- LL4AL margin ranking loss


@pytest.mark.parametrize(
    "pred, target, expected",
    [
        ([2.0, 0.0], [1.0, 0.0], 0.0),  # right order, margin met
        ([0.5, 0.0], [1.0, 0.0], 0.5),  # right order, margin 1 not met
        ([0.0, 0.5], [1.0, 0.0], 1.5),  # wrong order
        ([0.0, 2.0], [0.0, 1.0], 0.0),  # target_i < target_j: sign -1, pred_i << pred_j
        ([0.3, 0.0], [1.0, 1.0], 1.3),  # tie: sign -1 (reference quirk)
        ([-2.0, 0.0], [1.0, 1.0], 0.0),  # tie, pred_i - pred_j <= -margin
    ],
)
def test_margin_ranking_loss_known_pairs(pred, target, expected):
    got = loss_heads.margin_ranking_loss(jnp.array(pred), jnp.array(target), margin=1.0)
    np.testing.assert_allclose(float(got), expected, atol=1e-6)


def test_margin_ranking_loss_pairs_i_with_b_minus_1_minus_i():
    # Pairs (0, 3) and (1, 2): losses 1.5 (wrong order) and 0 (right order), mean over 2 pairs.
    pred = jnp.array([0.0, 5.0, 1.0, 0.5])
    target = jnp.array([1.0, 3.0, 2.0, 0.0])
    np.testing.assert_allclose(float(loss_heads.margin_ranking_loss(pred, target)), 1.5 / 2 + 0.0)


def test_margin_ranking_loss_odd_batch_and_detached_target():
    with pytest.raises(ValueError, match="even"):
        loss_heads.margin_ranking_loss(jnp.zeros(3), jnp.zeros(3))
    grad = jax.grad(lambda t: loss_heads.margin_ranking_loss(jnp.array([0.0, 0.5]), t))(
        jnp.array([1.0, 0.0])
    )
    np.testing.assert_array_equal(np.asarray(grad), 0.0)
