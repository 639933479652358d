"""The training loop (imperative shell): data, jitted steps, eval, checkpoints, logs.

Resume order (big_vision): (1) the latest checkpoint in ``workdir/train/latest``,
(2) ``init_variables`` (weights only, e.g. the previous AL cycle's best model),
(3) scratch, with the backbone from ``cfg.pretrained_backbone`` when set. The start step
is read from the restored state, and the batch of step ``s`` is a pure function of (data
seed, labeled indices, s), so a resumed run neither replays nor skips batches and ends
with the same parameters as an uninterrupted one.

Each latest checkpoint carries the run's training wall seconds so far (``seconds`` in its
metadata), so a resumed run's ``RunResult.resumed_seconds`` says what earlier sessions spent
on the state it resumed from (work after their last checkpoint, redone, is not counted).

A finished run (``train/final_eval.json`` and ``metrics.json`` written) is read back from
its best checkpoint; in an archived experiment (``al.experiment.archive``) its checkpoints
are gone and it is read back from ``metrics.json`` and, where they were kept, its best
weights (``weights_file``), without training again (``train.run_files``).

Divergence (``finite``): a NaN or infinite loss or gradient norm is recorded on device at
every step (no host sync) and read at log steps and before every checkpoint save, so the
run stops with ``finite.NonFiniteError`` and no checkpoint of a diverged model is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import tqdm

from mtal_jax import checkpointing, jsonio, metric_writer, records, runtime, sharding
from mtal_jax.data import pipeline
from mtal_jax.models import multitask, pretrained
from mtal_jax.train import config as config_lib
from mtal_jax.train import evaluate as evaluate_lib
from mtal_jax.train import finite, run_files, step_fns
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)


def _metric_of(result: records.EvalResult, name: str) -> float:
    if name == "mean_map_miou":
        return 0.5 * (result.metrics["map"] + result.metrics["miou"])
    return result.metrics[name]


def train(
    model: multitask.Model,
    cfg: config_lib.TrainConfig,
    *,
    workdir: str,
    spec: pipeline.Spec,
    train_source: Any,
    train_indices: Sequence[int],
    eval_source: Any,
    eval_indices: Sequence[int],
    mesh: jax.sharding.Mesh,
    init_variables: dict | None = None,
    stop_after_steps: int | None = None,
    progress: bool = True,
    fns: step_fns.StepFns | None = None,
    on_step: Callable[[int], None] | None = None,
    with_variables: bool = True,
) -> records.RunResult | None:
    """Trains ``model`` on ``train_source[train_indices]`` with resume and returns final metrics.

    Args:
      model: the network.
      cfg: schedule, losses, eval and checkpoint settings.
      workdir: run directory; checkpoints in ``train/latest`` and ``train/best``, logs in
        ``logs/``, final metrics in ``metrics.json``.
      spec: pipeline sizes and classes.
      train_source, train_indices: training data (the labeled pool).
      eval_source, eval_indices: evaluation data.
      mesh: device mesh; batches are sharded over ``data``.
      init_variables: weights to start from when ``workdir`` holds no checkpoint.
      stop_after_steps: stop (as if killed) after this many steps, without final eval; for
        tests of the resume path.
      progress: show progress bars.
      fns: jitted step functions from ``step_fns.build_step_fns`` (reused across runs with
        the same model and schedule, so AL cycles do not recompile); built when None.
      on_step: called with 1 after every training step (the experiment's progress bar).
      with_variables: whether a run that had already finished is returned with its best
        variables (read from its checkpoint); False reads only its metrics
        (``run_files.read_finished``), and ``variables`` is None. A run trained here always
        returns them.

    Returns:
      ``records.RunResult`` of the best checkpoint (its metrics, step, best-metric value
      and a host copy of its variables, None for a finished run read back with
      ``with_variables=False``; ``resumed_seconds`` from the latest checkpoint it resumed
      from); None when ``stop_after_steps`` stopped the run.
    """
    config_lib.check_single_process()
    config_lib.check_config(cfg, mesh, spec.num_seg_classes)
    finished = run_files.read_finished(workdir, model, cfg, spec, with_variables=with_variables)
    if finished is not None:  # nothing to train: read back (run_files.read_finished)
        return finished
    t_call = time.time()
    os.makedirs(workdir, exist_ok=True)
    fns = fns or step_fns.build_step_fns(model, cfg, spec)
    tx, train_step, eval_fn = fns.tx, fns.train_step, fns.eval_fn
    key = jax.random.key(cfg.seed)
    state = state_lib.create_train_state(model, tx, jax.random.fold_in(key, 0), spec.image_hw)
    resuming = run_files.has_checkpoint(workdir, "latest")  # its weights replace any start
    if init_variables is None and cfg.pretrained_backbone and not resuming:
        init_variables = pretrained.load_backbone(
            step_lib.variables_of(state), cfg.pretrained_backbone
        )
    if init_variables is not None:
        state = state.replace(
            params=init_variables["params"], batch_stats=init_variables["batch_stats"]
        )
    state = sharding.put_replicated(state, mesh)

    latest = checkpointing.make_manager(os.path.join(workdir, "train", "latest"), max_to_keep=1)
    best = checkpointing.make_manager(
        os.path.join(workdir, "train", "best"), max_to_keep=1, best_metric="metric", best_mode="max"
    )
    restored = checkpointing.restore_latest(latest, state)
    resumed_seconds = 0.0  # earlier sessions' training seconds, up to the restored checkpoint
    if restored is not None:
        state, latest_meta = restored
        resumed_seconds = float(latest_meta.get("seconds", 0.0))
        log.info("resumed %s at step %d", workdir, int(jax.device_get(state.step)))
    start = int(jax.device_get(state.step))
    done_marker = os.path.join(workdir, *run_files.FINAL_EVAL)
    if start < cfg.num_steps and os.path.exists(done_marker):
        # The final evaluation belongs to a final model this run does not have (an archive
        # of the run taken after the marker and before metrics.json, restored without
        # checkpoints; or a crash before the last latest checkpoint was committed): redone.
        os.remove(done_marker)
        log.info("%s: final evaluation marker without the final model: evaluated again", workdir)

    eval_indices = list(eval_indices)
    if cfg.eval_max_images:
        eval_indices = eval_indices[: cfg.eval_max_images]

    def guard() -> None:
        # Before anything is saved: no checkpoint of a diverged model (finite.py).
        finite.check(first_bad, where=workdir, hint=hint)
        finite.check_variables(step_lib.variables_of(state), where=f"{workdir} step {step}")

    def run_eval(step: int) -> dict:
        """Evaluates, logs and saves the best checkpoint; returns the JSON summary."""
        guard()
        result = evaluate_lib.evaluate(
            eval_fn,
            step_lib.variables_of(state),
            eval_source,
            eval_indices,
            spec,
            batch_size=cfg.eval_batch_size,
            mesh=mesh,
            progress=progress,
        )
        summary = _summary(result, _metric_of(result, cfg.best_metric), step)
        writer.write(step, {f"eval/{k}": summary[k] for k in (*result.metrics, "metric")})
        if step not in best.all_steps():  # a resumed run may repeat the eval of a saved step
            checkpointing.save(
                best, step, state, meta=summary, metrics={"metric": summary["metric"]}
            )
            if step == cfg.num_steps:  # finalize takes the best's variables from memory
                saved_final.append(state)
        return summary

    saved_final: list[state_lib.TrainState] = []  # the final state, once saved as the best
    writer = metric_writer.MetricWriter(os.path.join(workdir, "logs"), resume_step=start)
    data = pipeline.make_train_dataset(
        train_source,
        train_indices,
        spec,
        batch_size=cfg.batch_size,
        num_steps=cfg.num_steps,
        seed=cfg.seed,
        flip=cfg.flip,
    )
    end = cfg.num_steps if stop_after_steps is None else min(cfg.num_steps, stop_after_steps)
    bar = tqdm.tqdm(
        total=cfg.num_steps, initial=start, desc="train", disable=not progress, leave=False
    )
    # Hidden host-to-device copies fail loudly for the whole run (train steps, evals,
    # checkpoints): batches and the key are placed on the mesh explicitly.
    transfer_guard = contextlib.ExitStack()
    try:
        transfer_guard.enter_context(jax.transfer_guard_host_to_device("disallow"))
        step = start
        # The step takes a key for the uniform signature and ignores it (augmentation
        # happens on the host, a pure function of the data seed and the step).
        step_key = sharding.put_replicated(key, mesh)
        first_bad = sharding.put_replicated(np.int32(-1), mesh)  # finite.track, on device
        hint = f"Lower train.learning_rate (now {cfg.learning_rate:g})."
        t0 = time.time()
        for host in pipeline.iterate_train(data, start) if start < end else ():
            runtime.raise_pending_interrupt()  # a Ctrl-C lost where it was raised
            batch = sharding.put_batch(evaluate_lib.to_batch(host), mesh)
            state, terms = train_step(state, batch, step_key)
            first_bad = finite.track(first_bad, state.step, terms)
            step += 1
            bar.update(1)
            if on_step is not None:  # the experiment's progress bar (al.progress)
                on_step(1)
            if step % cfg.log_every_steps == 0 or step == end:
                terms, bad = jax.device_get((terms, first_bad))
                finite.check(bad, where=workdir, hint=hint)
                terms = {f"train/{k}": v for k, v in terms.items()}
                terms["train/steps_per_s"] = (step - start) / max(time.time() - t0, 1e-9)
                writer.write(step, terms)
                bar.set_postfix(loss=f"{terms['train/total']:.3f}")
            # Eval (and its best-checkpoint save) completes before the latest checkpoint of the
            # same step is written, so a crash during eval redoes it on resume.
            if step % cfg.eval_every_steps == 0 and step != cfg.num_steps:
                run_eval(step)
                checkpointing.wait(best)
            if step % cfg.checkpoint_every_steps == 0 or step == end:
                guard()
                seconds = resumed_seconds + time.time() - t_call
                checkpointing.save(latest, step, state, meta={"seconds": seconds})
            if step >= end:
                break
        if stop_after_steps is not None and end < cfg.num_steps:
            return None
        if not os.path.exists(done_marker):
            summary = run_eval(cfg.num_steps)
            checkpointing.wait(best)
            jsonio.write_atomic(done_marker, summary)
    finally:
        transfer_guard.close()
        bar.close()
        checkpointing.close(latest, best)
        writer.close()
    result = run_files.finalize(
        workdir, state, saved=(cfg.num_steps, saved_final[0]) if saved_final else None
    )
    return dataclasses.replace(result, resumed_seconds=resumed_seconds)


def _summary(result: records.EvalResult, metric: float, step: int) -> dict:
    """The JSON summary of an evaluation (checkpoint metadata, ``metrics.json``)."""
    return result.summary() | {"metric": float(metric), "step": int(step)}
