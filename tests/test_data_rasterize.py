"""Masks from RLE / polygons, tight boxes, semantic painting, connected-component boxes."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mtal_jax.data import components, errors, rasterize
from mtal_jax.structs import IGNORE_LABEL
from tests import mask_formats


def _blob_mask() -> np.ndarray:
    mask = np.zeros((20, 30), bool)
    mask[3:9, 4:12] = True
    mask[12:18, 20:29] = True
    mask[5, 15] = True
    return mask


def test_rle_round_trips_compressed_and_nuimages_base64():
    mask = _blob_mask()
    rle = mask_formats.encode_rle(mask)
    assert rle["size"] == [20, 30] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(rasterize.decode_rle(rle), mask)
    nu = mask_formats.encode_nuimages_mask(mask)
    np.testing.assert_array_equal(rasterize.decode_nuimages_mask(nu), mask)


def test_uncompressed_rle_counts():
    mask = np.zeros((2, 3), bool)
    mask[:, 1] = True  # column-major: 2 zeros, 2 ones, 2 zeros
    np.testing.assert_array_equal(rasterize.decode_rle({"size": [2, 3], "counts": [2, 2, 2]}), mask)


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [20, 30], "counts": [5, 3]},  # runs cover 8 of 600 pixels
        {"size": [2, 3], "counts": [2, -2, 6]},  # a negative run
        {"size": [20, 30], "counts": "52"},  # compressed, short
        {"size": [4, 4], "counts": "0~"},  # a byte outside the code
    ],
)
def test_an_rle_that_does_not_cover_its_size_is_refused(rle):
    # pycocotools fills the pixels short runs leave with whatever memory holds
    with pytest.raises(errors.DatasetError, match="invalid RLE mask") as info:
        rasterize.decode_rle(rle, path="a.json", record="ann 1")
    assert info.value.reason == errors.BAD_MASK


def test_compressed_rle_runs_match_pycocotools():
    rng = np.random.default_rng(0)
    for i in range(200):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = rng.random((h, w)) < (0.0 if i % 7 == 0 else rng.random())
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        runs = rasterize._runs_of_compressed(encoded["counts"])
        assert sum(runs) == h * w and min(runs) >= 0
        np.testing.assert_array_equal(
            rasterize.decode_rle({"size": [h, w], "counts": encoded["counts"].decode()}), mask
        )


@pytest.mark.parametrize(
    "mask",
    [{"size": [4, 4], "counts": "not base64!"}, {"counts": "AAAA"}, "nonsense"],
)
def test_bad_nuimages_mask_is_a_dataset_error(mask):
    with pytest.raises(errors.DatasetError, match="object_ann.json.*tok1") as info:
        rasterize.decode_nuimages_mask(mask, path="object_ann.json", record="tok1")
    assert info.value.reason == errors.BAD_MASK


def test_contour_mask_keeps_boundary_pixels_and_cuts_holes():
    # Outer square of boundary pixels 2..10 with a hole whose boundary is 5..7.
    outer = [2, 2, 10, 2, 10, 10, 2, 10]
    hole = [5, 5, 7, 5, 7, 7, 5, 7]
    mask = rasterize.contour_mask(
        [outer, hole], 12, 12, hierarchy=[[1, -1, -1, -1], [-1, 0, -1, 0]]
    )
    expected = np.zeros((12, 12), bool)
    expected[2:11, 2:11] = True
    expected[6, 6] = False  # Only the hole's inside is cleared.
    np.testing.assert_array_equal(mask, expected)
    single = rasterize.contour_mask([[3, 4]], 6, 6)
    assert single.sum() == 1 and single[4, 3]


def test_coco_polygon_mask_matches_pycocotools_convention():
    mask = rasterize.coco_polygons_mask([[2, 3, 8, 3, 8, 7, 2, 7]], 10, 10)
    assert mask.sum() == 6 * 4
    np.testing.assert_array_equal(rasterize.mask_box(mask), [2, 3, 8, 7])
    with pytest.raises(errors.DatasetError, match="even number"):
        rasterize.coco_polygons_mask([[1, 2, 3]], 10, 10)


def test_mask_box_is_tight_with_exclusive_max():
    np.testing.assert_array_equal(rasterize.mask_box(_blob_mask()), [4, 3, 29, 18])
    assert rasterize.mask_box(np.zeros((3, 3), bool)) is None


def test_paint_semantic_layers_and_unmasked_boxes():
    road = np.zeros((6, 8), bool)
    road[3:, :] = True
    car = np.zeros((6, 8), bool)
    car[2:5, 1:3] = True
    semantic = rasterize.paint_semantic(
        6, 8, background=9, layers=[(road, 5), (car, 0)], unmasked_boxes=[np.array([5.5, 0, 8, 4])]
    )
    assert (
        semantic[0, 0] == 9 and semantic[5, 7] == 5 and semantic[2, 1] == 0 and semantic[4, 2] == 0
    )
    # The unmasked box ignores background pixels only, not the road under it.
    assert (semantic[0:3, 5:8] == IGNORE_LABEL).all() and (semantic[3, 5:8] == 5).all()


def test_component_boxes_use_4_connectivity_and_min_area():
    labels = np.zeros((10, 12), np.uint8)
    labels[1:3, 1:3] = 8  # 4 px car
    labels[3:5, 3:5] = 8  # diagonal neighbour: a separate component under 4-connectivity
    labels[7, 7] = 8  # 1 px: below min_area
    labels[6:9, 9:12] = 9  # 9 px pedestrian
    boxes, classes = components.component_boxes(labels, [8, 9, 10], min_area=4)
    np.testing.assert_array_equal(boxes, [[1, 1, 3, 3], [3, 3, 5, 5], [9, 6, 12, 9]])
    np.testing.assert_array_equal(classes, [0, 0, 1])
    assert boxes.dtype == np.float32 and classes.dtype == np.int64
    empty_boxes, empty_classes = components.component_boxes(labels * 0, [8], min_area=1)
    assert empty_boxes.shape == (0, 4) and empty_classes.shape == (0,)


@pytest.mark.parametrize("hierarchy", [5, [["a", 0, 0, "x"]], [[0, 0, 0, None]], [1, 2]])
def test_a_malformed_contour_hierarchy_is_a_dataset_error(hierarchy):
    square = [[1, 1, 5, 1, 5, 5, 1, 5]]
    with pytest.raises(errors.DatasetError, match="hierarchy") as info:
        rasterize.contour_mask(square * (2 if hierarchy == [1, 2] else 1), 8, 8,
                               hierarchy=hierarchy, path="f.json", record="obj 1")  # fmt: skip
    assert info.value.reason == errors.BAD_MASK
