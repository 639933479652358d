"""Test configuration: JAX on the CPU with 2 virtual devices, set before JAX is imported."""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The library's XLA:CPU settings (runtime.DEFAULT_CPU_FLAGS) and host allocator settings
# (runtime.tune_malloc), so that tests run the backend the entrypoints use; XLA_FLAGS set by
# the caller win. (mtal_jax.runtime does not import JAX.)
from mtal_jax import runtime

os.environ["XLA_FLAGS"] = runtime.cpu_xla_flags(os.environ.get("XLA_FLAGS", ""), 2)
runtime.tune_malloc()

# Faster XLA compiles for small test programs (docs/design.md §7), and a per-session persistent
# cache so that identical programs built by new closures compile once.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="mtal_jax_xla_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pathlib

import pytest

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Path of ``../shared/data`` (real, non-commercial data); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real-data tests need ../shared/data)")
    return SHARED_DATA


def pytest_xdist_auto_num_workers(config) -> int:
    """Workers of ``-n auto`` (pyproject addopts): one per CPU this process may use, at most
    4 (a worker holds up to ~5 GB at its peak). ``--dist loadfile`` keeps each module, and so
    its module fixtures, in one worker."""
    del config
    return max(1, min(len(os.sched_getaffinity(0)), 4))
