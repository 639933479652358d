"""Tests of scores/boxmask.py: BoxMasks, packed crops, the ``ours`` strategy (paper III-C; docs/design.md §4).

The BoxMask pipeline end to end (``box_crops``, ``boxmask``, ``consistency_score``,
through ``ours_strategy.ours``) against ``tests/score_reference``.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import ours_strategy, strategies, strategy_types, structs
from mtal_jax.models import multitask
from mtal_jax.ops import boxes as box_ops
from mtal_jax.scores import boxmask
from mtal_jax.train import step
from tests import score_reference as reference

C_SEG, C_DET = 4, 2
DET_TO_SEG = np.array([1, 2], np.int32)
_MIX = np.array(  # colour -> class logits of the stand-in network
    [[4.0, -2.0, 1.0, -3.0], [-3.0, 5.0, -1.0, 0.0], [0.0, -2.0, 4.0, 1.0]], np.float32
)


def stand_in_segment_fn(images):
    """Tiny stand-in of ``Model.segment``: 4x4 average pool, then a per-pixel linear map."""
    x = jnp.asarray(images, jnp.float32) / 255.0
    p, s_h, s_w, _ = x.shape
    x = x.reshape(p, s_h // 4, 4, s_w // 4, 4, 3).mean((2, 4))  # [P, S/4, S/4, 3]
    return 3.0 * (x @ _MIX) - 1.0


def _ctx(segment_fn=stand_in_segment_fn):
    return strategy_types.PredictContext(
        apply_fn=None, segment_fn=segment_fn, decode_fn=None, det_to_seg=jnp.asarray(DET_TO_SEG)
    )


def _random_batch(seed, b=2, k=6, height=32, width=64, valid_frac=0.6):
    """Blobby images (so crops have structure) and random detections."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (b, height // 8, width // 8, 3)).astype(np.float32)
    images = np.asarray(jax.image.resize(coarse, (b, height, width, 3), "linear"), np.uint8)
    x1 = rng.uniform(0, width - 4, (b, k))
    y1 = rng.uniform(0, height - 4, (b, k))
    boxes = np.stack(
        [
            x1,
            y1,
            np.minimum(x1 + rng.uniform(2, 30, (b, k)), width),
            np.minimum(y1 + rng.uniform(2, 20, (b, k)), height),
        ],
        -1,
    ).astype(np.float32)
    det_probs = rng.dirichlet(np.ones(C_DET), (b, k)).astype(np.float32)
    scores = rng.uniform(size=(b, k)).astype(np.float32)
    valid = rng.uniform(size=(b, k)) < valid_frac
    detections = structs.Detections(
        boxes=boxes, det_probs=det_probs, scores=scores, labels=det_probs.argmax(-1), valid=valid
    )
    seg_probs = jax.nn.softmax(stand_in_segment_fn(images), -1)
    preds = structs.Predictions(
        detections=detections,
        seg_probs=seg_probs,
        embedding=np.zeros((b, 1)),
        valid=np.ones(b, bool),
    )
    return images, preds


def _score_images(images, preds, **kw):
    """The BoxMask scoring from images and predictions, as ``train.step.make_predict_fn`` runs it."""
    strategy = ours_strategy.ours(**kw)
    extras = {}
    for extra in strategy.extras:
        extras.update(extra(_ctx(), images, preds))
    preds = preds.replace(extras=extras)
    return strategy.score(preds), extras


# ---- box_masks_from_crops -----------------------------------------------------------------


def test_box_masks_from_crops_matches_numpy():
    rng = np.random.default_rng(0)
    b, k, s, h, w = 2, 4, 5, 9, 11
    crop_probs = np.asarray(jax.nn.softmax(rng.normal(size=(b, k, s, s, C_SEG)) * 2, -1))
    boxes = np.sort(rng.uniform(-1, 12, (b, k, 2, 2)), axis=2)  # [b, k, (min, max), (x, y)]
    boxes = boxes.transpose(0, 1, 3, 2).reshape(b, k, 4)[..., [0, 2, 1, 3]].astype(np.float32)
    windows = np.asarray(box_ops.enlarge_boxes(boxes, 0.2))
    classes = rng.integers(0, C_SEG, (b, k))
    got = np.asarray(
        boxmask.box_masks_from_crops(crop_probs, windows, boxes, classes, tau=0.3, out_hw=(h, w))
    )
    chex.assert_shape(got, (b, k, h, w))
    for i in range(b):
        for j in range(k):
            want = reference.box_mask_np(
                crop_probs[i, j, ..., classes[i, j]],
                windows[i, j],
                boxes[i, j],
                tau=0.3,
                out_hw=(h, w),
            )
            np.testing.assert_array_equal(got[i, j], want)


def test_box_mask_is_box_restricted_and_thresholded():
    boxes = jnp.array(
        [[[1.0, 1.0, 3.0, 4.0]]]
    )  # pixel centres x in {1.5, 2.5}, y in {1.5, 2.5, 3.5}
    windows = jnp.array([[[0.0, 0.0, 4.0, 5.0]]])
    ones = jnp.ones((1, 1, 4, 4, C_SEG)) / C_SEG
    full = boxmask.box_masks_from_crops(
        ones.at[..., 2].set(0.9), windows, boxes, jnp.array([[2]]), tau=0.3, out_hw=(5, 6)
    )
    np.testing.assert_array_equal(
        np.asarray(full[0, 0]), np.asarray(box_ops.boxes_to_pixel_masks(boxes[0, 0], (5, 6)))
    )
    assert int(full.sum()) == 6
    empty = boxmask.box_masks_from_crops(
        ones, windows, boxes, jnp.array([[2]]), tau=0.3, out_hw=(5, 6)
    )
    assert not bool(empty.any())  # 0.25 <= tau


# ---- the BoxMask extra against the naive per-box reference ---------------------------------


@pytest.mark.parametrize("mode", ["js", "kl"])
@pytest.mark.parametrize("seed", [0, 1])
def test_extra_and_scores_match_naive_reference(seed, mode):
    images, preds = _random_batch(seed)
    scores, extras = _score_images(images, preds, crop_chunk=4, cls_divergence=mode)
    det = preds.detections
    scored = det.valid & (det.scores >= 0.3)  # the default det_score_threshold
    seg_probs = np.asarray(preds.seg_probs)
    for i in range(images.shape[0]):
        masks, ref = reference.naive_box_mask_scores(
            lambda x: np.asarray(stand_in_segment_fn(x)),
            images[i],
            det.boxes[i],
            det.det_probs[i],
            scored[i],
            seg_probs[i],
            DET_TO_SEG,
            cls_divergence=mode,
        )
        got = np.asarray(extras["box_masks"][i])
        assert np.mean(got != masks) < 3e-3  # uint8 rounding of crops may flip a pixel at tau
        np.testing.assert_allclose(float(scores["score"][i]), ref["score"], rtol=2e-2, atol=2e-2)
        np.testing.assert_allclose(float(scores["s_seg"][i]), ref["s_seg"], atol=2e-2)
        assert int(scores["num_boxes"][i]) == int(scored[i].sum())
        # The combined score splits into the terms of the best box (al.diagnostics).
        want = scores["s_seg"][i] + scores["s_loc_best"][i] + scores["s_cls_best"][i]
        assert float(scores["score"][i]) == pytest.approx(float(want), rel=1e-6, abs=1e-6)
    assert extras["box_masks"].any()  # the toy is not vacuous
    np.testing.assert_array_equal(np.asarray(scores["boxes_dropped"]), 0)


def _counting_segment_fn(calls):
    def segment_fn(images):
        jax.debug.callback(lambda n: calls.append(int(n)), jnp.int32(images.shape[0]))
        return stand_in_segment_fn(images)

    return segment_fn


@pytest.mark.parametrize("num_valid,want", [(0, []), (3, [4]), (5, [4, 4]), (12, [4, 4, 4])])
def test_padded_slots_cost_no_network_compute(num_valid, want):
    images, preds = _random_batch(3)  # B * K = 12 slots
    valid = np.zeros(12, bool)
    valid[np.random.default_rng(num_valid).permutation(12)[:num_valid]] = True
    preds = preds.replace(detections=preds.detections.replace(valid=valid.reshape(2, 6)))
    calls = []
    extra = boxmask.make_box_mask_extra(crop_chunk=4, det_score_threshold=0.0)
    out = jax.jit(lambda im, p: extra(_ctx(_counting_segment_fn(calls)), im, p))(images, preds)
    jax.effects_barrier()
    assert calls == want  # ceil(valid / crop_chunk) network calls of crop_chunk crops
    np.testing.assert_array_equal(np.asarray(out["box_valid"]), valid.reshape(2, 6))


def test_max_crops_drops_lowest_scores_and_counts_them():
    images, preds = _random_batch(4, valid_frac=1.0)
    det = preds.detections
    _, extras = _score_images(images, preds, max_crops=5, crop_chunk=4, det_score_threshold=0.0)
    kept = np.asarray(extras["box_valid"])
    assert kept.sum() == 5
    assert det.scores[kept].min() >= det.scores[~kept].max()
    np.testing.assert_array_equal(np.asarray(extras["boxes_dropped"]), 6 - kept.sum(1))
    assert not np.asarray(extras["box_masks"])[~kept].any()


def test_det_score_threshold_filters_boxes():
    images, preds = _random_batch(5, valid_frac=1.0)
    scores, extras = _score_images(images, preds, det_score_threshold=0.5)
    np.testing.assert_array_equal(np.asarray(extras["box_valid"]), preds.detections.scores >= 0.5)
    np.testing.assert_array_equal(np.asarray(scores["boxes_dropped"]), 0)
    _, default = _score_images(images, preds)  # default threshold 0.3
    np.testing.assert_array_equal(np.asarray(default["box_valid"]), preds.detections.scores >= 0.3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_box_below_the_threshold_changes_nothing(seed):
    images, preds = _random_batch(seed, valid_frac=0.5)
    det = preds.detections
    base_scores, base_extras = _score_images(images, preds)
    # Turn every invalid slot into a valid detection with a confidence below 0.3.
    low = np.random.default_rng(seed).uniform(0.0, 0.29, det.scores.shape).astype(np.float32)
    more = det.replace(valid=np.ones_like(det.valid), scores=np.where(det.valid, det.scores, low))
    scores, extras = _score_images(images, preds.replace(detections=more))
    chex.assert_trees_all_equal(scores, base_scores)
    np.testing.assert_array_equal(
        np.asarray(extras["box_masks"]), np.asarray(base_extras["box_masks"])
    )


def test_image_without_scored_detection_has_zero_s_box_and_whole_image_s_seg():
    images, preds = _random_batch(7, valid_frac=1.0)
    det = preds.detections
    preds = preds.replace(detections=det.replace(scores=np.full_like(det.scores, 0.2)))
    scores, extras = _score_images(images, preds)
    assert not np.asarray(extras["box_valid"]).any()
    np.testing.assert_array_equal(np.asarray(scores["s_box_max"]), 0.0)
    labels = np.asarray(preds.seg_probs).argmax(-1)
    whole = np.isin(labels, DET_TO_SEG).mean(axis=(1, 2))
    np.testing.assert_allclose(np.asarray(scores["s_seg"]), whole, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(scores["score"]), whole, rtol=1e-6)


def test_extras_reproduce_the_box_masks_at_tau():
    """The analyses rebuild BoxMasks at other taus from the extras; at tau they are equal."""
    images, preds = _random_batch(8)
    _, extras = _score_images(images, preds, tau=0.4)
    h, w = preds.seg_probs.shape[1:3]
    masks = boxmask.box_masks_from_class_probs(
        extras["box_class_probs"], extras["box_windows_grid"], extras["boxes_grid"],
        tau=0.4, out_hw=(h, w),
    ) & np.asarray(extras["box_valid"])[..., None, None]  # fmt: skip
    np.testing.assert_array_equal(np.asarray(masks), np.asarray(extras["box_masks"]))


class BoxMaskVariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_equals_eager(self):
        images, preds = _random_batch(6)
        got_scores, got_extras = self.variant(lambda im, p: _score_images(im, p, crop_chunk=4))(
            images, preds
        )
        want_scores, want_extras = _score_images(images, preds, crop_chunk=4)
        np.testing.assert_array_equal(
            np.asarray(got_extras["box_masks"]), np.asarray(want_extras["box_masks"])
        )
        chex.assert_trees_all_close(got_scores, want_scores, rtol=1e-5, atol=1e-5)

    def test_no_retracing_across_batches(self):
        @jax.jit
        @chex.assert_max_traces(n=1)
        def score(images, preds):
            return _score_images(images, preds, crop_chunk=4)[0]

        for seed, frac in [(0, 0.0), (1, 0.5), (2, 1.0)]:
            out = score(*_random_batch(seed, valid_frac=frac))
            chex.assert_shape(list(out.values()), (2,))
            chex.assert_tree_all_finite(out)


# ---- the strategy -------------------------------------------------------------------------


@pytest.mark.parametrize("crop_window", ["box", "native"])
@pytest.mark.parametrize("margin", [0.1, 0.5])
@pytest.mark.parametrize(
    "y1, x1, y2, x2", [(32, 40, 64, 88), (36, 44, 68, 92), (8, 4, 120, 60), (96, 0, 128, 32)]
)  # the last two: windows clipped at the image's edges
def test_a_box_on_its_object_gives_the_object_cells(y1, x1, y2, x2, margin, crop_window):
    """Geometry, independent of ``tests/score_reference``: a green object whose box is
    exactly its extent (multiples of the grid's 4 pixels) gets a BoxMask of exactly the
    object's grid cells, whatever the margin, the window's clipping or its mode."""
    height = width = 128
    images = np.zeros((1, height, width, 3), np.uint8)
    images[0, y1:y2, x1:x2, 1] = 255  # class 1 (car) for the stand-in network
    det = structs.Detections(
        boxes=np.array([[[x1, y1, x2, y2]]], np.float32),
        det_probs=np.array([[[1.0, 0.0]]], np.float32), scores=np.ones((1, 1), np.float32),
        labels=np.zeros((1, 1), np.int32), valid=np.ones((1, 1), bool),
    )  # fmt: skip
    seg = jax.nn.softmax(stand_in_segment_fn(images), -1)
    preds = structs.Predictions(
        detections=det, seg_probs=seg, embedding=np.zeros((1, 1)), valid=np.ones(1, bool)
    )
    extra = boxmask.make_box_mask_extra(context_margin=margin, crop_window=crop_window)
    mask = np.asarray(extra(_ctx(), images, preds)["box_masks"][0, 0])
    want = np.zeros((height // 4, width // 4), bool)
    want[y1 // 4 : y2 // 4, x1 // 4 : x2 // 4] = True
    np.testing.assert_array_equal(mask, want)


@pytest.mark.parametrize("crop_window", ["box", "native"])
def test_crop_windows_stay_inside_the_image_content(crop_window):
    # a 64 x 64 input whose last 16 rows are letterbox padding (content 48 x 64): a box at
    # the content's bottom edge gets a window that stops there, not in the black rows
    images = np.zeros((1, 64, 64, 3), np.uint8)
    det = structs.Detections(
        boxes=np.array([[[8.0, 30.0, 40.0, 48.0]]], np.float32),
        det_probs=np.array([[[1.0, 0.0]]], np.float32), scores=np.ones((1, 1), np.float32),
        labels=np.zeros((1, 1), np.int32), valid=np.ones((1, 1), bool),
    )  # fmt: skip
    preds = structs.Predictions(
        detections=det, seg_probs=jnp.full((1, 16, 16, C_SEG), 1.0 / C_SEG),
        embedding=np.zeros((1, 1)), valid=np.ones(1, bool),
        content_hw=np.array([[48, 64]], np.int32),
    )  # fmt: skip
    extra = boxmask.make_box_mask_extra(crop_size=32, crop_window=crop_window)
    windows = np.asarray(extra(_ctx(), images, preds)["box_windows_grid"][0, 0]) * 4  # pixels
    assert windows[3] <= 48 + 1e-4 and windows[1] >= 0  # inside the content's rows
    if crop_window == "native":
        assert windows[3] - windows[1] == pytest.approx(38.4)  # the grown width: a square, moved up
    no_content = extra(_ctx(), images, preds.replace(content_hw=None))["box_windows_grid"]
    assert float(no_content[0, 0, 3]) * 4 > 48  # without it the window reaches the padding


def test_ours_is_a_strategy():
    strategy = ours_strategy.ours(
        strategy_types.CycleContext(cycle=3, labeled_class_hist=[1.0]), weights=(1, 0, 1), tau=0.5
    )
    assert isinstance(strategy, strategy_types.Strategy)
    assert len(strategy.extras) == 1 and strategy.features is None
    for bad, match in [
        ({"crop_size": 48}, "positive multiple of 32"),
        ({"crop_size": 0}, "positive multiple of 32"),  # every BoxMask empty, S_loc = 1
        ({"crop_size": -32}, "positive multiple of 32"),
        ({"crop_chunk": 0}, "crop_chunk must be at least 1"),
        ({"max_crops": 0}, "max_crops must be None"),  # was read as "no cap"
        ({"tau": -0.1}, r"tau .* must be in \[0, 1\)"),
        ({"tau": 1.0}, r"tau .* must be in \[0, 1\)"),
        ({"context_margin": -0.6}, "context_margin must be >= 0"),  # inverted windows
        ({"eps": 0.0}, r"eps must be in \(0, 1\)"),  # 0 log 0: every score NaN
        ({"eps": -1e-3}, r"eps must be in \(0, 1\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            ours_strategy.ours(**bad)
    with pytest.raises(ValueError, match=r"takes no keyword\(s\) \['tua'\]; valid: .*'tau'"):
        strategies.get_strategy("ours", tua=0.5)
    with pytest.raises(ValueError, match="cls_divergence must be one of"):
        strategies.get_strategy("ours", cls_divergence="jsd")
    with pytest.raises(ValueError, match=r"det_score_threshold must be in \[0, 1\]"):
        strategies.get_strategy("ours", det_score_threshold=1.5)
    for bad in [(1, 1), (1, -1, 1), (0, 0, 0), (1, float("nan"), 1), "abc", None]:
        with pytest.raises(ValueError, match="weights must be three finite, non-negative"):
            strategies.get_strategy("ours", weights=bad)
    strategies.get_strategy("ours", weights=[1, 2.5, 0])  # a list from a JSON config is fine


def test_ours_selects_top_scores():
    strategy = ours_strategy.ours()
    scores = jnp.array([0.1, 0.9, 0.5, 0.7, 0.3])
    selectable = jnp.array([True, False, True, True, True])
    picked = strategy.select(scores, jnp.zeros((5, 1)), selectable, 2, jax.random.key(0))
    assert sorted(np.asarray(picked).tolist()) == [2, 3]


def test_ours_runs_in_the_predict_function():
    """End to end with the real network (test backbone) and ``train.step.make_predict_fn``."""
    model = multitask.Model(num_det_classes=C_DET, num_seg_classes=C_SEG, backbone="test")
    variables = multitask.create_variables(model, jax.random.key(0), (32, 32))
    predict_fn = step.make_predict_fn(
        model,
        ours_strategy.ours(crop_size=32, crop_chunk=4),
        decode_kwargs={"max_detections": 4, "score_threshold": 0.0},
        det_to_seg=DET_TO_SEG,
    )
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
    batch = structs.Batch(
        images=images,
        boxes=np.zeros((2, 1, 4), np.float32),
        box_labels=np.zeros((2, 1), np.int32),
        box_valid=np.zeros((2, 1), bool),
        seg_labels=np.zeros((2, 32, 32), np.int32),
        valid=np.ones(2, bool),
        index=np.arange(2, dtype=np.int32),
    )
    scores, feats = jax.jit(predict_fn)(variables, batch)
    assert feats is None
    assert {"score", "s_seg", "s_loc_max", "s_cls_max", "s_box_max", "boxes_dropped"} <= set(scores)
    chex.assert_shape(list(scores.values()), (2,))
    chex.assert_tree_all_finite(scores)
    # a padded example scores -inf (design.md §3), the other one is unchanged
    padded, _ = jax.jit(predict_fn)(variables, batch.replace(valid=np.array([True, False])))
    assert padded["score"][1] == -np.inf and padded["score"][0] == scores["score"][0]
