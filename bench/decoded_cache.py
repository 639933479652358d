"""Training input pipeline and training run, with and without the decoded-example cache.

Part ``pipeline``: batches of ``pipeline.make_train_dataset`` (one read-ahead thread) over
the first ``--pool`` images of the config's training split, from the raw data source
(every read decodes the stored PNGs) and from ``decoded_cache.CachedSource`` after one
warm-up pass (what every pass after a run's first one sees); rounds interleave the two.

Part ``train`` (``--train_steps N``): ``loop.train`` for N steps on the same images, raw
against cached source, interleaved, sharing one set of jitted step functions, so the
difference is the host work the cache saves on this machine's cores.

Command (from the repository root):
  python bench/decoded_cache.py --configs configs/default.py,configs/camvid.py \
      --train_steps 60 --out /tmp/decoded_cache.json
Results: docs/benchmarks.md ("Decoded-example cache").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtal_jax import runtime

runtime.configure_host_devices()

import numpy as np


def _pipeline_s(source, indices, spec, batches):
    from mtal_jax.data import pipeline

    ds = pipeline.make_train_dataset(
        source, indices, spec, batch_size=16, num_steps=batches, seed=0
    )
    t = time.perf_counter()
    out = list(pipeline.iterate_train(ds, 0, prefetch_threads=1))
    return (time.perf_counter() - t) / len(out), out


def _train_s(setup, config, source, indices, steps, fns):
    from mtal_jax.al import experiment
    from mtal_jax.train import loop

    cfg = experiment.train_config(config, num_steps=steps)
    cfg = dataclasses.replace(cfg, eval_every_steps=10**9, checkpoint_every_steps=10**9)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        loop.train(
            setup.model, cfg, workdir=d, spec=setup.spec, train_source=source,
            train_indices=indices, eval_source=source, eval_indices=[], mesh=setup.mesh,
            progress=False, fns=fns, stop_after_steps=steps,
        )  # fmt: skip
        return (time.perf_counter() - t) / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--configs", default="configs/default.py,configs/camvid.py")
    p.add_argument("--pool", type=int, default=320)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train_steps", type=int, default=0)
    p.add_argument("--out", default="")
    args = p.parse_args()
    from mtal_jax import config_file
    from mtal_jax.al import experiment
    from mtal_jax.data import decoded_cache
    from mtal_jax.train import step_fns

    results = {
        "machine": f"{platform.node()} {os.cpu_count()} cpus", "date": time.strftime("%F %T"),
        "command": " ".join(sys.argv), "configs": {},
    }  # fmt: skip
    for path in args.configs.split(","):
        config = config_file.load(path)  # path[:preset]
        try:
            setup = experiment.build_setup(config)
        except (FileNotFoundError, ValueError) as e:  # e.g. CamVid files absent
            print(f"{path}: skipped ({e})")
            continue
        src = setup.dataset.sources[config.data.train_split]
        raw = src.source if isinstance(src, decoded_cache.CachedSource) else src
        cached = decoded_cache.CachedSource(raw, decoded_cache.budget_bytes())
        indices = np.arange(min(args.pool, len(raw)))
        _pipeline_s(cached, indices, setup.spec, -(-len(indices) // 16))  # warm the cache
        res = {"raw_ms": [], "cached_ms": [], "cached_mib": 0}
        for _ in range(args.rounds):
            r, a = _pipeline_s(raw, indices, setup.spec, args.batches)
            c, b = _pipeline_s(cached, indices, setup.spec, args.batches)
            for x, y in zip(a, b):  # the same batches
                for k in x:
                    np.testing.assert_array_equal(x[k], y[k])
            res["raw_ms"].append(1000 * r)
            res["cached_ms"].append(1000 * c)
        res["cached_mib"] = cached.cached_bytes / 2**20
        if args.train_steps:
            cfg = experiment.train_config(config, num_steps=args.train_steps)
            fns = step_fns.build_step_fns(setup.model, cfg, setup.spec)
            _train_s(setup, config, cached, indices, 5, fns)  # compile
            res["train_raw_s"], res["train_cached_s"] = [], []
            for _ in range(args.rounds):
                res["train_raw_s"].append(
                    _train_s(setup, config, raw, indices, args.train_steps, fns)
                )
                res["train_cached_s"].append(
                    _train_s(setup, config, cached, indices, args.train_steps, fns)
                )
        med = {k: statistics.median(v) for k, v in res.items() if isinstance(v, list)}
        line = (
            f"{path}: pipeline {med['raw_ms']:.1f} -> {med['cached_ms']:.1f} ms per batch "
            f"(x{med['raw_ms'] / med['cached_ms']:.2f}), cache {res['cached_mib']:.0f} MiB "
            f"for {len(indices)} images"
        )
        if args.train_steps:
            line += (
                f"; training {med['train_raw_s']:.3f} -> {med['train_cached_s']:.3f} s per step "
                f"(x{med['train_raw_s'] / med['train_cached_s']:.2f})"
            )
        print(line, flush=True)
        results["configs"][path] = {**res, "median": med}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
