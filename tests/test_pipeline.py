"""Tests of data/pipeline.py: resize/pad/flip geometry, padding, determinism, eval batches,
and clear ``DataError``s (or the documented clip) for bad input."""

import chex
import numpy as np
import pytest

from mtal_jax import structs
from mtal_jax.data import pipeline
from tests import fixtures

SPEC = fixtures.SPEC  # 64x64, M = 8, C_det = 6, C_seg = 11
IGNORE = structs.IGNORE_LABEL


def _object_example(hw, box, label=1, *, image_id=b"obj"):
    """Mask class 0 everywhere except the box region, which has class 5 + label."""
    seg = np.zeros(hw, np.uint8)
    x1, y1, x2, y2 = box
    seg[y1:y2, x1:x2] = 5 + label
    return fixtures.make_example(hw=hw, boxes=[box], labels=[label], seg=seg, image_id=image_id)


# ---------------------------------------------------------------- geometry


def test_preprocess_contract():
    out = pipeline.preprocess(fixtures.scene_examples(1)[0], SPEC, 3)
    m = SPEC.max_boxes
    chex.assert_shape(out["images"], (*SPEC.image_hw, 3))
    chex.assert_shape(out["boxes"], (m, 4))
    chex.assert_shape([out["box_labels"], out["box_valid"]], (m,))
    chex.assert_shape(out["seg_labels"], SPEC.image_hw)
    assert out["images"].dtype == np.uint8 and out["boxes"].dtype == np.float32
    assert out["box_labels"].dtype == np.int32 and out["seg_labels"].dtype == np.int32
    assert out["box_valid"].dtype == bool and bool(out["valid"]) and int(out["index"]) == 3
    assert (out["boxes"][~out["box_valid"]] == 0).all()


def test_resize_scales_boxes_and_pads_bottom():
    # 16x32 -> scale 2 -> 32x64 content, rows 32..63 are padding.
    ex = _object_example((16, 32), (4, 2, 10, 8), label=3)
    out = pipeline.preprocess(ex, SPEC, 0)
    np.testing.assert_allclose(out["boxes"][0], [8, 4, 20, 16])
    assert out["box_valid"].tolist() == [True] + [False] * 7
    assert out["box_labels"][0] == 3
    assert (out["seg_labels"][32:] == IGNORE).all() and (out["images"][32:] == 0).all()
    assert (out["seg_labels"][:32] != IGNORE).all()
    # The mask and the box stay aligned: the object's pixels fill exactly the box.
    ys, xs = np.nonzero(out["seg_labels"] == 8)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (8, 4, 20, 16)


def test_resize_keeps_aspect_and_pads_right():
    ex = _object_example((32, 16), (2, 4, 6, 10))  # -> 64x32 content
    out = pipeline.preprocess(ex, SPEC, 0)
    np.testing.assert_allclose(out["boxes"][0], [4, 8, 12, 20])
    assert (out["seg_labels"][:, 32:] == IGNORE).all() and (out["images"][:, 32:] == 0).all()
    assert (out["seg_labels"][:, :32] != IGNORE).all()


def test_no_resize_when_the_size_matches():
    ex = _object_example((64, 64), (5, 6, 30, 40))
    out = pipeline.preprocess(ex, SPEC, 0)
    np.testing.assert_array_equal(out["images"], ex["image"])
    np.testing.assert_allclose(out["boxes"][0], [5, 6, 30, 40])


def test_flip_mirrors_image_mask_and_boxes_inside_the_content():
    ex = _object_example((32, 16), (2, 4, 6, 10))  # content 64x32, right half is padding
    plain = pipeline.preprocess(ex, SPEC, 0, flip=False)
    flipped = pipeline.preprocess(ex, SPEC, 0, flip=True)
    np.testing.assert_array_equal(flipped["images"][:, :32], plain["images"][:, :32][:, ::-1])
    np.testing.assert_array_equal(
        flipped["seg_labels"][:, :32], plain["seg_labels"][:, :32][:, ::-1]
    )
    # Padding stays at the right, after the flip.
    assert (flipped["seg_labels"][:, 32:] == IGNORE).all() and (
        flipped["images"][:, 32:] == 0
    ).all()
    np.testing.assert_allclose(flipped["boxes"][0], [32 - 12, 8, 32 - 4, 20])
    ys, xs = np.nonzero(flipped["seg_labels"] == 6)
    np.testing.assert_allclose(
        [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], flipped["boxes"][0]
    )


def test_too_many_boxes_keeps_the_largest_and_counts_the_drop():
    boxes = [[0, 0, 2 + i, 2 + i] for i in range(10)]  # increasing size
    ex = fixtures.make_example(boxes=boxes, labels=list(range(6)) + [0] * 4)
    out = pipeline.preprocess(ex, SPEC, 0)
    assert int(out["num_dropped_boxes"]) == 2 and out["box_valid"].all()
    np.testing.assert_allclose(out["boxes"][:, 2], [4, 5, 6, 7, 8, 9, 10, 11])  # order kept


def test_ground_truth_has_every_box_and_the_crowd_regions_in_input_pixels():
    """``ground_truth`` (what evaluation scores against) puts boxes where ``preprocess``
    does, keeps the boxes beyond ``max_boxes`` and the crowd regions (clipped, resized);
    ``preprocess`` counts the crowd regions and keeps them out of the batch."""
    boxes = [[0, 0, 2 + i, 2 + i] for i in range(10)]
    ex = fixtures.make_example(hw=(32, 16), boxes=boxes, labels=[1] * 10)
    ex["crowd_boxes"] = np.array([[4.0, 2, 20, 10], [1, 1, 3, 3]], np.float32)  # one clipped
    ex["crowd_labels"] = np.array([2, 0])
    out = pipeline.preprocess(ex, SPEC, 0)
    gt = pipeline.ground_truth(ex, SPEC, 0)
    assert int(out["num_crowd_boxes"]) == 2 and int(out["num_dropped_boxes"]) == 2
    assert "crowd_boxes" not in out
    scale = 2.0  # 32x16 -> 64x32
    np.testing.assert_allclose(gt["boxes"], np.asarray(boxes, np.float32) * scale)
    np.testing.assert_array_equal(gt["labels"], [1] * 10)
    np.testing.assert_allclose(gt["crowd_boxes"], [[8, 4, 32, 20], [2, 2, 6, 6]])
    np.testing.assert_array_equal(gt["crowd_labels"], [2, 0])
    kept = out["box_valid"]  # the batch's boxes are the ground truth's, resized alike
    np.testing.assert_array_equal(out["boxes"][kept], gt["boxes"][2:])
    plain = pipeline.ground_truth(fixtures.make_example(boxes=boxes[:3], labels=[1] * 3), SPEC, 0)
    assert plain["crowd_boxes"].shape == (0, 4) and plain["crowd_labels"].shape == (0,)
    assert int(pipeline.padding_example(SPEC)["num_crowd_boxes"]) == 0


# ---------------------------------------------------------------- training dataset


@pytest.fixture(scope="module")
def source():
    return fixtures.scene_examples(10, seed=4)


def _all_batches(ds):
    return [ds[s] for s in range(len(ds))]


def test_train_dataset_is_deterministic_per_seed(source):
    kwargs = {"batch_size": 4, "num_steps": 5, "flip": True}
    a = _all_batches(pipeline.make_train_dataset(source, range(8), SPEC, seed=0, **kwargs))
    b = _all_batches(pipeline.make_train_dataset(source, range(8), SPEC, seed=0, **kwargs))
    c = _all_batches(pipeline.make_train_dataset(source, range(8), SPEC, seed=1, **kwargs))
    assert len(a) == 5
    for x, y in zip(a, b):
        chex.assert_trees_all_equal(x, y)
    assert any(not np.array_equal(x["index"], z["index"]) for x, z in zip(a, c))
    # Random access: element s does not depend on what was read before.
    ds = pipeline.make_train_dataset(source, range(8), SPEC, seed=0, **kwargs)
    chex.assert_trees_all_equal(ds[3], a[3])


def test_train_dataset_epochs_cover_the_labeled_pool_and_flip_is_per_element(source):
    indices = [1, 3, 4, 6, 7, 9]
    ds = pipeline.make_train_dataset(
        source, indices, SPEC, batch_size=3, num_steps=6, seed=2, flip=True
    )
    batches = _all_batches(ds)
    order = np.concatenate([bt["index"] for bt in batches])
    for epoch in range(3):
        assert sorted(order[epoch * 6 : (epoch + 1) * 6].tolist()) == indices
    flips = []
    for bt in batches:
        for j, i in enumerate(bt["index"]):
            plain = pipeline.preprocess(source[i], SPEC, int(i), flip=False)
            mirrored = pipeline.preprocess(source[i], SPEC, int(i), flip=True)
            if np.array_equal(bt["images"][j], plain["images"]):
                flips.append(False)
                np.testing.assert_array_equal(bt["boxes"][j], plain["boxes"])
            else:
                np.testing.assert_array_equal(bt["images"][j], mirrored["images"])
                np.testing.assert_array_equal(bt["boxes"][j], mirrored["boxes"])
                flips.append(True)
    assert any(flips) and not all(flips)


def test_read_threads_two_on_the_cpu_one_per_core_up_to_8_on_an_accelerator():
    assert pipeline.read_threads("cpu", cpu_count=16) == 2
    assert pipeline.read_threads("gpu", cpu_count=16) == 8
    assert pipeline.read_threads("gpu", cpu_count=4) == 4
    assert pipeline.read_threads("tpu", cpu_count=1) == 2
    assert pipeline.read_threads() == 2  # the tests run on the CPU backend


def test_read_ahead_buffer_holds_one_element_per_thread_at_least(caplog):
    # a smaller buffer leaves threads idle and grain warns on every iterator (GPU lease 3)
    for threads, buffer in ((1, 4), (2, 4), (8, 8)):
        options = pipeline.read_options(threads)
        assert (options.num_threads, options.prefetch_buffer_size) == (threads, buffer)
    assert pipeline.read_options().num_threads == 2
    ds = pipeline.grain.MapDataset.range(3)
    with caplog.at_level("WARNING"):
        assert list(ds.to_iter_dataset(pipeline.read_options(8))) == [0, 1, 2]
    assert "prefetch_buffer_size" not in caplog.text


def test_read_ahead_threads_do_not_change_the_batches(source):
    """Iterating from a step with 1 or 8 read-ahead threads yields the same batches as
    random access (the exact resume and the pairing of strategies rely on it)."""
    kwargs = {"batch_size": 3, "num_steps": 7, "flip": True}
    ds = pipeline.make_train_dataset(source, range(10), SPEC, seed=5, **kwargs)
    for threads in (1, 8):
        got = list(pipeline.iterate_train(ds, 2, prefetch_threads=threads))
        assert len(got) == 5
        for step, batch in enumerate(got, start=2):
            chex.assert_trees_all_equal(batch, ds[step])
    evals = [
        list(pipeline.iterate_eval(source, range(10), SPEC, batch_size=4, prefetch_threads=t))
        for t in (1, 8)
    ]
    for x, y in zip(*evals, strict=True):
        chex.assert_trees_all_equal(x, y)


def test_train_dataset_rejects_an_empty_pool(source):
    with pytest.raises(ValueError, match="empty"):
        pipeline.make_train_dataset(source, [], SPEC, batch_size=2, num_steps=1, seed=0)


# ---------------------------------------------------------------- eval batches


def test_iterate_eval_pads_the_last_batch(source):
    batches = list(pipeline.iterate_eval(source, [0, 1, 2, 3, 4], SPEC, batch_size=4))
    assert len(batches) == 2
    first, last = batches
    assert first["valid"].all() and first["index"].tolist() == [0, 1, 2, 3]
    assert last["valid"].tolist() == [True, False, False, False]
    assert last["index"].tolist() == [4, -1, -1, -1]
    assert not last["box_valid"][1:].any()
    assert (last["seg_labels"][1:] == IGNORE).all() and (last["images"][1:] == 0).all()
    for k in first:
        assert first[k].shape == last[k].shape, k
    one = pipeline.preprocess(source[4], SPEC, 4)
    np.testing.assert_array_equal(last["images"][0], one["images"])


def test_iterate_eval_negative_indices_are_padding(source):
    (batch,) = list(pipeline.iterate_eval(source, [5, -1], SPEC, batch_size=2))
    assert batch["valid"].tolist() == [True, False] and batch["index"].tolist() == [5, -1]


# ---------------------------------------------------------------- bad input


def _good():
    return _object_example((32, 32), (4, 4, 12, 12), label=1, image_id=b"bad")


def _with(**changes):
    ex = _good()
    ex.update(changes)
    return ex


BAD = {
    "image_gray": (lambda: _with(image=np.zeros((32, 32), np.uint8)), "image must be"),
    "image_rgba": (lambda: _with(image=np.zeros((32, 32, 4), np.uint8)), "image must be"),
    "image_float": (lambda: _with(image=np.zeros((32, 32, 3), np.float32)), "image must be"),
    "mask_size": (lambda: _with(segmentation=np.zeros((16, 32, 1), np.uint8)), "differ in size"),
    "seg_id": (
        lambda: _with(segmentation=np.full((32, 32, 1), 40, np.uint8)),
        "unknown segmentation",
    ),
    "label_unknown": (lambda: _with(box_labels=np.array([6])), "unknown detection class"),
    "label_negative": (lambda: _with(box_labels=np.array([-1])), "unknown detection class"),
    "box_outside": (
        lambda: _with(boxes=np.array([[40.0, 40, 50, 50]], np.float32)),
        "entirely outside",
    ),
    "box_outside_left": (
        lambda: _with(boxes=np.array([[-9.0, 2, -1, 8]], np.float32)),
        "entirely outside",
    ),
    "box_degenerate": (
        lambda: _with(boxes=np.array([[10.0, 10, 10, 20]], np.float32)),
        "degenerate",
    ),
    "box_inverted": (lambda: _with(boxes=np.array([[12.0, 4, 4, 12]], np.float32)), "degenerate"),
    "box_nan": (lambda: _with(boxes=np.array([[np.nan, 4, 12, 12]], np.float32)), "NaN"),
    "box_inf": (lambda: _with(boxes=np.array([[4, 4, np.inf, 12]], np.float32)), "NaN or inf"),
    "count_mismatch": (lambda: _with(box_labels=np.array([1, 2])), "labels"),
    "crowd_nan": (
        lambda: _with(crowd_boxes=np.array([[np.nan, 4, 12, 12]]), crowd_labels=np.array([1])),
        "crowd region coordinates contain NaN",
    ),
    "crowd_label": (
        lambda: _with(crowd_boxes=np.array([[2.0, 4, 12, 12]]), crowd_labels=np.array([6])),
        r"unknown detection class id\(s\) \[6\] of crowd region",
    ),
    "crowd_degenerate": (
        lambda: _with(crowd_boxes=np.array([[12.0, 4, 4, 12]]), crowd_labels=np.array([1])),
        r"degenerate crowd region",
    ),
    "crowd_outside": (
        lambda: _with(crowd_boxes=np.array([[40.0, 40, 50, 50]]), crowd_labels=np.array([1])),
        r"crowd region\(s\) entirely outside",
    ),
    "crowd_count": (
        lambda: _with(crowd_boxes=np.zeros((0, 4)), crowd_labels=np.array([1])),
        r"0 crowd region\(s\) but 1 labels",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_a_data_error_naming_the_record(case):
    make, message = BAD[case]
    with pytest.raises(pipeline.DataError, match=message) as info:
        pipeline.preprocess(make(), SPEC, 7)
    assert "fake[7]" in str(info.value) and "image_id='bad'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_data_errors_surface_through_the_datasets():
    source = [_good(), BAD["box_nan"][0]()]
    ds = pipeline.make_train_dataset(source, [1], SPEC, batch_size=1, num_steps=1, seed=0)
    with pytest.raises(pipeline.DataError, match=r"fake\[1\]"):
        ds[0]
    with pytest.raises(pipeline.DataError, match=r"fake\[1\]"):
        list(pipeline.iterate_eval(source, [0, 1], SPEC, batch_size=2))


def test_partially_outside_boxes_are_clipped_and_the_loss_stays_finite():
    # 32x32 image, scale 2. Partly outside: clipped (documented), never an error.
    boxes = [[-5, -5, 10, 10], [28, 20, 40, 30], [-10, 0, 0.25, 10], [31.5, 31.5, 50, 50]]
    ex = fixtures.make_example(hw=(32, 32), boxes=boxes, labels=[0, 1, 2, 3])
    out = pipeline.preprocess(ex, SPEC, 0)
    np.testing.assert_allclose(
        out["boxes"][:4], [[0, 0, 20, 20], [56, 40, 64, 60], [0, 0, 0.5, 20], [63, 63, 64, 64]]
    )
    assert out["box_valid"][:4].all()
    other = pipeline.preprocess(fixtures.scene_examples(1)[0], SPEC, 1)
    host = {k: np.stack([out[k], other[k]]) for k in out}
    loss, terms, _, grads = fixtures.loss_and_grads(
        fixtures.random_outputs(2), fixtures.to_batch(host)
    )
    chex.assert_tree_all_finite((loss, terms, grads))
