"""Tests of decode.py: hand-made heat maps with known answers, and the output contract."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import decode, losses, structs
from mtal_jax.models.multitask import STRIDE

h, w, C = 8, 8, 3  # output grid of a 32x32 input
H, W = h * STRIDE, w * STRIDE
LOW = -12.0  # background logit: probability ~6e-6


def _outputs(peaks, *, b=1, size=(2.0, 4.0), offset=(0.25, 0.5)) -> structs.Outputs:
    """Outputs with heat-map logit ``logit`` at each (batch, y, x, class, logit) of ``peaks``,
    and the same box size (w, h cells) and offset (x, y cells) everywhere."""
    heat = np.full((b, h, w, C), LOW, np.float32)
    for bi, y, x, c, logit in peaks:
        heat[bi, y, x, c] = logit
    return structs.Outputs(
        heatmap_logits=jnp.asarray(heat),
        box_size=jnp.broadcast_to(jnp.asarray(size, jnp.float32), (b, h, w, 2)),
        box_offset=jnp.broadcast_to(jnp.asarray(offset, jnp.float32), (b, h, w, 2)),
        seg_logits=jnp.zeros((b, h, w, 2)),
        embedding=jnp.zeros((b, 4)),
    )


# Jitted once per (K, threshold, shapes); eager decoding compiles every primitive separately.
_decode = jax.jit(decode.decode, static_argnames=("max_detections", "score_threshold"))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_single_peak_gives_exactly_its_box():
    dets = _decode(_outputs([(0, 3, 5, 1, 3.0)]), max_detections=5)  # threshold 0.1
    # centre (5 + 0.25, 3 + 0.5) cells = (21, 14) px; size (2, 4) cells = (8, 16) px.
    np.testing.assert_allclose(np.asarray(dets.boxes[0, 0]), [17.0, 6.0, 25.0, 22.0], atol=1e-5)
    np.testing.assert_allclose(float(dets.scores[0, 0]), _sigmoid(3.0), rtol=1e-6)
    assert int(dets.labels[0, 0]) == 1
    assert float(dets.det_probs[0, 0, 1]) > 0.999
    np.testing.assert_array_equal(np.asarray(dets.valid[0]), [True, False, False, False, False])
    np.testing.assert_array_equal(np.asarray(dets.scores[0, 1:]), 0.0)


def test_adjacent_peaks_keep_the_stronger_one():
    # (3, 5) class 1 and its right neighbour (3, 6) class 2: 3x3 max-pool NMS keeps one.
    dets = _decode(_outputs([(0, 3, 5, 1, 3.0), (0, 3, 6, 2, 2.0)]), max_detections=5)
    assert int(dets.valid.sum()) == 1
    assert int(dets.labels[0, 0]) == 1
    np.testing.assert_allclose(float(dets.scores[0, 0]), _sigmoid(3.0), rtol=1e-6)


def test_diagonal_neighbours_are_suppressed_too():
    dets = _decode(_outputs([(0, 3, 5, 0, 3.0), (0, 4, 6, 0, 2.5)]), max_detections=5)
    assert int(dets.valid.sum()) == 1


def test_peaks_two_cells_apart_are_both_kept():
    dets = _decode(_outputs([(0, 3, 5, 1, 3.0), (0, 3, 3, 2, 2.0)]), max_detections=5)
    assert int(dets.valid.sum()) == 2
    np.testing.assert_array_equal(np.asarray(dets.labels[0, :2]), [1, 2])  # sorted by score
    assert float(dets.scores[0, 0]) > float(dets.scores[0, 1])


def test_same_cell_classes_share_one_detection_with_their_distribution():
    # One cell, two classes: one detection whose det_probs are the normalised class probs.
    dets = _decode(_outputs([(0, 2, 2, 0, 1.0), (0, 2, 2, 2, 2.0)]), max_detections=5)
    assert int(dets.valid.sum()) == 1
    p = _sigmoid(np.array([1.0, LOW, 2.0]))
    np.testing.assert_allclose(np.asarray(dets.det_probs[0, 0]), p / p.sum(), rtol=1e-5)
    assert int(dets.labels[0, 0]) == 2


@pytest.mark.parametrize("threshold, expected", [(0.2, True), (0.5, False)])
def test_score_threshold(threshold, expected):
    logit = float(np.log(0.3 / 0.7))  # probability 0.3
    dets = _decode(_outputs([(0, 4, 4, 0, logit)]), max_detections=5, score_threshold=threshold)
    assert bool(dets.valid[0, 0]) is expected
    want = 0.3 if expected else 0.0
    np.testing.assert_allclose(float(dets.scores[0, 0]), want, atol=1e-6)


def test_boxes_are_clipped_to_the_image():
    # A big box at the corner cell (0, 0): it would extend to negative coordinates.
    dets = _decode(
        _outputs([(0, 0, 0, 0, 3.0)], size=(6.0, 6.0), offset=(0.5, 0.5)), max_detections=5
    )
    np.testing.assert_allclose(np.asarray(dets.boxes[0, 0]), [0.0, 0.0, 14.0, 14.0], atol=1e-5)
    dets = _decode(
        _outputs([(0, 7, 7, 0, 3.0)], size=(6.0, 6.0), offset=(0.5, 0.5)), max_detections=5
    )
    np.testing.assert_allclose(np.asarray(dets.boxes[0, 0]), [18.0, 18.0, 32.0, 32.0], atol=1e-5)


def test_zero_size_box_is_invalid():
    dets = _decode(_outputs([(0, 3, 3, 0, 3.0)], size=(0.0, 2.0)), max_detections=5)
    assert not bool(dets.valid[0, 0])
    assert float(dets.scores[0, 0]) == 0.0


def test_more_slots_than_cells_are_padded():
    k = h * w + 6
    dets = _decode(_outputs([(0, 3, 5, 1, 3.0)]), max_detections=k)
    chex.assert_shape(dets.boxes, (1, k, 4))
    chex.assert_shape(dets.det_probs, (1, k, C))
    np.testing.assert_allclose(np.asarray(dets.det_probs).sum(-1), 1.0, rtol=1e-5)
    assert int(dets.valid.sum()) == 1
    assert not np.asarray(dets.valid[0, h * w :]).any()


def _random_outputs(seed: int, b: int = 3) -> structs.Outputs:
    rng = np.random.default_rng(seed)
    f = lambda *s: jnp.asarray(rng.normal(size=s).astype(np.float32))
    return structs.Outputs(
        heatmap_logits=f(b, h, w, C) * 2 - 1,
        box_size=jnp.abs(f(b, h, w, 2)) * 3,
        box_offset=f(b, h, w, 2) * 0.3 + 0.5,
        seg_logits=f(b, h, w, 2),
        embedding=f(b, 4),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contract_on_random_outputs(seed):
    b, k = 3, 10
    dets = _decode(_random_outputs(seed, b), max_detections=k, score_threshold=0.3)
    chex.assert_shape(dets.boxes, (b, k, 4))
    chex.assert_shape(dets.det_probs, (b, k, C))
    chex.assert_shape([dets.scores, dets.labels, dets.valid], (b, k))
    chex.assert_type([dets.boxes, dets.det_probs, dets.scores], jnp.float32)
    chex.assert_type(dets.labels, jnp.int32)
    chex.assert_tree_all_finite((dets.boxes, dets.det_probs, dets.scores))
    boxes, scores, valid = (np.asarray(x) for x in (dets.boxes, dets.scores, dets.valid))
    assert (
        (boxes >= 0).all() and (boxes[..., [0, 2]] <= W).all() and (boxes[..., [1, 3]] <= H).all()
    )
    assert (boxes[..., 2][valid] > boxes[..., 0][valid]).all()
    assert (boxes[..., 3][valid] > boxes[..., 1][valid]).all()
    np.testing.assert_allclose(np.asarray(dets.det_probs).sum(-1), 1.0, rtol=1e-5)
    assert (scores[~valid] == 0).all()
    assert (scores[valid] > 0.3).all() and (scores <= 1).all()
    np.testing.assert_array_equal(np.asarray(dets.labels), np.asarray(dets.det_probs).argmax(-1))
    # Valid detections come first (sorted by peak score).
    assert (np.diff(valid.astype(int), axis=1) <= 0).all()


def test_jit_equals_eager():
    outputs = _random_outputs(5)
    fn = lambda o: decode.decode(o, max_detections=7, score_threshold=0.2)
    chex.assert_trees_all_close(jax.jit(fn)(outputs), fn(outputs), atol=1e-6)


def test_decoding_perfect_outputs_recovers_the_rendered_boxes():
    """Round trip with losses.render_targets: the target encoding and the decoder agree."""
    boxes = np.array([[3.0, 5.0, 13.0, 21.0], [17.5, 2.25, 30.0, 9.0]], np.float32)
    labels = np.array([2, 0], np.int32)
    t = losses.render_targets(
        jnp.asarray(boxes), jnp.asarray(labels), jnp.ones(2, bool), out_hw=(h, w), num_classes=C
    )
    heat = np.where(np.asarray(t.heatmap) >= 1.0, 6.0, LOW).astype(np.float32)
    size = np.zeros((h * w, 2), np.float32)
    offset = np.zeros((h * w, 2), np.float32)
    size[np.asarray(t.index)] = np.asarray(t.size)
    offset[np.asarray(t.index)] = np.asarray(t.offset)
    outputs = structs.Outputs(
        heatmap_logits=jnp.asarray(heat[None]),
        box_size=jnp.asarray(size.reshape(1, h, w, 2)),
        box_offset=jnp.asarray(offset.reshape(1, h, w, 2)),
        seg_logits=jnp.zeros((1, h, w, 2)),
        embedding=jnp.zeros((1, 4)),
    )
    dets = _decode(outputs, max_detections=5)
    valid = np.asarray(dets.valid[0])
    assert valid.sum() == 2
    got = sorted(zip(np.asarray(dets.boxes[0])[valid].tolist(), np.asarray(dets.labels[0])[valid]))
    want = sorted(zip(boxes.tolist(), labels))
    for (gb, gl), (wb, wl) in zip(got, want):
        np.testing.assert_allclose(gb, wb, atol=1e-4)
        assert gl == wl
