"""Host input-pipeline throughput: training batches per second by read-ahead threads.

The training loop reads batches through ``mtal_jax.data.pipeline.iterate_train`` (grain,
in-process threads) and converts them with ``train.evaluate.to_batch``; this measures that
host side alone, with no training, for several thread counts side by side in one run, on
the experiment's own dataset (the labeled pool of cycle 0: 40 % of it, every other image).
On a GPU the host must deliver a batch faster than the step takes (an H200 runs the default
step in 5.1 ms, docs/benchmarks.md), which ``pipeline.read_threads`` sizes for.

  python bench/input_pipeline.py [--config configs/default.py:repro] [--threads 1,2,4,8]
      [--batches 300] [--data_dir DIR] [--num_train N --num_test N] [--json out.json]

Results: docs/benchmarks.md ("Input pipeline").
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/default.py:repro")
    p.add_argument("--threads", default="1,2,4,8", help="read-ahead thread counts")
    p.add_argument("--batches", type=int, default=300, help="timed batches per setting")
    p.add_argument("--warmup", type=int, default=30, help="untimed batches first")
    p.add_argument("--data_dir", default="", help="config.data.data_dir ('': the config's)")
    p.add_argument("--num_train", type=int, default=0, help="synthetic pool size (0: config's)")
    p.add_argument("--num_test", type=int, default=0, help="synthetic eval size (0: config's)")
    p.add_argument("--json", default="")
    args = p.parse_args()

    from mtal_jax import runtime

    runtime.configure_host_devices()
    import jax

    from mtal_jax import config_file
    from mtal_jax.al.experiment import setup as setup_lib
    from mtal_jax.data import pipeline
    from mtal_jax.train import evaluate as evaluate_lib

    config = config_file.load(ROOT / args.config)  # path[:preset], repository-relative
    if args.data_dir:
        config.data.data_dir = args.data_dir
    for key in ("num_train", "num_test"):
        if getattr(args, key):
            config.data.builder_kwargs[key] = getattr(args, key)
    setup = setup_lib.build_setup(config)
    source = setup.dataset.sources[config.data.train_split]
    pool = list(range(0, setup.pool_size, 2))[: int(0.4 * setup.pool_size)]
    batch = setup.train_cfg.batch_size
    results = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        ds = pipeline.make_train_dataset(
            source, pool, setup.spec, batch_size=batch,
            num_steps=args.warmup + args.batches, seed=threads,
        )  # fmt: skip
        it = pipeline.iterate_train(ds, 0, prefetch_threads=threads)
        for _ in range(args.warmup):  # threads started, the decoded-example cache filled
            evaluate_lib.to_batch(next(it))
        t0 = time.perf_counter()
        for _ in range(args.batches):
            evaluate_lib.to_batch(next(it))
        ms = 1000 * (time.perf_counter() - t0) / args.batches
        results[threads] = ms
        print(f"read-ahead threads {threads}: {ms:.2f} ms per batch of {batch}", flush=True)
    out = {
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "read_threads_default": pipeline.read_threads(),
        "batch": batch,
        "ms_per_batch": results,
    }
    print(json.dumps(out, indent=1))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
