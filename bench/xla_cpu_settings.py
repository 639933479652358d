"""XLA:CPU and host-allocator settings for the training step: speed, numerics, determinism.

  python bench/xla_cpu_settings.py [--rounds 5] [--steps 3] [--settings default,greedy,...]
      [--config configs/camvid.py]
  python bench/xla_cpu_settings.py --check [--check_steps 200] [--check_malloc]

Timing: one worker process per setting (its own XLA_FLAGS and environment, set before JAX
is imported) compiles the training step of ``--config``'s network, input size and batch
(``bench/default_net.py``; default ``configs/default.py``) once; the parent then asks the
workers in turn, round by round, to time ``--steps`` steps, so that every setting sees the
same machine load; medians per setting (wall, CPU, kernel CPU, page faults) and ratios
to ``default``. Settings ``heap*``, ``arena*``, ``nommap*``, ``thp*`` set glibc malloc
tunables in the worker's environment; ``library_malloc`` calls ``runtime.tune_malloc``
(what the library's entrypoints do); the others keep glibc's defaults.

``--check``: trains ``--check_steps`` steps from the same initial state over the same
batches under ``--flags`` (default: ``runtime.DEFAULT_CPU_FLAGS``, or the XNNPACK greedy
graph fusion when the library sets none; with ``--check_malloc``: plain XLA under
``runtime.tune_malloc``) twice and under plain XLA once; the two runs under the library's
settings must agree bit for bit, and the losses and final parameters must stay within
float tolerance of plain XLA's (``bitwise_equal_plain``: identical to it).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
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
# glibc malloc tunables (environment, read at process start): the default training step
# spends about a quarter of its CPU time in the kernel (page faults of freshly mmap'ed
# buffers, `perf record`), because XLA:CPU's large temporaries are mmapped by glibc and
# unmapped again every step. Candidates to keep them in the heap; measured, only one arena
# together with no mmap does (``nommap_arena1``; docs/benchmarks.md, "Host memory allocator").
HEAP = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),  # glibc's maximum (64-bit)
    "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
    "MALLOC_TOP_PAD_": str(64 << 20),
}
# name -> environment variables of the worker (settings not named here: none)
SETTING_ENV = {
    "heap": HEAP,
    "arena1": {"MALLOC_ARENA_MAX": "1"},
    "heap_arena1": {**HEAP, "MALLOC_ARENA_MAX": "1"},
    "heap_arena2": {**HEAP, "MALLOC_ARENA_MAX": "2"},
    "nommap_arena1": {**HEAP, "MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0"},
    "thp": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
    "thp_heap": {**HEAP, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
}
SETTINGS.update({name: ("", 2) for name in SETTING_ENV})
# The library's own settings: runtime.tune_malloc in the worker (mallopt, in-process), and
# the glibc defaults it replaces (``default`` also keeps them: the workers never call it).
SETTINGS["library_malloc"] = ("", 2)
SETTING_ENV["library_malloc"] = {"BENCH_TUNE_MALLOC": "1"}


def _config(path: str):
    """The ConfigDict of ``get_config()`` in the config file ``path`` (repository-relative)."""
    from mtal_jax import config_file

    return config_file.load(ROOT / path)


def _worker(steps_per_call: int, check_steps: int, out: str, config: str) -> None:
    if os.environ.get("BENCH_TUNE_MALLOC") == "1":
        from mtal_jax import runtime

        assert runtime.tune_malloc(), "tune_malloc skipped (not glibc, or MTAL_JAX_MALLOC=system)"
    import jax
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    import default_net

    from mtal_jax import sharding
    from mtal_jax.train import state as state_lib

    cfg = _config(config)
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
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(steps_per_call):
            st, _ = fn(st, batches[i % len(batches)], jax.random.key(0))
        jax.block_until_ready(st)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = (time.perf_counter() - t) / steps_per_call
        user = (r1.ru_utime - r0.ru_utime) / steps_per_call
        system = (r1.ru_stime - r0.ru_stime) / steps_per_call
        faults = (r1.ru_minflt - r0.ru_minflt) / steps_per_call
        print(json.dumps({"wall": wall, "cpu": user + system, "sys": system, "faults": faults}))
        sys.stdout.flush()


def _env(flags: str, devices: int, extra: dict | None = None) -> dict:
    env = dict(os.environ) | (extra or {})
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _spawn(name: str, args, check_steps: int = 0, out: str = "") -> subprocess.Popen:
    flags, devices = SETTINGS[name]
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps)]
    cmd += ["--check_steps", str(check_steps), "--out", out, "--config", args.config]
    return subprocess.Popen(
        cmd,
        env=_env(flags, devices, SETTING_ENV.get(name)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
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
        res[n] = {
            "flags": SETTINGS[n][0],
            "devices": SETTINGS[n][1],
            "wall": [],
            "cpu": [],
            "sys": [],
            "faults": [],
        }
        res[n]["first_call_s"] = json.loads(line)["ready"]
    for r in range(args.rounds):
        for n, p in procs.items():
            p.stdin.write("run\n")
            p.stdin.flush()
            d = json.loads(p.stdout.readline())
            for key in ("wall", "cpu", "sys", "faults"):
                res[n][key].append(d[key])
        print(f"round {r + 1}/{args.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    base = statistics.median(res["default"]["wall"]) if "default" in res else None
    for n, v in res.items():
        v["median_ms"] = 1e3 * statistics.median(v["wall"])
        v["median_cpu_ms"] = 1e3 * statistics.median(v["cpu"])
        v["median_sys_ms"] = 1e3 * statistics.median(v["sys"])
        v["median_page_faults"] = statistics.median(v["faults"])
        v["speedup_vs_default"] = base / statistics.median(v["wall"]) if base else None
    return res


def check(args) -> dict:
    """200-step numerics / determinism check of the library's settings vs plain XLA."""
    import numpy as np

    from mtal_jax import runtime

    # The library's flags, or (when it sets none) the candidate that was measured; with
    # --check_malloc, plain XLA under the library's allocator settings (runtime.tune_malloc).
    flags = getattr(args, "flags", None) or runtime.DEFAULT_CPU_FLAGS or GREEDY
    if args.check_malloc:
        flags = ""
        SETTING_ENV["library"] = SETTING_ENV["library_malloc"]
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
    equal_plain = np.array_equal(a["losses"], ref["losses"]) and all(
        np.array_equal(x, y) for x, y in zip(leaves(a), leaves(ref))
    )
    return {
        "flags": flags,
        "malloc": "library" if args.check_malloc else "system",
        "steps": args.check_steps,
        "bitwise_equal_plain": bool(equal_plain),
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
    p.add_argument("--config", default="configs/default.py", help="the network, input size "
                   "and batch of this config (its data: rendered synthetic scenes)")  # fmt: skip
    p.add_argument("--check", action="store_true")
    p.add_argument("--check_steps", type=int, default=200)
    p.add_argument("--flags", default="", help="--check: flags to compare (default: the library's)")
    p.add_argument(
        "--check_malloc", action="store_true",
        help="--check: the library's malloc settings (runtime.tune_malloc) against glibc's",
    )  # fmt: skip
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args.steps, args.check_steps if args.out else 0, args.out, args.config)
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
                  f"cpu {v['median_cpu_ms']:7.1f} ms (kernel {v['median_sys_ms']:6.1f})  "
                  f"{v['median_page_faults']:8.0f} faults  x{v['speedup_vs_default'] or 0:.2f}  "
                  f"first call {v['first_call_s']:.1f} s  {v['flags']}")  # fmt: skip
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
