"""Backbone-only forward+backward time: EfficientNet-Lite0 vs the ``tiny`` ResNet.

  python bench/efficientnet_step.py [--batch 8] [--sizes 128x160,192x256] [--repeats 3]

One jitted step per backbone and image size: the gradient with respect to the parameters
of the mean square of all stage outputs, batch statistics on (``train=True``); and, for comparison, the jitted
forward pass alone (``train=False``). Prints the compile time and the median of
``--repeats`` timed calls after compilation, single device (after
``runtime.configure_host_devices``: the library's CPU settings).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_step(model):
    import jax
    import jax.numpy as jnp

    def loss(params, batch_stats, x):
        outs, _ = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
        )
        return sum(jnp.mean(jnp.square(o)) for o in outs)

    return jax.jit(jax.grad(loss))


def make_forward(model):
    import jax

    return jax.jit(lambda variables, x: model.apply(variables, x, train=False))


def timed(fn, args, repeats):
    """(seconds of the first call, [ms of each of ``repeats`` later calls])."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - t0) * 1e3)
    return first, times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--sizes", default="128x160,192x256")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    from mtal_jax import runtime

    runtime.configure_host_devices(1)
    import jax
    import jax.numpy as jnp

    from mtal_jax.models import backbone, efficientnet

    models = {"tiny": backbone.ResNet("tiny"), "lite0": efficientnet.EfficientNetLite0()}
    for size in args.sizes.split(","):
        h, w = map(int, size.split("x"))
        x = jax.random.normal(jax.random.key(0), (args.batch, h, w, 3), jnp.float32)
        for name, model in models.items():
            v = model.init(jax.random.key(1), x[:1], train=False)
            n = sum(a.size for a in jax.tree.leaves(v["params"]))
            for what, fn, fn_args in [
                ("fwd+bwd", make_step(model), (v["params"], v["batch_stats"], x)),
                ("fwd", make_forward(model), (v, x)),
            ]:
                first, times = timed(fn, fn_args, args.repeats)
                runs = ", ".join(f"{t:.1f}" for t in times)
                print(
                    f"{name:6s} {n / 1e6:5.2f} M params  batch {args.batch} {h}x{w} {what:8s}: "
                    f"median {statistics.median(times):8.1f} ms  (runs {runs}; "
                    f"first call {first:.1f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
