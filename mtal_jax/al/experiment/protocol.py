"""The active-learning protocol (paper IV-A): trials x strategies x cycles.

Per trial: a seeded random initial pool, one cycle-0 model shared by every strategy
that runs in the trial (``al.trials_per_strategy`` lets a strategy run only the first n
trials);
per strategy and cycle k >= 1: select with the model of cycle k - 1, then continue
training from it on the grown labeled set (continuous training: the previous best
checkpoint, a fresh optimizer and schedule). A reference trained on the full pool (or
given in the config) normalises mDSQ (paper Eq. 4). ``al.order`` sets the order of the
(trial, strategy) runs: every strategy of trial 0, then of trial 1, ... ("trial"), or every
trial of the first strategy, then of the second, ... ("strategy": the comparisons of the
first strategies complete first in a long experiment). The order changes when results
appear, not what they are, and may be changed when resuming.

Where a training run starts (resume order): (1) its own latest checkpoint; (2) the
weights it is given: the previous cycle's best model, or for the cycle-0 models and the
reference the best weights of ``config.checkpoint.init_from`` when set; (3) scratch, with
the backbone of ``config.model.pretrained_backbone`` when set.

Resume: each step first looks for its durable output (``durable``: the trial's
``cycle_0/pool.json``, a cycle's ``selection.json`` and ``pool.json``, a training run's
own checkpoints), so killing the process at any moment and running the same command
again continues where it stopped and ends with the same labeled sets and metrics. A
finished run is read back from its JSON files (``run_files.read_finished``); its weights
are read only when the next run still needs them (``weights_of``). An
archived run directory (``archive``: finished runs without checkpoints, the weights the
unfinished runs start from) resumes the same way on another machine. With
``al.share_from``, finished runs this experiment would train again exactly (reference,
cycle-0 models, equivalent strategies) are first copied from another experiment
(``share``); within one experiment, a strategy that selects like another one of the same
trial whose run has finished (same ``strategy_identity.selection_identity``) gets a copy of that
run (``share.share_within``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from mtal_jax import jsonio, metrics, records, reporting, runtime, sharding, workdir_lock
from mtal_jax import pool as pool_lib
from mtal_jax.al import diagnostics
from mtal_jax.al import progress as progress_lib
from mtal_jax.al.experiment import cycle as cycle_lib
from mtal_jax.al.experiment import durable, share, training
from mtal_jax.al.experiment import setup as setup_lib
from mtal_jax.train import config as config_lib
from mtal_jax.train import loop, run_files, step_fns

log = logging.getLogger(__name__)


def run(
    config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True
) -> list[records.CycleRecord]:
    """Runs (or resumes) the whole experiment of ``config`` in ``workdir``.

    The workdir is locked for this process (``workdir_lock``): a second run on it is
    refused at once. Nothing is written before the config is validated (and, with
    ``al.share_from``, checked against the source experiment's; ``share``).

    Returns:
      The result records (also in ``workdir/results.json``).
    """
    durable.session_code()  # the code this session runs, read before it can change
    with runtime.input_checks():  # the user's config: one line from train.py, not a traceback
        if os.path.exists(workdir) and not os.path.isdir(workdir):
            raise NotADirectoryError(f"--workdir {workdir} is a file, not a folder")
        config_lib.check_single_process()
        specs = setup_lib.strategy_specs(config)  # names and hyperparameters, before anything
        setup_lib.trials_per_strategy(config, specs)
        training.check_schedules(
            config, sharding.create_mesh(config.mesh.num_devices or None),
            needs_loss_prediction=any(s.base == "ll4al" for s in specs),
        )  # fmt: skip
    lock = workdir_lock.hold(workdir, process=jax.process_index(), processes=jax.process_count())
    with lock:
        with runtime.input_checks():
            durable.check_config(config.to_dict(), workdir, write=False)  # changed: refused now
        setup = setup_lib.build_setup(
            config, needs_loss_prediction=any(s.base == "ll4al" for s in specs)
        )
        with runtime.input_checks():  # schedules: steps or passes out of range
            plan = setup_lib.plan_from_config(config, pool_size=setup.pool_size)
        source = config.al.get("share_from", "")
        with runtime.input_checks():
            source_config = share.check_source(source, config.to_dict()) if source else None
        durable.check_config(config.to_dict(), workdir)  # written once everything is valid
        if source:
            share.share_runs(source, source_config, workdir, plan)
        return run_plan(setup, plan, workdir, progress=progress)


def run_plan(
    setup: setup_lib.Setup, plan: setup_lib.Plan, workdir: str, *, progress: bool = True
) -> list[records.CycleRecord]:
    """The protocol on an unpacked ``setup`` and ``plan`` (see the module docstring)."""
    n = setup.pool_size
    sched = plan.schedule
    if sched is None:
        raise ValueError("run_plan needs a plan with its schedule (plan_from_config(pool_size=))")
    budgets = pool_lib.cycle_budgets(
        n, plan.initial_fraction, plan.budget_fraction, plan.num_cycles
    )
    log.info(
        "pool %d images, eval %d, cycles %d (budgets %s), strategies %s, trials %d "
        "(per strategy %s), %d devices",
        n, len(setup.eval_indices), plan.num_cycles, budgets, [s.name for s in plan.strategies],
        plan.num_trials, {s.name: plan.trials_of(s.name) for s in plan.strategies},
        sharding.num_shards(setup.mesh),
    )  # fmt: skip
    log.info(
        "schedule: cycle %d steps, cycle 0 %d, reference %d", sched.cycle_steps,
        sched.initial_steps, sched.reference_steps,
    )  # fmt: skip
    src = setup.dataset.sources
    train_source, eval_source = src[plan.train_split], src[plan.eval_split]
    init = None
    if plan.init_from:
        init = run_files.load_variables(plan.init_from, setup.model, setup.train_cfg, setup.spec)
        log.info("cycle-0 models and the reference start from the weights of %s", plan.init_from)
    given_ref = plan.reference_map > 0 and plan.reference_miou > 0
    ref_steps = 0 if given_ref else sched.reference_steps
    tracker = progress_lib.ExperimentProgress(
        plan.planned_steps(train_reference=not given_ref),
        enabled=progress and jax.process_index() == 0,
    )
    tracker.start("reference (100% of the pool)", ref_steps)
    ref = reference_metrics(
        setup, plan, workdir, progress=progress, init_variables=init, on_step=tracker.step
    )
    tracker.finish()
    results: list[records.CycleRecord] = []
    # by (run length, LL4AL detach step): they set the LR schedule and the detach point
    fns_by_schedule: dict[tuple[int, int], step_fns.StepFns] = {}
    cfg_of_run: dict[str, Any] = {}  # run directory -> its training config (weights_of)
    trained: set[str] = set()  # runs this session trained (rather than read back)

    def train_cycle(run_dir, labeled, init, seed, num_steps, ll4al=False, phase="", planned=True):
        """``planned``: the run's steps count in the experiment's progress (False when a
        finished cycle-0 run is read back for another strategy). A run that had finished
        is read back without its weights (``weights_of`` reads them if needed)."""
        cfg = setup_lib.run_config(setup, plan, num_steps=num_steps, seed=seed, ll4al=ll4al)
        cfg_of_run[run_dir] = cfg
        if not run_files.is_finished(run_dir):
            trained.add(run_dir)
        fns_key = (cfg.num_steps, cfg.ll4al_detach_step)
        if fns_key not in fns_by_schedule:  # compiled once per schedule, not per cycle
            fns_by_schedule[fns_key] = step_fns.build_step_fns(setup.model, cfg, setup.spec)
        tracker.start(f"{phase} | train", cfg.num_steps if planned else 0)
        result = loop.train(
            setup.model, cfg, workdir=run_dir, spec=setup.spec,
            train_source=train_source, train_indices=np.flatnonzero(labeled),
            eval_source=eval_source, eval_indices=setup.eval_indices, mesh=setup.mesh,
            init_variables=init, progress=progress, fns=fns_by_schedule[fns_key],
            on_step=tracker.step, with_variables=False,
        )  # fmt: skip
        tracker.finish()
        return result

    def weights_of(result: records.RunResult, run_dir: str, next_dir: str) -> records.RunResult:
        """``result`` with its variables when run ``next_dir`` still needs them (to select or
        to start training; ``durable.needs_previous_weights``), read from ``run_dir`` when
        the finished run was read back without them."""
        if result.variables is not None or not durable.needs_previous_weights(next_dir):
            return result
        try:
            run_files.check_weights(run_dir)
        except FileNotFoundError:
            raise RuntimeError(
                f"{run_dir} finished, but its weights are not in this (archived) run "
                f"directory and {next_dir} starts from them: archive the experiment "
                "again from a run directory that holds them (al.experiment.archive)"
            ) from None
        variables = run_files.load_variables(run_dir, setup.model, cfg_of_run[run_dir], setup.spec)
        return dataclasses.replace(result, variables=variables)

    def record(trial, strategy, cycle, labeled, result: records.RunResult, seconds, run_dir):
        rec = records.CycleRecord(
            trial=trial, strategy=strategy, cycle=cycle, labeled_fraction=float(labeled.mean()),
            labeled_ids=np.flatnonzero(labeled).tolist(),
            metrics={**result.metrics, records.MDSQ.name: _mdsq(result.metrics, ref)},
        )  # fmt: skip
        results.append(rec)
        values = " ".join(f"{m.title} {rec.metrics[m.name]:.4f}" for m in records.RECORD_METRICS)
        log.info(
            "trial %d | %-11s | cycle %d | %5.1f%% labeled | %s | %.0f s",
            trial, strategy, cycle, 100 * rec.labeled_fraction, values, seconds,
        )  # fmt: skip
        durable.write_results(workdir, [r.to_json() for r in results])
        durable.write_wall_time(run_dir, seconds + result.resumed_seconds)

    def write_summary() -> None:
        if jax.process_index() == 0:
            reporting.write_summary(
                jsonio.read(os.path.join(workdir, "results.json")), workdir,
                last_cycle=plan.num_cycles - 1,
            )  # fmt: skip

    summary_behind = False  # records replayed since the last write_summary
    cycle0 = None  # (trial, its pool, its cycle-0 result, seconds) of the latest trial
    visited = set()  # trials whose cycle 0 this session has trained or read back
    for trial, spec in plan.run_order():  # al.order
        seed = plan.seed + 1000 * trial
        base = os.path.join(workdir, f"trial_{trial}")
        trial_txt = f"trial {trial} of 0-{plan.num_trials - 1}"  # as the logs and trial_<t>/
        if cycle0 is None or cycle0[0] != trial:
            # Trained once; with al.order = "strategy" a later strategy reads the finished
            # run back (its best checkpoint), as a resumed session does.
            labeled0 = durable.pool(
                os.path.join(base, "cycle_0", "pool.json"),
                lambda seed=seed: pool_lib.initial_labeled(n, plan.initial_fraction, seed),
                n,
            )
            t0 = time.time()
            result0 = train_cycle(
                os.path.join(base, "cycle_0"), labeled0, init, seed, sched.initial_steps,
                phase=f"{trial_txt} | cycle 0", planned=trial not in visited,
            )  # fmt: skip
            visited.add(trial)
            cycle0 = (trial, labeled0, result0, time.time() - t0)
        _, labeled0, result0, secs0 = cycle0
        record(trial, spec.name, 0, labeled0, result0, secs0, os.path.join(base, "cycle_0"))
        # A finished run of this trial that selects with the same identity (Table I's
        # ours_kl_loc = ours_js_loc: S_cls does not enter its score) is copied, then replayed.
        share.share_within(workdir, plan, trial, spec)
        labeled, result = labeled0, result0
        prev_dir = os.path.join(base, "cycle_0")
        for cycle in range(1, plan.num_cycles):
            t0 = time.time()
            cycle_dir = os.path.join(base, spec.name, f"cycle_{cycle}")
            result = weights_of(result, prev_dir, cycle_dir)
            if cycle == 1:  # read once per trial: the other strategies start from it too
                cycle0 = (trial, labeled0, result, secs0)
            phase = f"{trial_txt} | {spec.name} | cycle {cycle}/{plan.num_cycles - 1}"
            tracker.start(f"{phase} | select")
            labeled = cycle_lib.select_cycle(
                setup, plan, spec, trial=trial, cycle=cycle, cycle_dir=cycle_dir,
                labeled=labeled, variables=result.variables, budget=budgets[cycle - 1],
                key=jax.random.fold_in(jax.random.key(seed), cycle), progress=progress,
            )  # fmt: skip
            result = train_cycle(
                cycle_dir, labeled, result.variables, seed + cycle, sched.cycle_steps,
                ll4al=spec.base == "ll4al", phase=phase,
            )  # fmt: skip
            record(trial, spec.name, cycle, labeled, result, time.time() - t0, cycle_dir)
            prev_dir = cycle_dir
        # Readable while a long experiment runs: written after a strategy-trial this session
        # trained some of (a replayed one changes nothing), and at the end if it is behind.
        summary_behind = not trained
        if trained:
            write_summary()
            trained.clear()
    tracker.close()
    if summary_behind:  # replays since the last summary: a crash may have come before it
        write_summary()
    if jax.process_index() == 0:  # the summary of every record is written (above)
        section = diagnostics.summary_markdown(diagnostics.collect(workdir))
        if section:  # the score diagnostics of every selection, appended to the summary
            path = os.path.join(workdir, "summary.md")
            with open(path, encoding="utf-8") as f:
                text = f.read() + "\n" + section
            jsonio.write_file_atomic(path, lambda f: f.write(text))
    return results


def _mdsq(values: dict[str, float], ref: dict[str, float]) -> float:
    """mDSQ (paper Eq. 4) of evaluation ``values``, NaN when a reference value is not
    positive."""
    if not (ref["map"] > 0 and ref["miou"] > 0):
        return float("nan")
    return metrics.mdsq(values["map"], values["miou"], ref["map"], ref["miou"])


def reference_metrics(
    setup: setup_lib.Setup,
    plan: setup_lib.Plan,
    workdir: str,
    *,
    progress: bool = True,
    init_variables: dict | None = None,
    on_step=None,
) -> dict:
    """Full-data reference (mAP, mIoU) for mDSQ: from the plan, or a trained reference run
    in ``workdir/reference`` (resumed like any run, started from ``init_variables``;
    ``on_step`` is ``loop.train``'s per-step callback, the experiment's progress bar) whose
    ``wall.json`` it writes."""
    if plan.reference_map > 0 and plan.reference_miou > 0:
        return {"map": plan.reference_map, "miou": plan.reference_miou}
    if not plan.full_reference:
        raise ValueError("set al.reference_map and al.reference_miou, or al.full_reference=True")
    src = setup.dataset.sources
    cfg = setup_lib.run_config(setup, plan, num_steps=plan.schedule.reference_steps, seed=plan.seed)
    t0 = time.time()
    result = loop.train(
        setup.model, cfg, workdir=os.path.join(workdir, "reference"),
        spec=setup.spec, train_source=src[plan.train_split], train_indices=np.arange(setup.pool_size),
        eval_source=src[plan.eval_split], eval_indices=setup.eval_indices, mesh=setup.mesh,
        init_variables=init_variables, progress=progress, on_step=on_step, with_variables=False,
    )  # fmt: skip
    durable.write_wall_time(
        os.path.join(workdir, "reference"), time.time() - t0 + result.resumed_seconds
    )
    values = result.metrics
    log.info(
        "reference (100%% of the pool): %s",
        " ".join(f"{m.title} {values[m.name]:.4f}" for m in records.EVAL_METRICS),
    )
    if not (values["map"] > 0 and values["miou"] > 0):
        log.warning(
            "the reference run reached mAP %.4f / mIoU %.4f: mDSQ is undefined (NaN); train longer "
            "(train.reference_epochs) or set al.reference_map / al.reference_miou", values["map"], values["miou"],
        )  # fmt: skip
    return {"map": values["map"], "miou": values["miou"]}
