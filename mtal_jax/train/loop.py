"""The training loop (imperative shell): data, jitted steps, eval, checkpoints, logs.

Resume order (big_vision): (1) the latest checkpoint in ``workdir/train/latest``,
(2) ``init_variables`` (weights only, e.g. the previous AL cycle's best model),
(3) scratch, with the backbone from ``cfg.pretrained_backbone`` when set. The start step is read from the restored state, and the batch of step ``s``
is a pure function of (data seed, labeled indices, s), so a resumed run neither replays
nor skips batches and ends with the same parameters as an uninterrupted one.

Each latest checkpoint carries the run's training wall seconds so far (``seconds`` in its
metadata), so a resumed run's ``RunResult.resumed_seconds`` says what earlier sessions spent
on the state it resumed from (work after their last checkpoint, redone, is not counted).

A finished run (``train/final_eval.json`` and ``metrics.json`` written) is read back from
its best checkpoint; in an archived experiment (``al.experiment.archive``) its checkpoints
are gone and it is read back from ``metrics.json`` and, where they were kept, its best
weights (``weights_file``), without training again.

Divergence (``finite``): a NaN or infinite loss or gradient norm is recorded on device at
every step (no host sync) and read at log steps and before every checkpoint save, so the
run stops with ``finite.NonFiniteError`` and no checkpoint of a diverged model is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import tqdm

from mtal_jax import checkpointing, jsonio, losses, metric_writer, records, sharding
from mtal_jax.data import pipeline
from mtal_jax.models import multitask, pretrained
from mtal_jax.train import evaluate as evaluate_lib
from mtal_jax.train import finite, weights_file
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)

BEST_METRICS = (*records.metric_names(), "mean_map_miou")
FINAL_EVAL = ("train", "final_eval.json")  # written once the run's last evaluation is done


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides model and data (unpacked from the config).

    Attributes mirror ``config.train`` / ``config.checkpoint`` / ``config.eval``.
    """

    num_steps: int
    batch_size: int
    learning_rate: float = 1e-3
    lr_warmup_steps: int = 100
    weight_decay: float = 1e-4
    grad_clip_norm: float = 10.0
    loss_weights: dict = dataclasses.field(
        default_factory=lambda: {"det_heatmap": 1.0, "det_size": 0.1, "det_offset": 1.0, "seg": 1.0}
    )
    seg_class_weights: tuple = ()  # [C_seg] weights of the segmentation loss; () = none
    ll4al_weight: float = 1.0
    ll4al_margin: float = 1.0
    ll4al_detach_step: int = 0
    seed: int = 0
    flip: bool = True
    log_every_steps: int = 50
    eval_every_steps: int = 500
    eval_batch_size: int = 16
    eval_max_images: int = 0  # 0 = the whole eval split
    checkpoint_every_steps: int = 200
    best_metric: str = "mean_map_miou"
    max_detections: int = 50
    score_threshold: float = 0.05
    pretrained_backbone: str = ""  # local .npz of converted backbone weights (models.pretrained)


@dataclasses.dataclass(frozen=True)
class StepFns:
    """Jitted functions of one (model, schedule) pair: reuse them to avoid recompiling."""

    tx: Any
    train_step: Any
    eval_fn: Any


def build_step_fns(model: multitask.Model, cfg: TrainConfig, spec: pipeline.Spec) -> StepFns:
    """Optimizer plus jitted train and eval steps for ``cfg`` (seed-independent)."""
    tx = state_lib.create_optimizer(
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.lr_warmup_steps,
        total_steps=cfg.num_steps,
        weight_decay=cfg.weight_decay,
        grad_clip_norm=cfg.grad_clip_norm,
    )
    train_step = jax.jit(
        step_lib.make_train_step(
            model,
            tx,
            dict(cfg.loss_weights),
            ll4al_weight=cfg.ll4al_weight,
            ll4al_margin=cfg.ll4al_margin,
            ll4al_detach_step=cfg.ll4al_detach_step,
            seg_class_weights=tuple(cfg.seg_class_weights),
        ),
        donate_argnums=0,
    )
    decode_kwargs = {"max_detections": cfg.max_detections, "score_threshold": cfg.score_threshold}
    eval_fn = jax.jit(
        step_lib.make_eval_step(
            model,
            num_seg_classes=spec.num_seg_classes,
            decode_kwargs=decode_kwargs,
            loss_weights=dict(cfg.loss_weights),
            seg_class_weights=tuple(cfg.seg_class_weights),
        )
    )
    return StepFns(tx=tx, train_step=train_step, eval_fn=eval_fn)


def _metric_of(result: records.EvalResult, name: str) -> float:
    if name == "mean_map_miou":
        return 0.5 * (result.metrics["map"] + result.metrics["miou"])
    return result.metrics[name]


def check_single_process() -> None:
    """Raises ``ValueError`` in a multi-process run: training and evaluation feed each
    process the whole global batch (only pool scoring, ``al.scoring``, splits batches
    across processes), so they would train on and count every image once per process."""
    if jax.process_count() > 1:
        raise ValueError(
            f"training runs in one process, this is process {jax.process_index()} of "
            f"{jax.process_count()} (config.mesh.num_processes): its input pipeline and "
            "evaluation do not split batches across processes yet; use one process with "
            "all its local devices (multi-process scoring: al.scoring.score_pool)"
        )


def check_config(
    cfg: TrainConfig, mesh: jax.sharding.Mesh, num_seg_classes: int | None = None
) -> None:
    """Raises ``ValueError`` for settings ``train`` cannot run (checked before any file is
    written): an unknown ``best_metric``, batch sizes below 1 or not multiples of the
    devices, intervals below 1, a learning rate, clip norm, weight decay or loss weight out
    of range (a clip norm of 0 stops learning and a negative one ascends, with finite losses
    the divergence guard never sees), detection settings out of range, segmentation class
    weights that do not fit the ``num_seg_classes`` classes (when given)."""

    def number(name: str, value: Any, ok: Callable[[float], bool], want: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):  # a ValueError:
            # input_checks turns it into one line
            raise ValueError(f"{name} must be a number ({want}), got {value!r}")  # noqa: TRY004
        if not (math.isfinite(value) and ok(value)):
            raise ValueError(f"{name} must be {want}, got {value}")

    for name, value in (
        ("train.batch_size", cfg.batch_size), ("eval.batch_size", cfg.eval_batch_size),
        ("train.log_every_steps", cfg.log_every_steps),
        ("eval.every_steps", cfg.eval_every_steps),
        ("checkpoint.every_steps", cfg.checkpoint_every_steps),
        ("eval.max_detections", cfg.max_detections),
    ):  # fmt: skip
        number(name, value, lambda v: v >= 1 and v == int(v), "a whole number >= 1")
    number("train.learning_rate", cfg.learning_rate, lambda v: v > 0, "> 0")
    number("train.grad_clip_norm", cfg.grad_clip_norm, lambda v: v > 0, "> 0")
    number("train.weight_decay", cfg.weight_decay, lambda v: v >= 0, ">= 0")
    number("train.lr_warmup_steps", cfg.lr_warmup_steps, lambda v: v >= 0, ">= 0")
    number("eval.max_images", cfg.eval_max_images, lambda v: v >= 0, ">= 0 (0: all)")
    number("eval.score_threshold", cfg.score_threshold, lambda v: 0 <= v < 1, "in [0, 1)")
    number("loss.ll4al_weight", cfg.ll4al_weight, lambda v: v >= 0, ">= 0")
    number("loss.ll4al_margin", cfg.ll4al_margin, lambda v: v >= 0, ">= 0")
    for key, value in dict(cfg.loss_weights).items():
        number(f"loss.{key}", value, lambda v: v >= 0, ">= 0")
    if num_seg_classes is not None:
        losses.check_class_weights(
            cfg.seg_class_weights, num_seg_classes, name="loss.seg_class_weights"
        )
    if cfg.best_metric not in BEST_METRICS:
        raise ValueError(f"best_metric must be one of {BEST_METRICS}, got {cfg.best_metric!r}")
    n_dev = sharding.num_shards(mesh)
    for name, b in (("batch_size", cfg.batch_size), ("eval_batch_size", cfg.eval_batch_size)):
        if b % n_dev:
            raise ValueError(f"train {name}={b} is not a multiple of the {n_dev} devices")


def train(
    model: multitask.Model,
    cfg: TrainConfig,
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
    fns: StepFns | None = None,
    on_step: Callable[[int], None] | None = None,
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
      fns: jitted step functions from ``build_step_fns`` (reused across runs with the same
        model and schedule, so AL cycles do not recompile); built when None.
      on_step: called with 1 after every training step (the experiment's progress bar).

    Returns:
      ``records.RunResult`` of the best checkpoint (its metrics, step, best-metric value
      and a host copy of its variables; ``resumed_seconds`` from the latest checkpoint it
      resumed from); None when ``stop_after_steps`` stopped the run.
    """
    check_single_process()
    check_config(cfg, mesh, spec.num_seg_classes)
    if is_finished(workdir) and not has_checkpoint(workdir, "best"):
        return read_archived(workdir, model, spec)
    t_call = time.time()
    os.makedirs(workdir, exist_ok=True)
    fns = fns or build_step_fns(model, cfg, spec)
    tx, train_step, eval_fn = fns.tx, fns.train_step, fns.eval_fn
    key = jax.random.key(cfg.seed)
    state = state_lib.create_train_state(model, tx, jax.random.fold_in(key, 0), spec.image_hw)
    if init_variables is None and cfg.pretrained_backbone:
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
    done_marker = os.path.join(workdir, *FINAL_EVAL)
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
        return summary

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
    return dataclasses.replace(finalize(workdir, state), resumed_seconds=resumed_seconds)


def _summary(result: records.EvalResult, metric: float, step: int) -> dict:
    """The JSON summary of an evaluation (checkpoint metadata, ``metrics.json``)."""
    return result.summary() | {"metric": float(metric), "step": int(step)}


def finalize(workdir: str, like_state: state_lib.TrainState) -> records.RunResult:
    """Reads the best checkpoint of ``workdir``, writes its summary to ``metrics.json`` and
    returns it with the best ``variables`` (host numpy)."""
    best = checkpointing.make_manager(
        os.path.join(workdir, "train", "best"), max_to_keep=1, best_metric="metric", best_mode="max"
    )
    try:
        restored = checkpointing.restore_best(best, like_state)
    finally:
        checkpointing.close(best)
    if restored is None:
        raise RuntimeError(f"{workdir} holds no best checkpoint")
    state, meta = restored
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


def read_archived(run_dir: str, model: multitask.Model, spec: pipeline.Spec) -> records.RunResult:
    """A finished run without checkpoints (archived): its ``metrics.json`` and, when kept, the
    variables of its ``weights.npz`` (else ``variables`` is None).

    Raises:
      ValueError: the weights do not match ``model`` (naming the file).
    """
    meta = jsonio.read(os.path.join(run_dir, "metrics.json"))
    path = os.path.join(run_dir, weights_file.FILENAME)
    variables = _read_weights_file(path, model, spec) if os.path.exists(path) else None
    log.info("%s: finished (archived%s)", run_dir, ", weights kept" if variables else "")
    return records.RunResult.from_summary(meta, variables, source=run_dir)


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
    path: str, model: multitask.Model, cfg: TrainConfig, spec: pipeline.Spec
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
    try:
        step = manager.best_step() if manager.best_step() is not None else manager.latest_step()
        differ = checkpointing.mismatches(manager, step, like)  # from metadata, before any read
        state = None if differ else checkpointing.restore(manager, step, like)[0]
    except Exception as e:  # orbax raises many types for what its metadata did not show
        raise ValueError(f"{what}: {type(e).__name__}: {str(e)[:300]}") from e
    finally:
        checkpointing.close(manager)
    if differ:
        shown = "; ".join(differ[:3]) + ("; ..." if len(differ) > 3 else "")
        raise ValueError(f"{what}: {len(differ)} array(s) differ: {shown}")
    variables = jax.device_get(step_lib.variables_of(state))
    finite.check_variables(variables, where=f"checkpoint {directory} (step {step})")
    return variables
