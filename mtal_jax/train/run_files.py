"""A training run's files read back: finish markers, checkpoints, metrics and weights.

A run directory holds ``train/latest`` and ``train/best`` (orbax managers), ``logs/``,
``train/final_eval.json`` (``FINAL_EVAL``, written once the run's last evaluation is done)
and ``metrics.json`` (the best checkpoint's summary, written by ``finalize``); the run is
finished when both of the last two exist (``is_finished``).

A finished run is read back from its best checkpoint; in an archived experiment
(``al.experiment.archive``) its checkpoints are gone and it is read back from
``metrics.json`` and, where they were kept, its best weights (``train.weights_file``),
without training again (``read_archived``). ``load_variables`` gives the weights of a run
to start from or to score with (``config.checkpoint.init_from``, ``select.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import jax

from mtal_jax import checkpointing, jsonio, records
from mtal_jax.data import pipeline
from mtal_jax.models import multitask
from mtal_jax.train import config as config_lib
from mtal_jax.train import finite, weights_file
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)

FINAL_EVAL = ("train", "final_eval.json")  # written once the run's last evaluation is done


def finalize(
    workdir: str,
    like_state: state_lib.TrainState,
    *,
    saved: tuple[int, state_lib.TrainState] | None = None,
) -> records.RunResult:
    """Reads the best checkpoint of ``workdir``, writes its summary to ``metrics.json`` and
    returns it with the best ``variables`` (host numpy).

    Args:
      workdir: the run directory.
      like_state: the structure and shardings the best state is restored into.
      saved: ``(step, state)``: the state this process saved as the best checkpoint of
        ``step`` (the loop's final evaluation). When ``step`` is still the best, its
        variables are those of ``state`` (the arrays the checkpoint was written from, the
        same bits) and only the checkpoint's JSON summary is read: a run whose last
        evaluation is its best does not read its weights back.
    """
    best = checkpointing.make_manager(
        os.path.join(workdir, "train", "best"), max_to_keep=1, best_metric="metric", best_mode="max"
    )
    try:
        step = best.best_step()
        if step is None:
            raise RuntimeError(f"{workdir} holds no best checkpoint")
        if saved is not None and saved[0] == step:
            state, meta = saved[1], checkpointing.read_meta(best, step)
        else:
            state, meta = checkpointing.restore(best, step, like_state)
    finally:
        checkpointing.close(best)
    finite.check_variables(step_lib.variables_of(state), where=f"{workdir}/train/best")
    jsonio.write_atomic(os.path.join(workdir, "metrics.json"), meta)
    return records.RunResult.from_summary(
        meta, jax.device_get(step_lib.variables_of(state)), source=workdir
    )


def is_finished(run_dir: str) -> bool:
    """Whether the training run in ``run_dir`` has finished (final evaluation and
    ``metrics.json`` written)."""
    return os.path.exists(os.path.join(run_dir, *FINAL_EVAL)) and os.path.exists(
        os.path.join(run_dir, "metrics.json")
    )


def has_checkpoint(run_dir: str, kind: str) -> bool:
    """Whether ``run_dir/train/<kind>`` (``latest`` or ``best``) holds a checkpoint."""
    directory = os.path.join(run_dir, "train", kind)
    return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))


def read_archived(
    run_dir: str, model: multitask.Model, spec: pipeline.Spec, *, with_variables: bool = True
) -> records.RunResult:
    """A finished run without checkpoints (archived): its ``metrics.json`` and, when kept and
    ``with_variables``, the variables of its ``weights.npz`` (else ``variables`` is None).

    Raises:
      ValueError: the weights do not match ``model`` (naming the file).
    """
    meta = jsonio.read(os.path.join(run_dir, "metrics.json"))
    path = os.path.join(run_dir, weights_file.FILENAME)
    kept = os.path.exists(path)
    variables = _read_weights_file(path, model, spec) if kept and with_variables else None
    log.info("%s: finished (archived%s)", run_dir, ", weights kept" if kept else "")
    return records.RunResult.from_summary(meta, variables, source=run_dir)


def read_finished(
    run_dir: str,
    model: multitask.Model,
    cfg: config_lib.TrainConfig,
    spec: pipeline.Spec,
    *,
    with_variables: bool = True,
) -> records.RunResult | None:
    """A run that finished its ``cfg.num_steps`` steps, read back without training again.

    Its ``metrics.json`` (the best checkpoint's summary), the training seconds recorded with
    its latest checkpoint (``RunResult.resumed_seconds``; 0 for an archived run) and, when
    ``with_variables``, its best weights (``load_variables``; an archived run's
    ``weights.npz`` where kept). Without them nothing but small JSON files is read: a
    resumed experiment replays its finished runs in milliseconds each and loads the weights
    of a run only when the next run still needs them (``al.experiment.protocol``).

    Returns:
      None when the run has not finished (no ``metrics.json`` and final-evaluation marker),
      or when its latest checkpoint is older than ``cfg.num_steps`` (a longer schedule: the
      run trains on).

    Raises:
      ValueError, FileNotFoundError, finite.NonFiniteError: as ``load_variables``.
    """
    if not is_finished(run_dir):
        return None
    if not has_checkpoint(run_dir, "best"):
        return read_archived(run_dir, model, spec, with_variables=with_variables)
    latest = os.path.join(run_dir, "train", "latest")
    steps = [int(d) for d in os.listdir(latest) if d.isdigit()] if os.path.isdir(latest) else []
    if not steps or max(steps) < cfg.num_steps:
        return None
    manager = checkpointing.make_manager(latest, read_only=True)
    try:
        seconds = float(checkpointing.read_meta(manager, max(steps)).get("seconds", 0.0))
    finally:
        checkpointing.close(manager)
    variables = load_variables(run_dir, model, cfg, spec) if with_variables else None
    summary = jsonio.read(os.path.join(run_dir, "metrics.json"))
    result = records.RunResult.from_summary(summary, variables, source=run_dir)
    log.info("%s: finished at step %d, read back", run_dir, max(steps))
    return dataclasses.replace(result, resumed_seconds=seconds)


def _read_weights_file(path: str, model: multitask.Model, spec: pipeline.Spec) -> dict:
    """``weights_file.load`` checked against ``model``'s variables and for finite values."""
    like = jax.eval_shape(
        lambda: multitask.create_variables(model, jax.random.key(0), spec.image_hw)
    )
    variables = weights_file.load(path, like=like)
    finite.check_variables(variables, where=path)
    return variables


def check_weights(path: str) -> None:
    """Raises ``FileNotFoundError`` when ``load_variables(path, ...)`` would find no weights
    (fails fast, before anything is built)."""
    if not os.path.exists(os.path.join(path, weights_file.FILENAME)):
        checkpoint_dir(path)


def checkpoint_dir(path: str) -> str:
    """The orbax manager directory of a run dir, its ``train`` dir or a manager dir.

    Raises:
      FileNotFoundError: no checkpoint there.
    """
    for cand in (os.path.join(path, "train", "best"), os.path.join(path, "best"), path):
        if os.path.isdir(cand) and any(d.isdigit() for d in os.listdir(cand)):
            return cand
    hint = ""
    if os.path.exists(os.path.join(path, "metrics.json")):  # a finished run without weights
        hint = (
            ": it holds a finished run's metrics but not its weights, as a run restored from "
            "an archive does unless the archive kept them (archive_cli save --keep; "
            "experiments/continue.sh keeps the references and cycle-0 models)"
        )
    raise FileNotFoundError(
        f"no checkpoint found in {path} (expected <run>/train/best/<step>, or the "
        f"{weights_file.FILENAME} of an archived run){hint}"
    )


def load_variables(
    path: str, model: multitask.Model, cfg: config_lib.TrainConfig, spec: pipeline.Spec
) -> dict:
    """The model variables of the best (else latest) checkpoint of run ``path`` (host numpy),
    or of its ``weights.npz`` (an archived run).

    Args:
      path: a run directory, its ``train`` directory or a manager directory.
      model: the network the checkpoint must match.
      cfg: training settings (the optimizer's structure is part of the checkpoint).
      spec: input size and classes.

    Raises:
      FileNotFoundError: no checkpoint in ``path``.
      ValueError: the checkpoint does not match the model (other classes, backbone...).
      finite.NonFiniteError: the checkpoint's parameters are not finite (a diverged run).
    """
    archived = os.path.join(path, weights_file.FILENAME)
    if os.path.exists(archived) and not has_checkpoint(path, "best"):
        return _read_weights_file(archived, model, spec)
    directory = checkpoint_dir(path)
    tx = state_lib.create_optimizer(
        learning_rate=cfg.learning_rate, warmup_steps=cfg.lr_warmup_steps, total_steps=cfg.num_steps,
        weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm,
    )  # fmt: skip
    like = jax.eval_shape(
        lambda: state_lib.create_train_state(model, tx, jax.random.key(0), spec.image_hw)
    )
    manager = checkpointing.make_manager(directory, best_metric="metric", read_only=True)
    what = (
        f"checkpoint {directory} does not match the model of the config (backbone "
        f"{model.backbone!r}, "
        f"{spec.num_det_classes} detection / {spec.num_seg_classes} segmentation classes)"
    )
    step, differ = None, None
    try:
        step = manager.best_step() if manager.best_step() is not None else manager.latest_step()
        differ = checkpointing.mismatches(manager, step, like)  # from metadata, before any read
        state = None if differ else checkpointing.restore(manager, step, like)[0]
    except Exception as e:  # orbax raises many types, for damaged files as for other models
        cause = f"{type(e).__name__}: {str(e)[:300]}"
        if step is not None and differ is None:  # its metadata could not be read
            raise ValueError(
                f"checkpoint {directory} (step {step}) cannot be read: its files are damaged "
                "or incomplete (e.g. a copy that did not finish); train the run again or use "
                f"another checkpoint ({cause})"
            ) from e
        raise ValueError(  # the metadata fitted, the arrays did not restore
            f"{what}, or its files are damaged: {cause}"
        ) from e
    finally:
        checkpointing.close(manager)
    if differ:
        shown = "; ".join(differ[:3]) + ("; ..." if len(differ) > 3 else "")
        raise ValueError(f"{what}: {len(differ)} array(s) differ: {shown}")
    variables = jax.device_get(step_lib.variables_of(state))
    finite.check_variables(variables, where=f"checkpoint {directory} (step {step})")
    return variables
