"""Tests of CALD (mtal_jax.scores.cald) and its augmentations (mtal_jax.ops.augment)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from mtal_jax import structs
from mtal_jax.ops import augment
from mtal_jax.scores import cald


def _js(p, q):
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (p + q) / 2
    return 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))


# ---------------------------------------------------------------- consistency (hand-computed)


def _one(ref_box, p, pm, aug_boxes, qs, pms, aug_valid=None, base_point=1.3):
    k2 = len(aug_boxes)
    return float(
        cald.augmentation_consistency(
            jnp.array([ref_box], jnp.float32),
            jnp.array([p]),
            jnp.array([pm]),
            jnp.array([True]),
            jnp.array(aug_boxes, jnp.float32),
            jnp.array(qs),
            jnp.array(pms),
            jnp.ones(k2, bool) if aug_valid is None else jnp.array(aug_valid),
            base_point=base_point,
        )
    )


def test_consistency_known_pair_same_class():
    # IoU([0,0,10,10], [0,0,10,5]) = 0.5, JS = 0: C = 0.5 + 0.5 * (0.9 + 0.7) = 1.3 -> 0.
    got = _one([0, 0, 10, 10], [0.8, 0.2], 0.9, [[0, 0, 10, 5]], [[0.8, 0.2]], [0.7])
    assert got == pytest.approx(0.0, abs=1e-6)


def test_consistency_known_pair_class_flip():
    # JS([.8,.2], [.2,.8]) = 0.8 ln 1.6 + 0.2 ln 0.4 = 0.192745;
    # C = 0.5 + 0.5 * (1 - 0.192745) * 1.6 = 1.145804 -> |C - 1.3| = 0.154196.
    got = _one([0, 0, 10, 10], [0.8, 0.2], 0.9, [[0, 0, 10, 5]], [[0.2, 0.8]], [0.7])
    assert _js([0.8, 0.2], [0.2, 0.8]) == pytest.approx(0.192745, abs=1e-6)
    assert got == pytest.approx(0.154196, abs=1e-5)


def test_consistency_best_iou_match_cap_and_empty():
    # The second augmented box matches exactly: C = 1 + 0.5 * 2 * 1.0 = 2 -> 0.7.
    got = _one(
        [0, 0, 10, 10],
        [1.0, 0.0],
        1.0,
        [[50, 50, 60, 60], [0, 0, 10, 10]],
        [[0.0, 1.0], [1.0, 0.0]],
        [0.2, 1.0],
    )
    assert got == pytest.approx(0.7, abs=1e-6)
    # No overlap at all: j* = first valid detection; C = 0 + 0.5 * 1 * (0 + 0) = 0 -> 1.3,
    # capped at 1.
    got = _one([0, 0, 10, 10], [1.0, 0.0], 0.0, [[50, 50, 60, 60]], [[1.0, 0.0]], [0.0])
    assert got == pytest.approx(1.0)
    # No augmented detection: 0.
    got = _one([0, 0, 10, 10], [1.0, 0.0], 1.0, [[0, 0, 10, 10]], [[1.0, 0.0]], [1.0], [False])
    assert got == 0.0


def test_class_distribution_with_background():
    d = cald.class_distribution(jnp.array([[0.25, 0.75]]), jnp.array([0.8]), "with_background")
    np.testing.assert_allclose(d, [[0.2, 0.2, 0.6]], atol=1e-6)
    with pytest.raises(ValueError, match="cls_dist"):
        cald.class_distribution(jnp.ones((1, 2)), jnp.ones(1), "bogus")


def test_reference_mask_subsampling():
    valid = jnp.arange(120) < 100  # 100 valid detections -> 50 kept, first and last among them
    m = cald.reference_mask(valid)
    assert int(m.sum()) == 50 and bool(m[0]) and bool(m[99]) and not bool(m[100:].any())
    valid = jnp.arange(60) < 45  # 41..50 valid: linspace hits every slot
    assert int(cald.reference_mask(valid).sum()) == 45
    assert int(cald.reference_mask(jnp.arange(120) < 100, max_ref_boxes=None).sum()) == 100


# ------------------------------------------------------------------------- augmentations


def test_hflip_boxes_and_involution():
    img = jnp.asarray(np.random.default_rng(0).integers(0, 255, (1, 8, 12, 3)), jnp.uint8)
    boxes = jnp.array([[[1.0, 2.0, 4.0, 6.0]]])
    f_img, f_boxes = augment.hflip(img, boxes)
    np.testing.assert_allclose(f_boxes, [[[8.0, 2.0, 11.0, 6.0]]])
    back, back_boxes = augment.hflip(f_img, f_boxes)
    assert bool(jnp.all(back == img))
    np.testing.assert_allclose(back_boxes, boxes)


def test_resize_modes():
    img = jnp.full((1, 20, 40, 3), 100, jnp.uint8)
    boxes = jnp.array([[[10.0, 5.0, 20.0, 15.0]]])
    out, b = augment.resize(img, boxes, ratio=0.8, mode="down_up")
    assert out.shape == img.shape and out.dtype == jnp.uint8
    np.testing.assert_allclose(b, boxes)
    assert bool(jnp.all(out == 100))
    out, b = augment.resize(img, boxes, ratio=0.8, mode="pad")
    np.testing.assert_allclose(b, [[[8.0, 4.0, 16.0, 12.0]]], atol=1e-5)
    assert bool(jnp.all(out[0, :16, :32] == 100)) and bool(jnp.all(out[0, 16:] == 0))


def test_rotate_matches_pil():
    h, w = 48, 64
    img = np.zeros((h, w, 3), np.uint8)
    img[10:30, 20:50, 0] = 200
    img[..., 1] = (np.arange(w) * 3)[None, :]
    pil = Image.fromarray(img)
    assert augment.rotated_canvas_size(h, w, 5.0)[::-1] == pil.rotate(5, expand=True).size
    ref = np.asarray(
        pil.rotate(5, expand=True, resample=Image.BILINEAR).resize((w, h), Image.BILINEAR)
    ).astype(float)
    box = jnp.array([[[20.0, 10.0, 50.0, 30.0]]])
    out, rbox = augment.rotate(jnp.asarray(img)[None], box, degrees=5.0)
    assert np.abs(np.asarray(out[0], float) - ref).mean() < 3.0  # resampling differences only
    # The rotated rectangle's enclosing box in our image matches the mapped box.
    ys, xs = np.nonzero(np.asarray(out[0, ..., 0]) > 100)
    np.testing.assert_allclose(
        rbox[0, 0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1.5
    )


def test_rotate_boxes_reference_formula():
    # CALD's own corner map (cald_helper.rotate), reimplemented; ours centres on PIL's
    # canvas, so it may differ by about a pixel.
    h, w, angle = 48, 64, 5.0
    a = math.radians(angle)
    al, be = math.cos(a), math.sin(a)
    m = np.array(
        [[al, be, (1 - al) * w / 2 - be * h / 2], [-be, al, be * w / 2 + (1 - al) * h / 2]]
    )
    nw_int, nh_int = int(h * be + w * al), int(h * al + w * be)
    m[0, 2] += nw_int / 2 - w / 2
    m[1, 2] += nh_int / 2 - h / 2
    nh, nw = augment.rotated_canvas_size(h, w, angle)
    boxes = np.array([[20.0, 10, 50, 30], [0, 0, 10, 10], [5, 30, 60, 47]])
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([x1, y1, x2, y1, x1, y2, x2, y2], 1).reshape(-1, 2)
    r = (m @ np.concatenate([corners, np.ones((len(corners), 1))], 1).T).T.reshape(-1, 8)
    ref = np.stack([r[:, ::2].min(1), r[:, 1::2].min(1), r[:, ::2].max(1), r[:, 1::2].max(1)], 1)
    ref = np.clip(ref / [nw / w, nh / h, nw / w, nh / h], 0, [w, h, w, h])
    np.testing.assert_allclose(augment.rotate_boxes(boxes, h, w, angle), ref, atol=1.0)
    np.testing.assert_allclose(augment.rotate_boxes(boxes, h, w, 0.0), boxes, atol=1e-4)


def test_cutout_overlap_rule():
    h, w = 64, 64
    img = jnp.full((6, h, w, 3), 255, jnp.uint8)
    box = jnp.array([20.0, 20.0, 40.0, 40.0])
    boxes = jnp.tile(box[None, None], (6, 1, 1))
    valid = jnp.array([[True]] * 5 + [[False]])
    keys = jax.random.split(jax.random.key(0), 6)
    out = augment.cutout(img, boxes, valid, keys)
    cut = np.asarray(out[..., 0] == 0)  # [6, h, w]
    assert not cut[5].any()  # no valid box: no cut
    covered = cut[:5, 20:40, 20:40].sum((1, 2)) / 400.0
    assert (covered <= 0.8 + 1e-6).all()  # two cuts, each covers at most 40 % of the box
    assert cut[:5].any(axis=(1, 2)).all()  # a 20x20 box in 64x64 always finds a placement
    again = augment.cutout(img, boxes, valid, keys)
    assert bool(jnp.all(again == out))


def test_image_keys_depend_on_content_not_position():
    rng = np.random.default_rng(0)
    imgs = jnp.asarray(rng.integers(0, 255, (3, 8, 8, 3)), jnp.uint8)
    key = jax.random.key(0)
    k1 = jax.random.key_data(augment.image_keys(imgs, key))
    k2 = jax.random.key_data(augment.image_keys(imgs[::-1], key))
    np.testing.assert_array_equal(k1, k2[::-1])
    assert len({tuple(np.asarray(k).ravel()) for k in k1}) == 3


# -------------------------------------------------------- end to end with a stand-in model


def _square_detector(images):
    """Stand-in detector: one box around the bright pixels, class 0, confidence 1."""
    bright = images[..., 0] > 128  # [B, H, W]
    h, w = bright.shape[1:]
    rows, cols = jnp.any(bright, 2), jnp.any(bright, 1)
    y1 = jnp.argmax(rows, 1)
    y2 = h - jnp.argmax(rows[:, ::-1], 1)
    x1 = jnp.argmax(cols, 1)
    x2 = w - jnp.argmax(cols[:, ::-1], 1)
    any_ = jnp.any(bright, (1, 2))
    boxes = jnp.stack([x1, y1, x2, y2], -1).astype(jnp.float32)[:, None]  # [B, 1, 4]
    return structs.Detections(
        boxes=boxes,
        det_probs=jnp.tile(jnp.array([[[1.0, 0.0]]]), (images.shape[0], 1, 1)),
        scores=any_.astype(jnp.float32)[:, None],
        labels=jnp.zeros((images.shape[0], 1), jnp.int32),
        valid=any_[:, None],
    )


class _Ctx:
    apply_fn = staticmethod(lambda images: images)
    decode_fn = staticmethod(_square_detector)


def test_end_to_end_with_stand_in_detector():
    img = np.zeros((2, 32, 32, 3), np.uint8)
    img[0, 8:20, 4:14] = 255  # image 0: one bright rectangle; image 1: nothing detected
    images = jnp.asarray(img)
    preds = structs.Predictions(
        detections=_square_detector(images),
        seg_probs=jnp.zeros((2, 8, 8, 3)),
        embedding=jnp.zeros((2, 4)),
        valid=jnp.ones(2, bool),
    )
    extra = cald.make_augment_extra(augmentations=("flip", "resize"))
    ex = jax.jit(lambda im, p: extra(_Ctx(), im, p))(images, preds)
    assert ex["cald_boxes"].shape == (2, 2, 1, 4)
    out = cald.consistency(preds.replace(extras=ex), cls_dist="foreground")
    # Flip and down-up resize keep the box: IoU 1, JS 0, pm 1 + 1 -> C = 2 -> |2 - 1.3| = 0.7.
    assert float(out["consistency"][0]) == pytest.approx(0.7, abs=1e-5)
    assert float(out["consistency"][1]) == 0.0  # no reference detection
    np.testing.assert_allclose(out["cls_vec"], [[1.0, 0.0], [0.0, 0.0]])
    full_extra = cald.make_augment_extra()

    @jax.jit
    def full(im, p):
        return cald.consistency(p.replace(extras=full_extra(_Ctx(), im, p)))["consistency"]

    vals = full(images, preds)
    assert 0.0 <= float(vals[0]) <= 1.0


def test_unknown_augmentation():
    with pytest.raises(ValueError, match="valid"):
        cald.make_augment_extra(augmentations=("flip", "jitter"))


# ----------------------------------------------------------------- two-stage selection


def test_labeled_class_histogram():
    labels = np.array([[0, 1, 1], [2, 0, 0], [1, 1, 1]])
    valid = np.array([[True, True, True], [True, False, False], [True, True, True]])
    hist = cald.labeled_class_histogram(labels, valid, [True, True, False], 3)
    np.testing.assert_allclose(hist, [0.5, 1.0, 0.5])  # (1+0)/2, (2+0)/2, (0+1)/2


def test_class_distribution_select():
    # Scores: higher = lower CALD consistency = better. budget 2 -> int(1.2 * 2) = 2
    # candidates; with mutual_range 2.0 -> 4 candidates.
    scores = jnp.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.95])
    vecs = jnp.array([[0.9, 0.0], [0.0, 0.0], [0.0, 0.9], [0.1, 0.1], [0.0, 0.0], [0.5, 0.5]])
    sel = jnp.array([True, True, True, True, True, False])
    hist = jnp.array([5.0, 0.0])  # labeled set full of class 0
    # Candidates (by score): 0, 1, 2, 3. All-zero vector first: 1. Then largest JS
    # to softmax(hist): image 2 (class 1) beats 3 and 0.
    out = cald.class_distribution_select(
        scores, vecs, sel, 2, labeled_class_hist=hist, mutual_range=2.0
    )
    assert out.tolist() == [1, 2]
    # mutual_range 1.2: candidates 0, 1 only.
    out = cald.class_distribution_select(scores, vecs, sel, 2, labeled_class_hist=hist)
    assert sorted(out.tolist()) == [0, 1]
    r = jax.nn.softmax(hist)
    js = [_js(r, jax.nn.softmax(v)) for v in vecs[:4]]
    assert np.argmax(js[2:]) == 0 and js[2] > js[0]
