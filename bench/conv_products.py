"""Pointwise (1x1) convolutions as matrix products (``models.conv``) vs as XLA convolutions.

  python bench/conv_products.py [--nets default,camvid] [--rounds 5] [--steps 3]

For each network (``default``: ``configs/default.py``, tiny ResNet at 96x192; ``camvid``:
``configs/camvid.py``, EfficientNet-Lite0 at 128x160, random initial weights), the
library's training step (``bench/default_net.py``: the experiment's loss, LL4AL modules and
optimizer, batch 16 of rendered scenes, over the 2 virtual CPU devices) is compiled twice
in one process: as the library builds it (``products``: 1x1 layers as ``lax.dot_general``)
and with ``models.conv.is_pointwise`` answering False while it is traced
(``convolutions``: every layer an XLA convolution, as before the change). Timed calls
alternate between the two, round by round (``--steps`` calls per round; medians of the
rounds), from the same state and batch; the loss and the gradient norm of one step from
each are printed beside.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def build(net: str):
    """(compiled step by arm, state, batch, image (H, W), batch size) of ``net``."""
    import default_net
    import jax

    from configs import camvid as camvid_config
    from mtal_jax import sharding
    from mtal_jax.models import conv
    from mtal_jax.train import state as state_lib

    if net == "camvid":
        cfg = camvid_config.get_config()
        cfg.model.pretrained_backbone = ""  # the same step; no weights package needed
    else:
        cfg = default_net.config()
    hw, batch_size = tuple(cfg.data.image_size), cfg.train.batch_size
    model, tx, step, _ = default_net.build(cfg)
    mesh = sharding.create_mesh()
    batch = sharding.put_batch(default_net.scene_batch(batch_size, hw, cfg.data.max_boxes), mesh)
    state = sharding.put_replicated(
        state_lib.create_train_state(model, tx, jax.random.key(0), hw), mesh
    )
    compiled = {}
    saved = conv.is_pointwise
    for arm in ("products", "convolutions"):
        if arm == "convolutions":
            conv.is_pointwise = lambda *a, **k: False
        try:  # a new function each time, so that jit traces it again
            fn = jax.jit(lambda s, b, k: step(s, b, k))
            t0 = time.perf_counter()
            compiled[arm] = fn.lower(state, batch, jax.random.key(0)).compile()
            print(f"{net}: {arm} compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        finally:
            conv.is_pointwise = saved
    return compiled, state, batch, hw, batch_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default="default,camvid")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    from mtal_jax import runtime

    runtime.configure_host_devices()
    import jax

    for net in args.nets.split(","):
        compiled, state, batch, hw, batch_size = build(net)
        key = jax.random.key(0)
        first = {arm: c(state, batch, key)[1] for arm, c in compiled.items()}
        times = {arm: [] for arm in compiled}
        for _ in range(args.rounds):
            for arm, c in compiled.items():
                jax.block_until_ready(c(state, batch, key))
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    out = c(state, batch, key)
                jax.block_until_ready(out)
                times[arm].append((time.perf_counter() - t0) / args.steps * 1e3)
        med = {arm: statistics.median(v) for arm, v in times.items()}
        print(
            f"{net} ({hw[0]}x{hw[1]}, batch {batch_size}): ms/step "
            + ", ".join(f"{arm} {m:.1f}" for arm, m in med.items())
            + f"; convolutions / products = {med['convolutions'] / med['products']:.3f}; "
            + "one step's loss, gradient norm: "
            + ", ".join(
                f"{arm} {float(m['total']):.6f}, {float(m['grad_norm']):.6f}"
                for arm, m in first.items()
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
