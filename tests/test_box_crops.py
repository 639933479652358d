"""Tests of scores/box_crops.py: the crop windows of the BoxMask crops (paper III-C)."""

import numpy as np
import pytest

from mtal_jax import ours_strategy
from mtal_jax.scores import box_crops


def test_native_crop_windows_are_squares_of_at_least_the_crop_size_inside_the_image():
    boxes = np.array([
        [50.0, 40.0, 56.0, 56.0],  # a thin 6 x 16 pedestrian: a 64 x 64 square on its centre
        [0.0, 0.0, 10.0, 10.0],  # at the corner: moved inside, not clipped
        [10.0, 20.0, 110.0, 60.0],  # 100 x 40 grown to 120 x 48: a 120 square, moved inside
        [0.0, 0.0, 150.0, 100.0],  # larger than the 128-row image: clipped
    ], np.float32)  # fmt: skip
    got = np.asarray(
        box_crops.crop_windows(boxes, context_margin=0.1, image_hw=(128, 160), mode="native",
                               min_side=64.0)
    )  # fmt: skip
    np.testing.assert_allclose(got[0], [53 - 32, 48 - 32, 53 + 32, 48 + 32])
    np.testing.assert_allclose(got[1], [0, 0, 64, 64])
    np.testing.assert_allclose(got[2], [0, 0, 120, 120], atol=1e-4)
    assert got[3][3] == 128 and got[3][1] == 0  # clipped to the image
    box_mode = np.asarray(box_crops.crop_windows(boxes, context_margin=0.1, image_hw=(128, 160)))
    np.testing.assert_allclose(box_mode[0], [49.4, 38.4, 56.6, 57.6], rtol=1e-5)  # the paper's
    with pytest.raises(ValueError, match="crop window mode must be one of"):
        box_crops.crop_windows(boxes, context_margin=0.1, image_hw=(128, 160), mode="square")
    with pytest.raises(ValueError, match="crop_window must be one of"):
        ours_strategy.ours(crop_window="square")
    assert len(ours_strategy.ours(crop_window="native").extras) == 1
