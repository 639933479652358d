"""COCO folder classes: defaults, class options and refusals, without any file."""

import pytest

from mtal_jax.data import coco_classes, errors
from mtal_jax.structs import IGNORE_LABEL

CATEGORIES = {3: "car", 5: "sign", 7: "tree"}


def _resolve(categories=None, **options):
    options = {"det_categories": None, "seg_classes": None, "det_to_seg": None} | options
    return coco_classes.resolve_classes(
        CATEGORIES if categories is None else categories, path="instances_train.json", **options
    )


def test_defaults_are_every_category_and_background():
    c = _resolve()
    assert c["det_classes"] == ["car", "sign", "tree"]
    assert c["seg_classes"] == ["car", "sign", "tree", "background"]
    assert c["det_to_seg"] == [0, 1, 2]
    assert c["category_to_det"] == {3: 0, 5: 1, 7: 2} and c["category_to_seg"] == {3: 0, 5: 1, 7: 2}


def test_options_map_categories_by_name():
    c = _resolve(det_categories=["sign"], seg_classes=["background", "sign", "car"])
    assert c["det_to_seg"] == [1]
    assert c["category_to_det"] == {3: None, 5: 0, 7: None}
    assert c["category_to_seg"] == {3: 2, 5: 1, 7: IGNORE_LABEL}  # no "tree" class: ignored
    assert _resolve(det_categories=[])["det_classes"] == []  # [] is no class, not every one


@pytest.mark.parametrize(
    "categories, options, error, pattern",
    [
        ({1: "car", 2: "car"}, {}, errors.DatasetError, r"category names \['car'\] are given"),
        ({1: "background"}, {}, errors.DatasetError, "a category is named 'background'"),
        (None, {"det_categories": ["bus"]}, ValueError, r"det_categories \['bus'\] are not"),
        (None, {"seg_classes": ["car"]}, ValueError, "lack 'background'"),
        (None, {"seg_classes": ["car", "background"]}, ValueError, r"\['sign', 'tree'\] are not"),
    ],
)
def test_refusals(categories, options, error, pattern):
    with pytest.raises(error, match=pattern):
        _resolve(categories, **options)
