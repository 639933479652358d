"""The tiny experiment the end-to-end tests run (``configs/tiny.py:repro``: random and ours,
2 trials, a reference; 6 training runs), twice in one process, with the test suite's XLA
settings (``tests/conftest.py``) and a fresh persistent compilation cache.

  python bench/tiny_experiment.py [--eval_every 4] [--checkpoint_every 2]

The first experiment pays the compilations; the second, in a warm process, is what most of
a test module's experiments cost. ``--eval_every`` and ``--checkpoint_every`` override the
config's ``eval.every_steps`` and ``checkpoint.every_steps`` (the config's own values when
left out). Prints the wall seconds of each.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval_every", type=int, default=0)
    p.add_argument("--checkpoint_every", type=int, default=0)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from mtal_jax import runtime

    os.environ["XLA_FLAGS"] = runtime.cpu_xla_flags(os.environ.get("XLA_FLAGS", ""), 2)
    runtime.tune_malloc()
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="tiny_experiment_xla_")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    from configs import tiny
    from mtal_jax.al import experiment

    config = tiny.get_config("repro")
    config.data.data_dir = tempfile.mkdtemp()
    if args.eval_every:
        config.eval.every_steps = args.eval_every
    if args.checkpoint_every:
        config.checkpoint.every_steps = args.checkpoint_every
    for which in ("first", "second (warm process)"):
        t = time.perf_counter()
        experiment.run(config, tempfile.mkdtemp(), progress=False)
        print(f"{which}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
