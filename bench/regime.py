"""Measurements of the experimental regime: reference, learning curve, convergence, noise floor.

Each job is one training run of the config's network on part of the pool, resumable exactly
(``loop.train``'s checkpoints: run the same command again after a kill). Job names:

  ref            100 % of the pool, ``train.reference_epochs`` passes, seed 0
  f<P>_s<S>      the P % labeled set of labeled seed 0 (``pool.initial_labeled``), training
                 seed S, ``train.initial_epochs`` passes (cycle 0's schedule, from scratch)
  f<P>_s<S>_x2   the same with twice the passes (convergence check of cycle 0)
  lc<P>          P % of the pool, ``train.reference_epochs`` passes (learning curve)
  w<P>_e<E>      warm start from the best weights of f40_s0 (``--warm_from``), the 40 % set
                 plus a random (P - 40) % more, E passes over the pool (convergence check
                 of a cycle; the run directory is w<P>_e<E> for f40_s0, else gets the suffix
                 _from_<job>). ``--warm_from`` may also name a finished run directory of an
                 experiment trained on the same 40 % set, e.g. trial 0's cycle-0 model
                 ``runs/repro_camvid/trial_0/cycle_0`` (its ``pool.json`` is checked; the
                 suffix is then the path with ``-`` for separators)

Suffixes: ``_x2`` doubles a job's passes (``ref_x2``, ``f40_s0_x2``: convergence checks),
``_e<E>`` sets them (``ref_e40``, ``lc60_e24``). A job directory remembers its labeled count,
steps and seed (``job_spec.json``); resuming it with other values (a changed config) is refused.

Usage (from the repo root; one job after the other, in the background):
  nice -n 10 python bench/regime.py --workdir runs/regime --jobs ref,f40_s0,f40_s1
  python bench/regime.py --workdir runs/regime --summarize docs/results/synthetic
  python bench/regime.py --workdir runs/checks --summarize docs/results/synthetic --merge

``--summarize`` reads the finished jobs and writes ``reference.json``,
``noise_floor.json`` and ``regime.json`` (every job's metrics, steps and wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from mtal_jax import runtime

runtime.configure_host_devices()

import numpy as np

from mtal_jax import config_file, jsonio, metrics, workdir_lock

_JOB = re.compile(
    r"^(?:(?P<ref>ref)|f(?P<f>\d+)_s(?P<seed>\d+)|lc(?P<lc>\d+)|w(?P<w>\d+))"
    r"(?:_x(?P<x>2)|_e(?P<e>\d+(?:\.\d+)?))?$"
)


def _labeled(n: int, percent: int, extra_seed: int | None = None) -> np.ndarray:
    from mtal_jax import pool as pool_lib

    base = pool_lib.initial_labeled(n, 0.4 if extra_seed is not None else percent / 100, 0)
    if extra_seed is None:
        return base
    add = pool_lib.fraction_to_count(n, percent / 100) - int(base.sum())
    rest = np.flatnonzero(~base)
    chosen = np.random.default_rng([extra_seed, n]).choice(rest, size=add, replace=False)
    return pool_lib.add_selection(base, chosen)


def _check_job(run_dir: str, spec: dict) -> None:
    """Refuses to resume a job directory made for other steps, data or seed (a changed config
    would otherwise continue another run under the same name); records the spec on first use."""
    path = os.path.join(run_dir, "job_spec.json")
    done = os.path.join(run_dir, "job.json")
    if os.path.exists(path) or os.path.exists(done):
        old = jsonio.read(path if os.path.exists(path) else done)
        diff = {k: (old.get(k), v) for k, v in spec.items() if old.get(k, v) != v}
        if diff:
            raise SystemExit(
                f"error: {run_dir} holds a job with other settings ({diff}, as (stored, asked)): "
                "use another --workdir, or a job name with explicit passes (ref_e<E>, lc<P>_e<E>)"
            )
        return
    os.makedirs(run_dir, exist_ok=True)
    jsonio.write_atomic(path, spec)


def run_job(name: str, config, setup, workdir: str, warm_from: str = "f40_s0"):
    """Trains job ``name`` (resuming) and returns its ``records.RunResult`` (the job's
    metrics, steps and wall seconds go to ``<job>/job.json``)."""
    from mtal_jax.al import experiment
    from mtal_jax.al import schedule as schedule_lib
    from mtal_jax.train import loop

    m = _JOB.match(name)
    if not m or (m["w"] and not m["e"]):
        raise ValueError(f"bad job name {name!r} (see bench/regime.py's docstring)")
    n, batch = setup.pool_size, config.train.batch_size
    sched = schedule_lib.from_config(config.train, n)
    init, seed = None, 0
    if m["ref"] or m["lc"]:
        labeled = np.ones(n, bool) if m["ref"] else _labeled(n, int(m["lc"]))
        steps = sched.reference_steps
    elif m["f"]:
        labeled, seed, steps = _labeled(n, int(m["f"])), int(m["seed"]), sched.initial_steps
    else:
        labeled = _labeled(n, int(m["w"]), extra_seed=1)
        seed = 1
        init = _warm_variables(warm_from, config, setup, workdir, labeled_40=_labeled(n, 40))
    if m["e"]:
        steps = schedule_lib.passes_to_steps(float(m["e"]), n, batch)
    elif m["x"]:
        steps *= 2
    run_dir = os.path.join(workdir, name)
    if m["w"] and warm_from != "f40_s0":
        run_dir += "_from_" + re.sub(r"[^A-Za-z0-9_]+", "-", os.path.normpath(warm_from)).strip("-")
    # one process per job directory (a second one is refused at once, naming the holder)
    with workdir_lock.hold(run_dir):
        _check_job(
            run_dir, {"labeled": int(labeled.sum()), "pool": n, "steps": steps, "seed": seed}
        )
        done = os.path.join(run_dir, "job.json")
        resumed = os.path.exists(os.path.join(run_dir, "train", "latest"))
        t0 = time.time()
        src = setup.dataset.sources
        result = loop.train(
            setup.model, experiment.train_config(config, num_steps=steps, seed=seed),
            workdir=run_dir, spec=setup.spec, train_source=src[config.data.train_split],
            train_indices=np.flatnonzero(labeled), eval_source=src[config.data.eval_split],
            eval_indices=setup.eval_indices, mesh=setup.mesh, init_variables=init, progress=False,
        )  # fmt: skip
        if not os.path.exists(done):
            jsonio.write_atomic(
                done,
                {
                    "job": name, "labeled": int(labeled.sum()), "pool": n, "steps": steps,
                    "passes": schedule_lib.steps_to_passes(steps, n, batch),
                    "seed": seed, "wall_s": time.time() - t0, "resumed": resumed,
                    **result.metrics, "best_step": result.step, "per_class_ap": result.per_class_ap,
                },
            )  # fmt: skip
    return result


def _warm_variables(warm_from: str, config, setup, workdir: str, labeled_40: np.ndarray):
    """The variables a w<P>_e<E> job starts from: job ``warm_from`` (trained here when
    missing), or the best weights of the run directory ``warm_from``.

    Raises:
      SystemExit: the run directory does not exist, or was trained on another labeled set
        than the jobs' 40 % (its ``pool.json``), naming it.
    """
    if _JOB.match(warm_from):
        return run_job(warm_from, config, setup, workdir).variables
    from mtal_jax.al import experiment
    from mtal_jax.train import run_files

    if not os.path.isdir(warm_from):
        raise SystemExit(f"error: --warm_from {warm_from}: neither a job name nor a directory")
    pool = os.path.join(warm_from, "pool.json")
    if os.path.exists(pool):
        ids = sorted(int(i) for i in jsonio.read(pool)["labeled_ids"])
        if ids != np.flatnonzero(labeled_40).tolist():
            raise SystemExit(
                f"error: --warm_from {warm_from}: trained on another labeled set ({pool}: "
                f"{len(ids)} images) than the jobs' 40 % set ({int(labeled_40.sum())} images of "
                "pool.initial_labeled(n, 0.4, 0)); the cycle it checks would not be the protocol's"
            )
    cfg = experiment.train_config(config, num_steps=1, seed=0)
    try:
        return run_files.load_variables(warm_from, setup.model, cfg, setup.spec)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: --warm_from {warm_from}: {e}") from None


def summarize(workdir: str, out_dir: str, reference: str = "ref", merge: bool = False) -> None:
    """Writes reference.json, noise_floor.json and regime.json from the finished jobs; mDSQ
    is normalised by job ``reference`` (the one whose passes the config's reference uses).

    With ``merge``, the jobs of ``workdir`` join those already in ``out_dir/regime.json``
    (a job of the same name is replaced), normalised by the reference already in
    ``out_dir/reference.json``, which stays as it is (e.g. a convergence check run later in
    another workdir)."""
    from scipy import stats

    jobs = {}
    for d in sorted(os.listdir(workdir)):
        p = os.path.join(workdir, d, "job.json")
        if os.path.exists(p):
            jobs[d] = jsonio.read(p)
    os.makedirs(out_dir, exist_ok=True)
    if merge:
        ref_path = os.path.join(out_dir, "reference.json")
        if not os.path.exists(ref_path):
            raise SystemExit(f"error: --merge: no {ref_path} to normalise the new jobs by")
        old = os.path.join(out_dir, "regime.json")
        jobs = {**(jsonio.read(old) if os.path.exists(old) else {}), **jobs}
        ref = jsonio.read(ref_path)
    else:
        ref = jobs.get(reference)
    if ref is None and os.path.exists(os.path.join(reference, "metrics.json")):
        # a training run directory, e.g. an experiment's <workdir>/reference: the same
        # 100 % run as the job ``ref`` when the config's reference passes and seed match
        m = jsonio.read(os.path.join(reference, "metrics.json"))
        wall = os.path.join(reference, "wall.json")
        ref = {
            "map": m["map"], "ap50": m["ap50"], "miou": m["miou"], "steps": m["step"],
            "passes": math.nan, "per_class_ap": m["per_class_ap"],
            "wall_s": jsonio.read(wall)["seconds"] if os.path.exists(wall) else math.nan,
        }  # fmt: skip
        exp_config = os.path.join(os.path.dirname(os.path.abspath(reference)), "config.json")
        if os.path.exists(exp_config):  # passes from the experiment's batch and pool size
            c = jsonio.read(exp_config)
            pool = (c["data"].get("builder_kwargs") or {}).get("num_train")
            if pool:
                from mtal_jax.al import schedule as schedule_lib

                ref["passes"] = schedule_lib.steps_to_passes(
                    m["step"], pool, c["train"]["batch_size"]
                )
    if ref is None:
        print(f"no finished reference job or run directory {reference!r}: nothing written")
        return
    if not merge:
        jsonio.write_atomic(
            os.path.join(out_dir, "reference.json"),
            {k: ref[k] for k in ("map", "ap50", "miou", "steps", "wall_s")}
            | {"passes": ref["passes"], "per_class_ap": ref["per_class_ap"], "job": reference},
        )
    for j in jobs.values():
        j["mdsq"] = metrics.mdsq(j["map"], j["miou"], ref["map"], ref["miou"])
    jsonio.write_atomic(os.path.join(out_dir, "regime.json"), jobs)
    rows = [
        "| job | labeled | steps | passes | mAP | AP50 | mIoU | mDSQ | wall s |",
        "|" + "---|" * 9,
    ]
    for name, j in jobs.items():
        rows.append(
            f"| {name} | {j['labeled']} / {j['pool']} | {j['steps']} | {j['passes']:.1f} | "
            f"{j['map']:.4f} | {j['ap50']:.4f} | {j['miou']:.4f} | {j['mdsq']:.3f} | "
            f"{j['wall_s']:.0f}{' (resumed)' if j.get('resumed') else ''} |"
        )
    with open(os.path.join(out_dir, "regime_jobs.md"), "w") as f:
        f.write("\n".join(rows) + "\n")
    print("\n".join(rows))
    groups = {}
    for name, j in jobs.items():
        m = re.match(r"^f(\d+)_s(\d+)$", name)
        if m:
            groups.setdefault(int(m.group(1)), []).append(j)
    groups = {p: js for p, js in groups.items() if len(js) >= 2}
    if not groups:
        print("fewer than 2 seeds of any labeled set: noise_floor.json not written")
        return
    out = {
        "seeds": {str(p): sorted(j["seed"] for j in js) for p, js in groups.items()},
        "labeled_fractions": sorted(p / 100 for p in groups),
        "steps": {str(p): js[0]["steps"] for p, js in groups.items()},
    }
    for key in ("map", "miou", "mdsq"):
        out[f"{key}_std"] = {
            str(p): float(np.std([j[key] for j in js], ddof=1)) for p, js in groups.items()
        }
    # Smallest paired mDSQ difference detectable at 95 % (two-sided paired t-test, n trials):
    # t_{0.975, n-1} * sd_diff / sqrt(n), with sd_diff = sqrt(2) * the seed std (two runs
    # whose training noise is independent); the pooled std over the labeled fractions.
    pooled = math.sqrt(np.mean([out["mdsq_std"][str(p)] ** 2 for p in groups]))
    out["mdsq_std_pooled"] = pooled
    out["min_detectable_diff"] = {
        str(n): float(stats.t.ppf(0.975, n - 1) * math.sqrt(2) * pooled / math.sqrt(n))
        for n in (3, 5, 10)
    }
    out["min_detectable_diff_definition"] = (
        "t_{0.975,n-1} * sqrt(2) * mdsq_std_pooled / sqrt(n): half-width of the 95 % interval of "
        "a mean paired mDSQ difference over n trials (significance only, no power margin)"
    )
    jsonio.write_atomic(os.path.join(out_dir, "noise_floor.json"), out)
    print(json.dumps(out, indent=1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/default.py")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--workdir", required=True)
    p.add_argument("--jobs", default="")
    p.add_argument("--summarize", default="", help="output folder of the JSON summaries")
    p.add_argument(
        "--reference",
        default="ref",
        help="--summarize: the reference for mDSQ, a job name or a run directory holding "
        "metrics.json (e.g. an experiment's <workdir>/reference)",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="--summarize: add this workdir's jobs to the folder's regime.json, normalised by "
        "its reference.json (kept)",
    )
    p.add_argument(
        "--warm_from",
        default="f40_s0",
        help="the cycle-0 job that w<P>_e<E> starts from, or a finished run directory trained "
        "on the same 40 %% set (e.g. runs/repro_camvid/trial_0/cycle_0)",
    )
    args = p.parse_args()
    if args.summarize:
        summarize(args.workdir, args.summarize, args.reference, args.merge)
        return
    runtime.setup()
    from mtal_jax.al import experiment

    config = config_file.load(args.config, args.set)
    setup = experiment.build_setup(config)
    print(f"pool {setup.pool_size}, eval {len(setup.eval_indices)}", flush=True)
    for name in [j for j in args.jobs.split(",") if j]:
        t0 = time.time()
        try:
            r = run_job(name, config, setup, args.workdir, args.warm_from)
        except workdir_lock.WorkdirLockedError as e:
            raise SystemExit(f"error: job {name}: {e}") from None
        print(
            f"{name}: mAP {r.metrics['map']:.4f} AP50 {r.metrics['ap50']:.4f} "
            f"mIoU {r.metrics['miou']:.4f} best step {r.step} ({time.time() - t0:.0f} s this call)",
            flush=True,
        )


if __name__ == "__main__":
    main()
