"""Checkpoint saves of a replicated training state: orbax's default handler against the one
``mtal_jax.checkpointing`` uses (each array written whole from its first replica).

  python bench/checkpoint_save.py [--saves 8] [--repeats 2]

For the networks of the tests (``configs/tiny.py``), the synthetic default and CamVid: the
training state (parameters, BatchNorm statistics, AdamW state) replicated over the library's
CPU devices (``runtime.configure_host_devices``: 2 here), as training keeps it; ``--saves``
saves, each waited for (``save`` then ``wait``, as a test run checkpointing every 2 steps or
an evaluation's best checkpoint blocks). Every measurement runs in its own process: orbax's
default compiles a slice per array shape on a process's first save. The handlers take turns,
so that the machine's load falls on both alike. Prints per network and handler the first
save, the median of the others (median over ``--repeats`` processes) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

NETWORKS = {  # backbone, classes det/seg, neck/head channels, image size
    "tests (test backbone, 64x64)": ("test", 6, 11, 16, (64, 64)),
    "synthetic default (tiny ResNet, 96x192)": ("tiny", 6, 11, 64, (96, 192)),
    "CamVid (EfficientNet-Lite0, 128x160)": ("efficientnet_lite0", 3, 11, 64, (128, 160)),
}

CHILD = r"""
import json, os, statistics, sys, tempfile, time
sys.path.insert(0, {root!r})
from mtal_jax import runtime
runtime.configure_host_devices()
import jax
import orbax.checkpoint as ocp
from mtal_jax import checkpointing, sharding
from mtal_jax.models import multitask
from mtal_jax.train import state as state_lib
backbone, n_det, n_seg, ch, hw = {net!r}
model = multitask.Model(n_det, n_seg, backbone=backbone, neck_channels=ch, head_channels=ch)
tx = state_lib.create_optimizer(learning_rate=1e-3, warmup_steps=1, total_steps=10,
                                weight_decay=1e-4, grad_clip_norm=1.0)
state = state_lib.create_train_state(model, tx, jax.random.key(0), hw)
mesh = sharding.create_mesh()
state = jax.block_until_ready(sharding.put_replicated(state, mesh))
directory = tempfile.mkdtemp()
if {handler!r} == "orbax default":
    handlers = {{"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}}
    manager = ocp.CheckpointManager(directory, item_handlers=handlers,
                                    options=ocp.CheckpointManagerOptions(max_to_keep=1))
else:
    manager = checkpointing.make_manager(directory)
seconds = []
for step in range(1, {saves} + 1):
    t = time.perf_counter()
    checkpointing.save(manager, step, state, meta={{"seconds": 1.0}})
    checkpointing.wait(manager)
    seconds.append(time.perf_counter() - t)
checkpointing.close(manager)
print(json.dumps({{"first": seconds[0], "later": statistics.median(seconds[1:]),
                   "arrays": len(jax.tree.leaves(state)), "devices": len(jax.devices())}}))
"""

HANDLERS = ("orbax default", "mtal_jax.checkpointing")


def measure(net, handler: str, saves: int) -> dict:
    code = CHILD.format(root=str(ROOT), net=net, handler=handler, saves=saves)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--saves", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    for name, net in NETWORKS.items():
        runs = {h: [] for h in HANDLERS}
        for _ in range(args.repeats):
            for handler in HANDLERS:
                runs[handler].append(measure(net, handler, args.saves))
        info = runs[HANDLERS[0]][0]
        print(f"{name}: {info['arrays']} arrays on {info['devices']} devices")
        med = {
            h: {k: statistics.median(r[k] for r in rs) for k in ("first", "later")}
            for h, rs in runs.items()
        }
        for h in HANDLERS:
            first, later = med[h]["first"], med[h]["later"]
            print(f"  {h:24s} first save {first:6.2f} s   later saves {later:5.2f} s")
        base, ours = med[HANDLERS[0]], med[HANDLERS[1]]
        print(
            f"  default / ours: first {base['first'] / ours['first']:.1f}x, "
            f"later {base['later'] / ours['later']:.2f}x"
        )


if __name__ == "__main__":
    main()
