"""First model initialisation in a fresh process: Flax's op-by-op ``init`` against the jitted
``multitask.create_variables``, for the networks of the synthetic default and CamVid.

  python bench/model_init.py [--repeats 2]

Every measurement runs in its own process (the cost is the first initialisation of a
process: op by op, each layer's operations compile one at a time; later calls in the same
process reuse them), with the library's CPU settings (``runtime.configure_host_devices``)
and a fresh, empty XLA persistent cache, except ``jit, warm cache``: the same cache after a
first jitted run, as a resumed experiment or a second ``select.py`` finds it. The modes take
turns, so that the machine's load falls on all alike. Prints seconds per mode and network,
median over ``--repeats``, and whether the values are the same bit for bit.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

NETWORKS = {  # the model of each config: (backbone, classes det/seg, neck/head, image size)
    "synthetic default (tiny ResNet, 96x192)": ("tiny", 6, 11, 64, (96, 192)),
    "CamVid (EfficientNet-Lite0, 128x160)": ("efficientnet_lite0", 3, 11, 64, (128, 160)),
}

CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, {root!r})
from mtal_jax import runtime
runtime.configure_host_devices()
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_compilation_cache_dir", {cache!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
from mtal_jax.models import multitask
backbone, n_det, n_seg, ch, hw = {net!r}
model = multitask.Model(n_det, n_seg, backbone=backbone, neck_channels=ch, head_channels=ch,
                        loss_prediction=True)
t = time.perf_counter()
if {mode!r} == "eager":
    v = model.init(jax.random.key(0), jnp.zeros((1, *hw, 3), jnp.uint8), train=False)
else:
    v = multitask.create_variables(model, jax.random.key(0), hw)
v = jax.block_until_ready(v)
seconds = time.perf_counter() - t
h = hashlib.sha256()
for leaf in jax.tree.leaves(dict(v)):
    h.update(np.asarray(leaf).tobytes())
print(json.dumps({{"seconds": seconds, "digest": h.hexdigest()}}))
"""


def measure(net, mode: str, cache: str) -> dict:
    code = CHILD.format(root=str(ROOT), cache=cache, net=net, mode=mode)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    for name, net in NETWORKS.items():
        seconds = {"eager": [], "jit, cold cache": [], "jit, warm cache": []}
        digests = set()
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cold, tempfile.TemporaryDirectory() as warm:
                measure(net, "jit", warm)  # fills the warm cache
                for mode, cache in (
                    ("eager", cold),
                    ("jit, cold cache", tempfile.mkdtemp(dir=cold)),
                    ("jit, warm cache", warm),
                ):
                    r = measure(net, "eager" if mode == "eager" else "jit", cache)
                    seconds[mode].append(r["seconds"])
                    digests.add(r["digest"])
        eager = statistics.median(seconds["eager"])
        print(f"{name}: same values in every mode: {len(digests) == 1}")
        for mode, values in seconds.items():
            med = statistics.median(values)
            runs = ", ".join(f"{v:.1f}" for v in values)
            print(f"  {mode:16s} {med:6.1f} s  ({eager / med:4.1f}x faster than eager; {runs})")


if __name__ == "__main__":
    main()
