"""Property-based bad input for every loader: hypothesis mutates the records of a valid tiny
dataset (wrong types, NaN / Inf / huge numbers, missing keys, duplicates, paths out of the
folder, non-UTF-8 bytes) and preparation may only raise ``DatasetError`` or count skips,
within a memory cap (the address space of a worker process, ``tests/loader_fuzz.py``).

``FUZZ_RANDOM=1 python tests/loader_fuzz.py coco 500`` explores new cases for longer.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_EXAMPLES = 25  # Deterministic (derandomized) examples per loader: seconds each.


def _worker(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("FUZZ_RANDOM", None)
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "loader_fuzz.py"), *args],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_memory_cap_is_enforced():
    result = _worker("memory_cap", "0")
    assert result.returncode == 0 and "cap enforced" in result.stdout, result.stderr[-3000:]


@pytest.mark.parametrize("loader", ["coco", "camvid", "nuimages", "openlabel"])
def test_mutated_records_give_dataset_errors_or_counted_skips(loader):
    result = _worker(loader, str(MAX_EXAMPLES))
    assert result.returncode == 0 and "property held" in result.stdout, (
        f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-6000:]}"
    )
