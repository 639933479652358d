"""A bounded in-memory cache of decoded examples in front of a random-access data source.

Training reads every labeled image once per pass, scoring and evaluation read the pool and
the eval split once per cycle: without a cache each read decodes the stored PNGs again,
which on a 2-core machine is CPU time taken from the training step (docs/benchmarks.md,
decoded-example cache). ``CachedSource`` keeps decoded examples up to a byte budget, least
recently used first out, and returns them read-only, so a caller that tried to change one
in place fails loudly instead of changing what later reads return. Results are identical
with and without the cache.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Any

import numpy as np

# Budget of every CachedSource made by ``wrap`` (each split of each dataset has its own),
# in MiB; the environment variable MTAL_DECODED_CACHE_MB overrides it (0 = no cache).
DEFAULT_BUDGET_MB = 1024


def budget_bytes() -> int:
    """The per-source budget: ``MTAL_DECODED_CACHE_MB`` MiB, or ``DEFAULT_BUDGET_MB``.

    Raises:
      ValueError: the variable is not a non-negative number.
    """
    raw = os.environ.get("MTAL_DECODED_CACHE_MB", "")
    if not raw:
        return DEFAULT_BUDGET_MB << 20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise ValueError(f"MTAL_DECODED_CACHE_MB must be a number of MiB >= 0, got {raw!r}")
    return int(mb * (1 << 20))


def _frozen(example: dict) -> tuple[dict, int]:
    """``example`` with read-only arrays (copies of writable ones) and its size in bytes."""
    out, size = {}, 0
    for key, value in example.items():
        if isinstance(value, np.ndarray):
            if value.flags.writeable:
                value = value.copy()
                value.flags.writeable = False
            size += value.nbytes
        out[key] = value
    return out, size


class CachedSource:
    """``source`` (``len``, ``[i]`` -> dict of arrays) with decoded examples kept in memory.

    Args:
      source: the random-access source (e.g. ``builder.as_data_source(split)``).
      budget: bytes of arrays to keep; an example larger than the budget is not kept.

    Thread-safe (grain's read-ahead threads share one source).
    """

    def __init__(self, source: Any, budget: int):
        self.source = source
        self.budget = int(budget)
        self._items: collections.OrderedDict[int, tuple[dict, int]] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        with self._lock:
            item = self._items.get(index)
            if item is not None:
                self._items.move_to_end(index)
                self.hits += 1
                return item[0]
            self.misses += 1
        example, size = _frozen(self.source[index])
        if size > self.budget:
            return example
        with self._lock:
            if index not in self._items:
                self._items[index] = (example, size)
                self._bytes += size
                while self._bytes > self.budget:
                    _, (_, old) = self._items.popitem(last=False)
                    self._bytes -= old
        return example

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def __getattr__(self, name: str) -> Any:
        # Anything else (e.g. a data source's ``dataset_info``) comes from the wrapped one.
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)


def wrap(source: Any, budget: int | None = None) -> Any:
    """``CachedSource(source, budget)`` (default ``budget_bytes()``), or ``source`` itself
    when the budget is 0."""
    budget = budget_bytes() if budget is None else budget
    return CachedSource(source, budget) if budget > 0 else source
