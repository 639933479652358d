"""Tests of scores/consistency.py: hand-computed toys, properties, jit, retracing (both S_cls modes)."""

import math

import chex
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtal_jax.scores import consistency
from tests import score_reference as reference

EPS = 1e-6
# Segmentation classes: 0 road, 1 car, 2 person, 3 vegetation. Detection: 0 car, 1 person.
DET_TO_SEG = np.array([1, 2], np.int32)
H = W = 4


def _one_hot_probs(labels, num_classes=4):
    return np.eye(num_classes, dtype=np.float32)[labels]  # [..., C]


def _mask(rows, cols):
    m = np.zeros((H, W), bool)
    m[rows, cols] = True
    return m


def _scores(seg_probs, box_masks, det_probs, det_valid, det_to_seg=DET_TO_SEG, **kw):
    out = consistency.consistency_scores(
        seg_probs[None], box_masks[None], det_probs[None], det_valid[None], det_to_seg, **kw
    )
    return jax.tree.map(lambda x: np.asarray(x[0]), out)


def _kl(a, b):
    """Hand formula of KL(a||b) with the eps rule, plain Python (natural log)."""
    return sum(ai * (math.log(max(ai, EPS)) - math.log(max(bi, EPS))) for ai, bi in zip(a, b))


def _sym_kl(p, q):
    return _kl(p, q) + _kl(q, p)


def _js(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return (_kl(p, m) + _kl(q, m)) / (2 * math.log(2))


def _per_pixel(p, q, mode):
    """The summand of S_cls of one pixel: sym KL / 2 ("kl") or JS ("js")."""
    return _sym_kl(p, q) / 2 if mode == "kl" else _js(p, q)


def _q(car, person):
    """p~_cls for DET_TO_SEG = [car, person]: eps only on road and vegetation (no detection)."""
    q = np.array([EPS, car, person, EPS])
    return q / q.sum()


MODES = ("js", "kl")


@pytest.mark.parametrize("mode", MODES)
def test_box_fully_covered_by_its_class(mode):
    labels = np.zeros((H, W), int)
    labels[1:3, 1:3] = 1  # a car
    out = _scores(
        _one_hot_probs(labels),
        _mask(slice(1, 3), slice(1, 3))[None],
        np.array([[1.0, 0.0]]),
        np.array([True]),
        cls_divergence=mode,
    )
    assert out.s_loc[0] == pytest.approx(0.0)
    assert out.s_cls[0] == pytest.approx(0.0, abs=1e-4)
    assert out.s_seg == pytest.approx(0.0)
    assert out.score == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_box_half_covered(mode):
    labels = np.zeros((H, W), int)
    labels[1, 1:3] = 1  # top half of the box is car, bottom half road
    out = _scores(
        _one_hot_probs(labels),
        _mask(slice(1, 3), slice(1, 3))[None],
        np.array([[1.0, 0.0]]),
        np.array([True]),
        cls_divergence=mode,
    )
    assert out.s_loc[0] == pytest.approx(0.5)
    # Two pixels agree (divergence ~ 0) and two are road (one-hot road vs q ~ car).
    q = _q(1.0, 0.0)
    want = (2 * _per_pixel([0, 1, 0, 0], q, mode) + 2 * _per_pixel([1, 0, 0, 0], q, mode)) / 4
    assert out.s_cls[0] == pytest.approx(want, rel=1e-5)
    assert out.score == pytest.approx(out.s_loc[0] + out.s_cls[0], rel=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_class_mismatch(mode):
    labels = np.zeros((H, W), int)
    labels[1:3, 1:3] = 2  # segmentation says person, detection says car
    out = _scores(
        _one_hot_probs(labels),
        _mask(slice(1, 3), slice(1, 3))[None],
        np.array([[0.9, 0.1]]),
        np.array([True]),
        cls_divergence=mode,
    )
    assert out.s_loc[0] == pytest.approx(1.0)
    want = _per_pixel([0, 0, 1, 0], _q(0.9, 0.1), mode)
    assert out.s_cls[0] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_soft_probabilities_hand_computed(mode):
    p = np.array([0.1, 0.5, 0.3, 0.1], np.float32)
    seg_probs = np.broadcast_to(p, (H, W, 4)).copy()
    out = _scores(
        seg_probs,
        _mask(slice(0, 2), slice(0, 1))[None],
        np.array([[0.7, 0.3]]),
        np.array([True]),
        cls_divergence=mode,
    )
    assert out.s_cls[0] == pytest.approx(_per_pixel(p, _q(0.7, 0.3), mode), rel=1e-5)
    assert out.s_loc[0] == pytest.approx(0.0)  # argmax is car everywhere
    assert out.s_seg == pytest.approx(1.0)  # every outside pixel is labelled car


# ---- S_cls, Jensen-Shannon: hand-computed cases ------------------------------------------


def test_s_cls_js_is_zero_when_segmentation_equals_detection_and_near_one_when_disjoint():
    q = _q(0.6, 0.4).astype(np.float32)
    mask = _mask(slice(0, 2), slice(0, 2))[None]
    same = _scores(
        np.broadcast_to(q, (H, W, 4)).copy(), mask, np.array([[0.6, 0.4]]), np.array([True])
    )
    assert same.s_cls[0] == pytest.approx(0.0, abs=1e-6)
    labels = np.full((H, W), 3)  # vegetation, a class detection does not predict
    disjoint = _scores(_one_hot_probs(labels), mask, np.array([[0.6, 0.4]]), np.array([True]))
    assert disjoint.s_cls[0] == pytest.approx(_js([0, 0, 0, 1], q), rel=1e-6)
    assert 1 - 1e-4 < disjoint.s_cls[0] <= 1.0


def test_det_probs_to_seg_adds_eps_only_to_non_detection_classes():
    q = np.asarray(consistency.det_probs_to_seg(np.array([[1.0, 0.0]]), DET_TO_SEG, 4, eps=EPS))
    np.testing.assert_allclose(q[0], [EPS / (1 + 2 * EPS), 1 / (1 + 2 * EPS), 0.0, q[0, 0]])
    assert q[0, 2] == 0.0  # the person detection class gets no eps
    np.testing.assert_allclose(q.sum(-1), 1.0, rtol=1e-6)


def test_detection_class_pixels_outside_every_box():
    labels = np.zeros((H, W), int)
    labels[0, 0] = 1  # car outside the box
    labels[3, 0:2] = 2  # persons outside the box
    labels[3, 3] = 3  # vegetation outside: not a detection class
    labels[1:3, 1:3] = 1
    out = _scores(
        _one_hot_probs(labels),
        _mask(slice(1, 3), slice(1, 3))[None],
        np.array([[1.0, 0.0]]),
        np.array([True]),
    )
    assert out.s_seg == pytest.approx(3 / 12)
    assert out.score == pytest.approx(3 / 12, abs=1e-4)


def test_empty_box_mask():
    labels = np.zeros((H, W), int)
    out = _scores(
        _one_hot_probs(labels), np.zeros((1, H, W), bool), np.array([[1.0, 0.0]]), np.array([True])
    )
    assert out.s_loc[0] == 1.0 and out.s_cls[0] == 0.0 and out.s_box[0] == 1.0
    assert out.s_seg == 0.0 and out.score == pytest.approx(1.0)


def test_no_pixel_outside_gives_zero_s_seg():
    labels = np.ones((H, W), int)
    out = _scores(
        _one_hot_probs(labels), np.ones((1, H, W), bool), np.array([[1.0, 0.0]]), np.array([True])
    )
    assert out.s_seg == 0.0


def test_invalid_slots_are_ignored():
    labels = np.zeros((H, W), int)
    labels[0, :] = 1  # car pixels, covered only by the invalid slot's mask
    masks = np.stack([_mask(slice(2, 4), slice(2, 4)), _mask(slice(0, 1), slice(0, 4))])
    det_probs = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = _scores(_one_hot_probs(labels), masks, det_probs, np.array([True, False]))
    assert out.s_loc[1] == 0 and out.s_cls[1] == 0 and out.s_box[1] == 0
    assert out.s_seg == pytest.approx(4 / 12)  # the invalid mask does not hide the car row
    assert out.s_loc[0] == pytest.approx(1.0)  # valid person box over road
    assert out.score == pytest.approx(out.s_seg + out.s_box[0], rel=1e-5)


def test_no_valid_detection():
    labels = np.ones((H, W), int)
    out = _scores(
        _one_hot_probs(labels),
        np.ones((2, H, W), bool),
        np.full((2, 2), 0.5),
        np.array([False, False]),
    )
    assert out.s_seg == pytest.approx(1.0) and out.score == pytest.approx(1.0)


def test_two_detection_classes_share_a_segmentation_class():
    det_to_seg = np.array([1, 1, 2], np.int32)  # car and van both segment as car
    det_probs = np.array([[0.3, 0.3, 0.4]])
    q = np.asarray(consistency.det_probs_to_seg(det_probs, det_to_seg, 4, eps=EPS))
    want_q = _q(0.6, 0.4)
    np.testing.assert_allclose(q[0], want_q, rtol=1e-5)
    labels = np.zeros((H, W), int)
    labels[1:3, 1:3] = 2
    out = _scores(
        _one_hot_probs(labels),
        _mask(slice(1, 3), slice(1, 3))[None],
        det_probs,
        np.array([True]),
        det_to_seg,
        cls_divergence="kl",
    )
    assert out.s_loc[0] == pytest.approx(0.0)  # c_k = det_to_seg[argmax] = person
    assert out.s_cls[0] == pytest.approx(_sym_kl([0, 0, 1, 0], want_q) / 2, rel=1e-5)


def test_weights_are_the_table_one_ablations():
    labels = np.zeros((H, W), int)
    labels[0, 0] = 1
    labels[1, 1:3] = 1
    args = (
        _one_hot_probs(labels),
        _mask(slice(1, 3), slice(1, 3))[None],
        np.array([[1.0, 0.0]]),
        np.array([True]),
    )
    full = _scores(*args)
    for w in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1)]:
        out = _scores(*args, weights=w)
        want = w[2] * full.s_seg + w[0] * full.s_loc[0] + w[1] * full.s_cls[0]
        assert out.score == pytest.approx(want, rel=1e-5)


# ---- properties on random inputs (fixed shapes: one compilation) -------------------------

B, K, HH, WW, C_SEG, C_DET = 2, 5, 6, 7, 5, 3
RANDOM_DET_TO_SEG = np.array([1, 2, 2], np.int32)
_jitted = jax.jit(consistency.consistency_scores, static_argnames=("cls_divergence", "weights"))


def _random_inputs(seed, sharp=False):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(B, HH, WW, C_SEG)) * (8.0 if sharp else 2.0)
    seg_probs = np.asarray(jax.nn.softmax(logits, -1), np.float32)
    masks = rng.uniform(size=(B, K, HH, WW)) < rng.uniform(0, 0.5, (B, K, 1, 1))
    det_probs = rng.dirichlet(np.ones(C_DET) * (0.2 if sharp else 1.0), (B, K)).astype(np.float32)
    valid = rng.uniform(size=(B, K)) < 0.7
    return seg_probs, masks, det_probs, valid


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sharp=st.booleans())
def test_matches_numpy_reference(mode, seed, sharp):
    """float32 against the float64 per-box reference, also with probabilities near eps."""
    seg_probs, masks, det_probs, valid = _random_inputs(seed, sharp)
    out = _jitted(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, cls_divergence=mode)
    for b in range(B):
        ref = reference.consistency_scores_np(
            seg_probs[b], masks[b], det_probs[b], valid[b], RANDOM_DET_TO_SEG, cls_divergence=mode
        )
        np.testing.assert_allclose(np.asarray(out.s_loc[b]), ref["s_loc"], atol=1e-5)
        np.testing.assert_allclose(np.asarray(out.s_cls[b]), ref["s_cls"], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(float(out.s_seg[b]), ref["s_seg"], atol=1e-6)
        np.testing.assert_allclose(float(out.score[b]), ref["score"], rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("weights", [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 1.0)])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sharp=st.booleans())
def test_without_s_cls_the_divergence_changes_no_score_bit(weights, seed, sharp):
    """With w_cls = 0 the JS and KL programs give bit-identical S_loc, S_seg, S_box and
    scores (ratios of pixel counts; w_cls S_cls is an exact 0), so their selections are one
    and the same (``strategy_identity.selection_identity``; experiments copy such runs)."""
    inputs = (*_random_inputs(seed, sharp), RANDOM_DET_TO_SEG)
    js = _jitted(*inputs, cls_divergence="js", weights=weights)
    kl = _jitted(*inputs, cls_divergence="kl", weights=weights)
    for name in ("s_loc", "s_seg", "s_box", "score"):
        np.testing.assert_array_equal(np.asarray(getattr(js, name)), np.asarray(getattr(kl, name)))
    assert not np.array_equal(np.asarray(js.s_cls), np.asarray(kl.s_cls)) or not np.any(inputs[3])


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_ranges_and_invalid_slots(mode, seed):
    seg_probs, masks, det_probs, valid = _random_inputs(seed)
    out = _jitted(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, cls_divergence=mode)
    chex.assert_tree_all_finite(out)
    s_loc, s_cls, s_seg = map(np.asarray, (out.s_loc, out.s_cls, out.s_seg))
    assert np.all((0 <= s_loc) & (s_loc <= 1)) and np.all((0 <= s_seg) & (s_seg <= 1))
    assert np.all(s_cls >= 0)
    if mode == "js":  # the bounded variant shares the range of S_loc and S_seg
        assert np.all(s_cls <= 1) and np.all(np.asarray(out.score) <= 3)
    assert np.all(s_loc[~valid] == 0) and np.all(s_cls[~valid] == 0)
    assert np.all(np.asarray(out.score) >= np.asarray(out.s_seg) - 1e-6)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_permuting_slots_is_equivariant(mode, seed):
    seg_probs, masks, det_probs, valid = _random_inputs(seed)
    perm = np.random.default_rng(seed).permutation(K)
    out = _jitted(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, cls_divergence=mode)
    permuted = _jitted(
        seg_probs, masks[:, perm], det_probs[:, perm], valid[:, perm], RANDOM_DET_TO_SEG,
        cls_divergence=mode,
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(permuted.score), np.asarray(out.score), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(permuted.s_box), np.asarray(out.s_box)[:, perm], rtol=1e-6
    )


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_adding_an_invalid_slot_changes_nothing(mode, seed):
    seg_probs, masks, det_probs, valid = _random_inputs(seed)
    rng = np.random.default_rng(seed)
    out = _jitted(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, cls_divergence=mode)
    more = consistency.consistency_scores(
        seg_probs,
        np.concatenate([masks, rng.uniform(size=(B, 1, HH, WW)) < 0.5], 1),
        np.concatenate([det_probs, rng.dirichlet(np.ones(C_DET), (B, 1))], 1),
        np.concatenate([valid, np.zeros((B, 1), bool)], 1),
        RANDOM_DET_TO_SEG,
        cls_divergence=mode,
    )
    np.testing.assert_allclose(np.asarray(more.score), np.asarray(out.score), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(more.s_seg), np.asarray(out.s_seg), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(more.s_box[:, :K]), np.asarray(out.s_box), rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perfect_agreement_scores_near_zero(mode, seed):
    """Confident segmentation, boxes whose BoxMask is exactly their object, nothing outside."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((B, HH, WW), int)
    masks = np.zeros((B, K, HH, WW), bool)
    det_probs = np.zeros((B, K, C_DET), np.float32)
    valid = np.zeros((B, K), bool)
    for b in range(B):
        for k in range(2):  # two objects on disjoint rows
            d = rng.integers(C_DET)
            rows = slice(3 * k, 3 * k + 2)
            labels[b, rows, 1:4] = RANDOM_DET_TO_SEG[d]
            masks[b, k, rows, 1:4] = True
            det_probs[b, k, d] = 1.0
            valid[b, k] = True
    seg_probs = 0.999 * np.eye(C_SEG, dtype=np.float32)[labels] + 0.001 / C_SEG
    out = _jitted(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, cls_divergence=mode)
    np.testing.assert_allclose(np.asarray(out.score), 0.0, atol=0.05)
    np.testing.assert_array_equal(np.asarray(out.s_loc), 0.0)
    np.testing.assert_array_equal(np.asarray(out.s_seg), 0.0)


class ConsistencyVariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_equals_eager(self):
        seg_probs, masks, det_probs, valid = _random_inputs(7)
        for mode in MODES:
            fn = self.variant(
                lambda *a, mode=mode: consistency.consistency_scores(
                    *a, RANDOM_DET_TO_SEG, weights=(1.0, 0.5, 2.0), cls_divergence=mode
                )
            )
            got = fn(seg_probs, masks, det_probs, valid)
            eager = consistency.consistency_scores(
                seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, weights=(1.0, 0.5, 2.0),
                cls_divergence=mode,
            )  # fmt: skip
            chex.assert_trees_all_close(got, eager, rtol=1e-6, atol=1e-6)
            for b in range(B):
                want = reference.consistency_scores_np(
                    seg_probs[b], masks[b], det_probs[b], valid[b], RANDOM_DET_TO_SEG,
                    weights=(1.0, 0.5, 2.0), cls_divergence=mode,
                )  # fmt: skip
                np.testing.assert_allclose(float(got.score[b]), want["score"], rtol=2e-5)
            chex.assert_shape([got.s_loc, got.s_cls, got.s_box], (B, K))
            chex.assert_shape([got.s_seg, got.score], (B,))

    def test_no_retracing_across_batches(self):
        @jax.jit
        @chex.assert_max_traces(n=1)
        def fn(seg_probs, masks, det_probs, valid):
            return consistency.consistency_scores(
                seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG
            )

        for seed in range(3):
            fn(*_random_inputs(seed))


@pytest.mark.parametrize("mode", consistency.CLS_DIVERGENCES)
def test_padding_changes_no_score(mode):
    # 4 x 4 grid, its last row padding; one car box over (0, 0)-(1, 1); car also at (2, 3)
    content = np.ones((H, W), bool)
    content[3] = False
    labels = np.zeros((H, W), np.int32)
    labels[:2, :2] = 1
    labels[2, 3] = 1
    masks = np.zeros((1, H, W), bool)
    masks[0, :2, :2] = True
    masks[0, 3, :2] = True  # a BoxMask reaching into the padding
    det = np.array([[0.9, 0.1]], np.float32)
    valid = np.array([True])
    outs = []
    for padding_class in (0, 1, 2):  # road, car, person predicted on the black rows
        lab = labels.copy()
        lab[3] = padding_class
        outs.append(_scores(_one_hot_probs(lab), masks, det, valid, cls_divergence=mode,
                            pixel_valid=content[None]))  # fmt: skip
    for out in outs:
        # S_seg: 1 car pixel among the 8 content pixels outside the BoxMask (Eq. 3 by hand)
        assert out.s_seg == pytest.approx(1 / 8)
        assert out.s_loc[0] == pytest.approx(0.0)  # the BoxMask's content pixels are all car
        np.testing.assert_allclose(out.score, outs[0].score, rtol=1e-6)
    # without pixel_valid the padding counts, and what is predicted there moves S_seg
    road = _scores(_one_hot_probs(np.where(content, labels, 0)), masks, det, valid)
    car = _scores(_one_hot_probs(np.where(content, labels, 1)), masks, det, valid)
    assert road.s_seg == pytest.approx(1 / 10) and car.s_seg == pytest.approx(3 / 10)


def test_rejects_an_eps_outside_zero_one():
    seg = _one_hot_probs(np.zeros((H, W), np.int32))
    args = (seg, np.zeros((1, H, W), bool), np.array([[0.5, 0.5]], np.float32), np.array([True]))
    for eps in (0.0, -1e-3, 1.0):
        with pytest.raises(ValueError, match="eps must be in"):
            _scores(*args, eps=eps)


def test_rejects_mismatched_shapes_and_unknown_divergence():
    seg_probs, masks, det_probs, valid = _random_inputs(0)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        consistency.consistency_scores(
            seg_probs, masks[:, :, :-1], det_probs, valid, RANDOM_DET_TO_SEG
        )
    with pytest.raises(ValueError, match=r"cls_divergence must be one of \('js', 'kl'\)"):
        consistency.consistency_scores(
            seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, cls_divergence="jsd"
        )


def test_rejects_wrong_ranks_bad_det_to_seg_and_weights_clearly():
    # an unbatched call, a 1-D det_valid, class ids that name no segmentation class (they
    # would silently drop a class from q and S_seg), float ids (truncated), two weights
    seg_probs, masks, det_probs, valid = _random_inputs(0)
    num_seg = seg_probs.shape[-1]
    call = consistency.consistency_scores
    with pytest.raises(ValueError, match=r"seg_probs must be \[B, h, w, C_seg\], got shape .*"
                       r"\(one image is a batch of one"):  # fmt: skip
        call(seg_probs[0], masks[0], det_probs[0], valid[0], RANDOM_DET_TO_SEG)
    with pytest.raises(ValueError, match=r"det_valid must be \[B, K\], got shape"):
        call(seg_probs, masks, det_probs, valid.reshape(-1), RANDOM_DET_TO_SEG)
    with pytest.raises(ValueError, match=r"det_probs must be \[B, K, C_det\]"):
        call(seg_probs, masks, det_probs[..., 0], valid, RANDOM_DET_TO_SEG)
    for bad in (num_seg, -1):
        ids = np.array(RANDOM_DET_TO_SEG)
        ids[0] = bad
        with pytest.raises(ValueError, match=rf"det_to_seg must name segmentation classes in "
                           rf"\[0, {num_seg}\)"):  # fmt: skip
            call(seg_probs, masks, det_probs, valid, ids)
    with pytest.raises(ValueError, match="det_to_seg must hold integer class ids"):
        call(seg_probs, masks, det_probs, valid, np.asarray(RANDOM_DET_TO_SEG, np.float32))
    with pytest.raises(ValueError, match=r"weights must be three numbers"):
        call(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG, weights=(1.0, 1.0))
    # under jit the arrays may be traced (det_to_seg too): no retrace, the same scores
    jitted = jax.jit(call, static_argnames=("eps", "weights", "cls_divergence"))
    want = call(seg_probs, masks, det_probs, valid, RANDOM_DET_TO_SEG).score
    got = jitted(seg_probs, masks, det_probs, valid, jax.numpy.asarray(RANDOM_DET_TO_SEG)).score
    np.testing.assert_allclose(got, want, rtol=1e-6)
