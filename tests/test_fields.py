"""data.fields reads ids and labels of a TFDS source without decoding images."""

import numpy as np
import pytest

from mtal_jax.data import decoded_cache, fields, synthetic, synthetic_classes


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    builder = synthetic.prepare(
        str(tmp_path_factory.mktemp("tfds")), num_train=10, num_test=2, height=32, width=64
    )
    return builder.as_data_source(split="train")


def test_without_images_keeps_images_encoded_and_other_fields_equal(source):
    light = fields.without_images(source)
    full, ex = source[3], light[3]
    assert isinstance(ex["image"], bytes) and isinstance(ex["segmentation"], bytes)
    assert full["image"].shape == (32, 64, 3)  # the original source still decodes
    assert ex["image_id"] == full["image_id"]
    np.testing.assert_array_equal(ex["box_labels"], full["box_labels"])
    np.testing.assert_array_equal(ex["boxes"], full["boxes"])


def test_image_ids_and_class_counts_match_full_decode(source):
    idx = np.array([7, 0, 3, 9, 3])
    want_ids = [source[int(i)]["image_id"].decode() for i in idx]
    assert fields.image_ids(source, idx) == want_ids
    want = np.zeros(len(synthetic_classes.DET_CLASSES))
    for i in idx:
        np.add.at(want, np.asarray(source[int(i)]["box_labels"]), 1.0)
    assert want.sum() > 0
    np.testing.assert_array_equal(fields.class_counts(source, idx, len(want)), want)


def test_chunks_and_plain_sources(monkeypatch):
    monkeypatch.setattr(fields, "CHUNK", 2)
    plain = [{"image_id": f"id{i}", "box_labels": np.array([i % 3, 5])} for i in range(5)]
    assert fields.without_images(plain) is plain
    assert fields.image_ids(plain, [4, 1, 2]) == ["id4", "id1", "id2"]
    assert fields.image_ids([{}], [0]) == [""]
    # label 5 is outside [0, 3): skipped
    np.testing.assert_array_equal(fields.class_counts(plain, range(5), 3), [2.0, 2.0, 1.0])


def test_a_cached_source_is_read_beneath_its_cache(source):
    cached = decoded_cache.CachedSource(source, budget=1 << 30)  # as catalog.load wraps
    light = fields.without_images(cached)
    assert isinstance(light[3]["image"], bytes)  # undecoded: not through the cache
    idx = np.array([7, 0, 3])
    assert fields.image_ids(cached, idx) == fields.image_ids(source, idx)
    assert cached.misses == 0 and cached.hits == 0  # the cache was neither read nor filled
