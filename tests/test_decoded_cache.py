"""decoded_cache.CachedSource: same examples as the source, read-only, bounded, LRU."""

import concurrent.futures

import numpy as np
import pytest

from mtal_jax.data import decoded_cache


class Source:
    """Decodes example i into a 10-byte array filled with i (counts its reads)."""

    def __init__(self, n=5):
        self.n, self.reads, self.dataset_info = n, [], "info"

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads.append(i)
        return {"image": np.full(10, i, np.uint8), "name": f"f{i}"}


def test_returns_the_source_examples_read_only_and_reads_each_once():
    src = Source()
    cached = decoded_cache.CachedSource(src, budget=1000)
    assert len(cached) == 5 and cached.dataset_info == "info"
    for _ in range(3):
        for i in range(5):
            ex = cached[i]
            np.testing.assert_array_equal(ex["image"], np.full(10, i))
            assert ex["name"] == f"f{i}"
    assert src.reads == [0, 1, 2, 3, 4]
    assert (cached.hits, cached.misses, cached.cached_bytes) == (10, 5, 50)
    with pytest.raises(ValueError, match="read-only"):
        cached[0]["image"][0] = 7  # a caller cannot change what later reads return


def test_budget_keeps_the_most_recently_used():
    src = Source()
    cached = decoded_cache.CachedSource(src, budget=25)  # room for two examples
    for i in (0, 1, 0, 2):  # 1 is the least recently used when 2 arrives
        cached[i]
    assert cached.cached_bytes == 20
    src.reads.clear()
    cached[0], cached[2], cached[1]
    assert src.reads == [1]
    big = decoded_cache.CachedSource(Source(), budget=5)  # examples larger than the budget
    big[0], big[0]
    assert big.source.reads == [0, 0] and big.cached_bytes == 0


def test_concurrent_reads_agree():
    cached = decoded_cache.CachedSource(Source(50), budget=300)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: int(cached[i % 50]["image"][0]), range(2000)))
    assert got == [i % 50 for i in range(2000)]
    assert cached.cached_bytes <= 300


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.delenv("MTAL_DECODED_CACHE_MB", raising=False)
    assert decoded_cache.budget_bytes() == decoded_cache.DEFAULT_BUDGET_MB << 20
    monkeypatch.setenv("MTAL_DECODED_CACHE_MB", "0.5")
    assert decoded_cache.budget_bytes() == 1 << 19
    monkeypatch.setenv("MTAL_DECODED_CACHE_MB", "0")
    src = Source()
    assert decoded_cache.wrap(src) is src
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv("MTAL_DECODED_CACHE_MB", bad)
        with pytest.raises(ValueError, match=f"MTAL_DECODED_CACHE_MB.*{bad!r}"):
            decoded_cache.budget_bytes()


def test_a_builder_made_before_another_process_prepared_the_cache_reads_its_splits(tmp_path):
    """Processes started at once on a fresh cache (al.parallel_cli): each made its builder
    before the files existed; the one that waited for the preparation lock must still see
    every split (it raised KeyError: 'test' on a GPU lease before this was fixed)."""
    from mtal_jax.data import cache, synthetic

    params = {"num_train": 4, "num_test": 2, "height": 32, "width": 32, "seed": 0}
    waiting = synthetic.SyntheticDriving(data_dir=str(tmp_path), **params)  # no files yet
    assert not waiting.info.splits
    synthetic.prepare(str(tmp_path), **params)  # "the other process"
    got = cache.download_and_prepare(waiting)
    assert set(got.info.splits) == {"train", "test"}
    assert got.info.splits["test"].num_examples == 2
