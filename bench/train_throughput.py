"""Training-step throughput of the multi-task network: 1 vs 2 devices, side by side.

  python bench/train_throughput.py [--image_hw 96,192] [--backbones tiny,small] [--batch 16] [--rounds 5]

Each configuration is compiled once; timings interleave the mesh sizes round by round
(the machines are shared and noisy) and report the median seconds per step.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import argparse
import statistics
import time

import jax
import numpy as np

from mtal_jax import sharding, structs
from mtal_jax.models import multitask
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib

WEIGHTS = {"det_heatmap": 1.0, "det_size": 0.1, "det_offset": 1.0, "seg": 1.0}


def _batch(b, h, w, m=16):
    rng = np.random.default_rng(0)
    x1 = rng.uniform(0, w / 2, (b, m, 1))
    y1 = rng.uniform(0, h / 2, (b, m, 1))
    boxes = np.concatenate(
        [x1, y1, x1 + rng.uniform(4, w / 2, (b, m, 1)), y1 + rng.uniform(4, h / 2, (b, m, 1))], -1
    )
    return structs.Batch(
        images=rng.integers(0, 255, (b, h, w, 3), dtype=np.uint8), boxes=boxes.astype(np.float32),
        box_labels=rng.integers(0, 6, (b, m)).astype(np.int32), box_valid=np.ones((b, m), bool),
        seg_labels=rng.integers(0, 11, (b, h, w)).astype(np.int32), valid=np.ones(b, bool),
        index=np.arange(b, dtype=np.int32),
    )  # fmt: skip


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image_hw", default="96,192")
    p.add_argument("--backbones", default="tiny,small")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    h, w = (int(v) for v in args.image_hw.split(","))
    host = _batch(args.batch, h, w)
    print(f"devices: {jax.devices()}; batch {args.batch} at {h}x{w}")
    for bb in args.backbones.split(","):
        model = multitask.Model(6, 11, backbone=bb, loss_prediction=True)
        tx = state_lib.create_optimizer(
            learning_rate=1e-3,
            warmup_steps=10,
            total_steps=100,
            weight_decay=1e-4,
            grad_clip_norm=10.0,
        )
        runs = {}
        for n in (1, 2):
            mesh = sharding.create_mesh(n)
            st = sharding.put_replicated(
                state_lib.create_train_state(model, tx, jax.random.key(0), (h, w)), mesh
            )
            batch = sharding.put_batch(host, mesh)
            fn = jax.jit(step_lib.make_train_step(model, tx, WEIGHTS), donate_argnums=0)
            st, _ = fn(st, batch, jax.random.key(0))
            jax.block_until_ready(st)
            runs[n] = [fn, st, batch, []]
        for _ in range(args.rounds):
            for n, r in runs.items():
                t = time.perf_counter()
                for _ in range(3):
                    r[1], _ = r[0](r[1], r[2], jax.random.key(0))
                jax.block_until_ready(r[1])
                r[3].append((time.perf_counter() - t) / 3)
        t1, t2 = (statistics.median(runs[n][3]) for n in (1, 2))
        print(f"{bb:6s} 1 device {t1 * 1e3:7.1f} ms/step ({args.batch / t1:6.1f} img/s) | "
              f"2 devices {t2 * 1e3:7.1f} ms/step ({args.batch / t2:6.1f} img/s) | speed-up {t1 / t2:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
