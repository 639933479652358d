"""Tests of ops/crops.py and ops/boxes.py against NumPy references."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax.ops import boxes as box_ops
from mtal_jax.ops import crops as crop_ops
from tests import score_reference as reference


def _random_windows(rng, n, height, width):
    x1 = rng.uniform(-5, width - 2, n)
    y1 = rng.uniform(-5, height - 2, n)
    return np.stack(
        [x1, y1, x1 + rng.uniform(0.5, width, n), y1 + rng.uniform(0.5, height, n)], -1
    ).astype(np.float32)


@pytest.mark.parametrize("out_hw", [(8, 8), (5, 12)])
def test_crop_and_resize_matches_numpy(out_hw):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 20, 24, 3), dtype=np.uint8)
    windows = _random_windows(rng, 6, 20, 24)
    index = np.array([0, 1, 1, 0, 1, 0], np.int32)
    got = np.asarray(crop_ops.crop_and_resize(images, index, windows, out_hw))
    want = np.stack(
        [reference.crop_and_resize_np(images[i], w, out_hw) for i, w in zip(index, windows)]
    )
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_crop_of_whole_image_is_identity():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 8, 12, 3), dtype=np.uint8)
    windows = np.array([[0, 0, 12, 8], [0, 0, 12, 8]], np.float32)
    got = crop_ops.crop_and_resize(images, np.array([1, 0]), windows, (8, 12))
    np.testing.assert_allclose(np.asarray(got), images[::-1].astype(np.float32), atol=1e-4)


def test_upsampling_matches_jax_image_resize():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, (1, 6, 5, 2)).astype(np.float32)
    got = crop_ops.crop_and_resize(
        image, np.array([0]), np.array([[0, 0, 5, 6]], np.float32), (12, 10)
    )
    want = jax.image.resize(image, (1, 12, 10, 2), "linear", antialias=False)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_batched_crop_shape_and_values():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    windows = _random_windows(rng, 6, 16, 16).reshape(2, 3, 4)
    got = _crop_and_resize_batched(images, windows, (4, 4))
    chex.assert_shape(got, (2, 3, 4, 4, 3))
    np.testing.assert_allclose(
        np.asarray(got[1, 2]),
        reference.crop_and_resize_np(images[1], windows[1, 2], (4, 4)),
        atol=1e-3,
    )


class CropVariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_equals_eager(self):
        rng = np.random.default_rng(4)
        images = rng.integers(0, 256, (2, 10, 10, 3), dtype=np.uint8)
        windows = _random_windows(rng, 3, 10, 10)
        fn = self.variant(lambda im, i, w: crop_ops.crop_and_resize(im, i, w, (4, 4)))
        got = fn(images, np.array([0, 1, 0]), windows)
        want = crop_ops.crop_and_resize(images, np.array([0, 1, 0]), windows, (4, 4))
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)


def test_interpolation_matrix_rows_sum_to_one():
    m = crop_ops.interpolation_matrix(jnp.array([-3.0, 0.0, 0.3, 2.5, 7.0]), 4)
    np.testing.assert_allclose(np.asarray(m.sum(-1)), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(m[2]), [0.7, 0.3, 0, 0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(m[0]), [1, 0, 0, 0])  # clamped
    np.testing.assert_allclose(np.asarray(m[4]), [0, 0, 0, 1])


def test_enlarge_and_clip():
    boxes = jnp.array([[10.0, 20.0, 30.0, 60.0]])
    np.testing.assert_allclose(
        np.asarray(box_ops.enlarge_boxes(boxes, 0.1)), [[8.0, 16.0, 32.0, 64.0]], atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(box_ops.clip_boxes(jnp.array([[-2.0, 5.0, 70.0, 99.0]]), 50, 64)),
        [[0, 5, 64, 50]],
    )


def test_pairwise_iou():
    a = jnp.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    b = jnp.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    np.testing.assert_allclose(
        np.asarray(box_ops.pairwise_iou(a, b)), [[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-6
    )


def test_boxes_to_pixel_masks_uses_pixel_centres():
    rng = np.random.default_rng(5)
    boxes = rng.uniform(-1, 7, (5, 4)).astype(np.float32)
    got = np.asarray(box_ops.boxes_to_pixel_masks(boxes, (6, 7)))
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        for i in range(6):
            for j in range(7):
                assert got[k, i, j] == (x1 <= j + 0.5 < x2 and y1 <= i + 0.5 < y2)


def _crop_and_resize_batched(images, windows_xyxy, out_hw):
    """``crop_and_resize`` of K windows per image: [B, K, 4] -> [B, K, S_h, S_w, C]."""
    windows_xyxy = jnp.asarray(windows_xyxy, jnp.float32)
    b, k = windows_xyxy.shape[:2]
    image_index = jnp.repeat(jnp.arange(b, dtype=jnp.int32), k)  # [B*K]
    crops = crop_ops.crop_and_resize(images, image_index, windows_xyxy.reshape(b * k, 4), out_hw)
    return crops.reshape(b, k, *crops.shape[1:])
