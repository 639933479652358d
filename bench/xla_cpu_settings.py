"""XLA:CPU settings for the default training step: speed, numerics and determinism.

  python bench/xla_cpu_settings.py [--rounds 5] [--steps 3] [--settings default,greedy,...]
  python bench/xla_cpu_settings.py --check [--check_steps 200]

Timing: one worker process per setting (its own XLA_FLAGS, set before JAX is imported)
compiles the default experiment's training step (``bench/default_net.py``) once; the
parent then asks the workers in turn, round by round, to time ``--steps`` steps, so that
every setting sees the same machine load; medians per setting and ratios to ``default``.

``--check``: trains ``--check_steps`` steps from the same initial state over the same
batches under ``--flags`` (default: ``runtime.DEFAULT_CPU_FLAGS``, or the XNNPACK greedy
graph fusion when the library sets none) twice and under plain XLA once; the two runs under the library's settings must agree bit for bit, and the losses
and final parameters must stay within float tolerance of plain XLA's.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GREEDY = "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY"
# name -> (XLA flags without the device count, device count)
SETTINGS = {
    "default": ("", 2),
    "default_1dev": ("", 1),
    "default_4dev": ("", 4),
    "greedy": (GREEDY, 2),
    "greedy_1dev": (GREEDY, 1),
    "greedy_4dev": (GREEDY, 4),
    "greedy_slinky": (
        "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY_SLINKY",
        2,
    ),
    "onednn": ("--xla_cpu_use_onednn=true", 2),
    "greedy_onednn": (GREEDY + " --xla_cpu_use_onednn=true", 2),
    "greedy_no_eigen_mt": (GREEDY + " --xla_cpu_multi_thread_eigen=false", 2),
    "xnn_dot_eltwise": (GREEDY + " --xla_cpu_experimental_xnn_fusion_type=dot,eltwise", 2),
    "ynn_conv": (
        "--xla_cpu_experimental_ynn_fusion_type=individual_convolution,individual_dot",
        2,
    ),
}


def _worker(steps_per_call: int, check_steps: int, out: str) -> None:
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    import default_net

    from mtal_jax import sharding
    from mtal_jax.train import state as state_lib

    cfg = default_net.config()
    hw = tuple(cfg.data.image_size)
    model, tx, step, _ = default_net.build(cfg, total_steps=max(check_steps, 1000))
    mesh = sharding.create_mesh()
    batches = [
        sharding.put_batch(
            default_net.scene_batch(cfg.train.batch_size, hw, cfg.data.max_boxes, seed=s), mesh
        )
        for s in range(4)
    ]
    fn = jax.jit(step, donate_argnums=0)

    def fresh():
        st = state_lib.create_train_state(model, tx, jax.random.key(0), hw)
        return sharding.put_replicated(st, mesh)

    if check_steps:
        st, losses = fresh(), []
        for i in range(check_steps):
            st, m = fn(st, batches[i % len(batches)], jax.random.key(0))
            losses.append(float(m["total"]))
        leaves = [np.asarray(x) for x in jax.tree.leaves(st.params)]
        np.savez(out, *leaves, losses=np.asarray(losses))
        return
    st = fresh()
    t0 = time.perf_counter()
    st, _ = fn(st, batches[0], jax.random.key(0))
    jax.block_until_ready(st)
    print(json.dumps({"ready": time.perf_counter() - t0, "devices": len(jax.devices())}))
    sys.stdout.flush()
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t = time.perf_counter()
        c0 = time.process_time()
        for i in range(steps_per_call):
            st, _ = fn(st, batches[i % len(batches)], jax.random.key(0))
        jax.block_until_ready(st)
        wall = (time.perf_counter() - t) / steps_per_call
        cpu = (time.process_time() - c0) / steps_per_call
        print(json.dumps({"wall": wall, "cpu": cpu}))
        sys.stdout.flush()


def _env(flags: str, devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _spawn(name: str, args, check_steps: int = 0, out: str = "") -> subprocess.Popen:
    flags, devices = SETTINGS[name]
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps)]
    cmd += ["--check_steps", str(check_steps), "--out", out]
    return subprocess.Popen(
        cmd, env=_env(flags, devices), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def time_settings(names: list[str], args) -> dict:
    """Interleaved medians of seconds per step; returns {name: {...}}."""
    procs, res = {}, {}
    for n in names:  # compile one at a time (compiles are CPU heavy)
        p = _spawn(n, args)
        line = p.stdout.readline()
        if not line:
            print(f"{n}: worker failed (flags {SETTINGS[n][0]!r})", flush=True)
            continue
        procs[n] = p
        res[n] = {"flags": SETTINGS[n][0], "devices": SETTINGS[n][1], "wall": [], "cpu": []}
        res[n]["first_call_s"] = json.loads(line)["ready"]
    for r in range(args.rounds):
        for n, p in procs.items():
            p.stdin.write("run\n")
            p.stdin.flush()
            d = json.loads(p.stdout.readline())
            res[n]["wall"].append(d["wall"])
            res[n]["cpu"].append(d["cpu"])
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    base = statistics.median(res["default"]["wall"]) if "default" in res else None
    for n, v in res.items():
        v["median_ms"] = 1e3 * statistics.median(v["wall"])
        v["median_cpu_ms"] = 1e3 * statistics.median(v["cpu"])
        v["speedup_vs_default"] = base / statistics.median(v["wall"]) if base else None
    return res


def check(args) -> dict:
    """200-step numerics / determinism check of the library's settings vs plain XLA."""
    import numpy as np

    from mtal_jax import runtime

    # The library's flags, or (when it sets none) the candidate that was measured.
    flags = getattr(args, "flags", None) or runtime.DEFAULT_CPU_FLAGS or GREEDY
    SETTINGS["library"] = (flags, 2)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="xla_check_"))
    # The three runs go in parallel (same work each; wall time matters on a shared box).
    runs = {"library": "library", "library_again": "library", "default": "default"}
    procs = {
        key: _spawn(n, args, check_steps=args.check_steps, out=str(tmp / f"{key}.npz"))
        for key, n in runs.items()
    }
    outs = {}
    for key, p in procs.items():
        p.wait()
        if p.returncode:
            raise SystemExit(f"worker {key} failed with status {p.returncode}")
        outs[key] = np.load(tmp / f"{key}.npz")

    def leaves(z):
        return [z[k] for k in sorted(z.files, key=lambda s: (len(s), s)) if k != "losses"]

    a, b, ref = outs["library"], outs["library_again"], outs["default"]
    bitwise = np.array_equal(a["losses"], b["losses"]) and all(
        np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b))
    )
    loss_rel = np.abs(a["losses"] - ref["losses"]) / np.maximum(np.abs(ref["losses"]), 1e-6)
    param_rel = max(
        float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-12))
        for x, y in zip(leaves(a), leaves(ref))
    )
    return {
        "flags": flags,
        "steps": args.check_steps,
        "bitwise_reproducible": bool(bitwise),
        "loss_first": float(ref["losses"][0]),
        "loss_last_library": float(a["losses"][-1]),
        "loss_last_plain": float(ref["losses"][-1]),
        "max_loss_rel_diff": float(loss_rel.max()),
        "loss_rel_diff_first_10": float(loss_rel[:10].max()),
        "max_param_rel_l2_diff": param_rel,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--settings", default="default,default_1dev,greedy,greedy_1dev")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="steps per timed call")
    p.add_argument("--check", action="store_true")
    p.add_argument("--check_steps", type=int, default=200)
    p.add_argument("--flags", default="", help="--check: flags to compare (default: the library's)")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args.steps, args.check_steps if args.out else 0, args.out)
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()}")
    if args.check:
        res = check(args)
        print(json.dumps(res, indent=1))
        ok = res["bitwise_reproducible"] and res["max_param_rel_l2_diff"] < 1e-3
        print(f"check {'passed' if ok else 'FAILED'}")
    else:
        res = time_settings(args.settings.split(","), args)
        for n, v in res.items():
            print(f"{n:20s} {v['devices']} dev  {v['median_ms']:7.1f} ms/step  "
                  f"cpu {v['median_cpu_ms']:7.1f} ms  x{v['speedup_vs_default'] or 0:.2f}  "
                  f"first call {v['first_call_s']:.1f} s  {v['flags']}")  # fmt: skip
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
