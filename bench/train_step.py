"""Training-step throughput on any backend, float32 or bfloat16, with achieved FLOP/s.

  python bench/train_step.py [--backbone tiny] [--image_hw 96,192] [--batch 16]
      [--dtype float32|bfloat16] [--peak_tflops 989] [--json out.json]

The default experiment's network, loss and optimizer (``bench/default_net.py``) on a fixed
batch of rendered scenes, over every device of the backend (batch sharded, state
replicated), after ``runtime.configure_host_devices`` (the library's CPU settings; no
effect on a GPU). ``bfloat16``: mixed precision, float32 master weights and optimizer
state, the forward and backward passes in bfloat16 (parameters and images cast inside
the step; BatchNorm statistics and the losses stay float32). FLOPs per step are XLA's
own count (``cost_analysis``) of the compiled step; ``--peak_tflops`` (e.g. 989 for the
dense bfloat16 peak of an H100/H200) adds the fraction of peak reached.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def make_step(model, tx, loss_weights, dtype):
    """The library's train step; for bfloat16 a mixed-precision copy of it."""
    import jax
    import jax.numpy as jnp
    import optax

    from mtal_jax import losses
    from mtal_jax.models import loss_heads
    from mtal_jax.train import step as step_lib

    if dtype == "float32":
        return step_lib.make_train_step(model, tx, loss_weights)
    cdt = jnp.dtype(dtype)

    def train_step(state, batch, key):
        del key

        def loss_fn(params):
            low = jax.tree.map(lambda p: p.astype(cdt), params)
            outputs, mutated = model.apply(
                {"params": low, "batch_stats": state.batch_stats},
                batch.images.astype(cdt),
                train=True,
                detach_loss_features=True,
                mutable=["batch_stats"],
            )
            outputs = jax.tree.map(lambda x: x.astype(jnp.float32), outputs)
            per_example = losses.per_example_losses(outputs, batch)
            total, terms = losses.weighted_total(per_example, loss_weights, batch.valid)
            targets = step_lib.task_losses(per_example, loss_weights)
            total = total + sum(
                loss_heads.margin_ranking_loss(outputs.loss_pred[:, t], targets[:, t])
                for t in range(2)
            )
            stats = jax.tree.map(lambda x: x.astype(jnp.float32), mutated["batch_stats"])
            terms["total"] = total
            return total, (terms, stats)

        grads, (terms, stats) = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=stats,
            opt_state=opt_state,
        )
        return new, terms

    return train_step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--image_hw", default="96,192")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--peak_tflops", type=float, default=0.0)
    p.add_argument("--json", default="")
    args = p.parse_args()

    from mtal_jax import runtime

    runtime.configure_host_devices()
    import default_net
    import jax
    import numpy as np

    from mtal_jax import sharding
    from mtal_jax.train import state as state_lib

    hw = tuple(int(v) for v in args.image_hw.split(","))
    cfg = default_net.config()
    cfg.model.backbone = args.backbone
    model, tx, _, tc = default_net.build(cfg)
    mesh = sharding.create_mesh()
    batch = sharding.put_batch(default_net.scene_batch(args.batch, hw, cfg.data.max_boxes), mesh)
    st = sharding.put_replicated(
        state_lib.create_train_state(model, tx, jax.random.key(0), hw), mesh
    )
    fn = jax.jit(make_step(model, tx, tc.loss_weights, args.dtype), donate_argnums=0)
    t0 = time.perf_counter()
    compiled = fn.lower(st, batch, jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float((cost or {}).get("flops", float("nan")))
    st, m = fn(st, batch, jax.random.key(0))
    jax.block_until_ready(st)
    times = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        for _ in range(args.steps):
            st, m = fn(st, batch, jax.random.key(0))
        jax.block_until_ready(st)
        times.append((time.perf_counter() - t) / args.steps)
    med = statistics.median(times)
    # cost_analysis counts the per-device program: scale by the devices of the mesh.
    total_flops = flops * mesh.size
    res = {
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__, "backbone": args.backbone, "image_hw": hw, "batch": args.batch,
        "dtype": args.dtype, "median_ms": 1e3 * med, "images_per_s": args.batch / med,
        "compile_s": compile_s, "flops_per_step": total_flops,
        "achieved_tflops": total_flops / med / 1e12, "loss": float(m["total"]),
        "finite": bool(np.isfinite(float(m["total"]))), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }  # fmt: skip
    if args.peak_tflops:
        res["fraction_of_peak"] = res["achieved_tflops"] / args.peak_tflops
    print(json.dumps(res))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
