"""How each run of the experiment trains: its ``train.config.TrainConfig``, from the config.

``train_config`` unpacks the config's ``train``, ``loss``, ``eval`` and ``checkpoint``
sections into a ``train.config.TrainConfig``. A run's length sets its warm-up
(``warmup_steps``: at most a quarter of the run) and, in LL4AL's cycles, the step from
which the loss modules see detached features (``ll4al_detach_step``; docs/baselines.md,
"When the gradient reaches the backbone"). ``check_schedules`` refuses, before anything
is locked or prepared, the train / eval / score settings the devices cannot run;
``decode_kwargs`` are the detection decoding settings of scoring and evaluation. The step
counts of each kind of run come from passes over the pool (``al.schedule``); the
``TrainConfig`` of one run of a ``Plan`` is ``setup.run_config``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections

from mtal_jax import sharding
from mtal_jax.al import schedule as schedule_lib
from mtal_jax.train import config as config_lib


def train_config(
    config: ml_collections.ConfigDict,
    *,
    num_steps: int | None = None,
    seed: int | None = None,
    ll4al: bool = False,
) -> config_lib.TrainConfig:
    """``train.config.TrainConfig`` from the config sections (unpacked at the boundary).

    Args:
      config: the experiment config.
      num_steps: steps of the run (default ``config.train.steps``).
      seed: run seed (default ``config.seed``).
      ll4al: a cycle of the LL4AL strategy: the loss modules' gradient reaches the
        backbone until step round(``loss.ll4al_detach_fraction`` * steps), as in the
        reference (Mephisto405/Learning-Loss-for-Active-Learning detaches after epoch 120
        of 200). Otherwise the loss modules always see detached features, so they leave
        the network of every other strategy (and the shared cycle 0) unchanged.

    Raises:
      ValueError: ``loss.ll4al_detach_fraction`` outside [0, 1].
    """
    t, l, e, c = config.train, config.loss, config.eval, config.checkpoint
    steps = int(num_steps if num_steps is not None else t.steps)
    fraction = detach_fraction(config)
    return config_lib.TrainConfig(
        num_steps=steps,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        lr_warmup_steps=warmup_steps(int(t.lr_warmup_steps), steps),
        weight_decay=t.weight_decay,
        grad_clip_norm=t.grad_clip_norm,
        loss_weights={
            "det_heatmap": l.det_heatmap,
            "det_size": l.det_size,
            "det_offset": l.det_offset,
            "seg": l.seg,
        },
        seg_class_weights=tuple(float(w) for w in l.seg_class_weights),
        ll4al_weight=l.ll4al_weight,
        ll4al_margin=l.ll4al_margin,
        ll4al_detach_step=ll4al_detach_step(fraction, steps) if ll4al else 0,
        seed=int(config.seed if seed is None else seed),
        flip=config.data.flip,
        log_every_steps=t.log_every_steps,
        eval_every_steps=e.every_steps,
        eval_batch_size=e.batch_size,
        eval_max_images=0,  # Setup.eval_indices already applies config.eval.max_images
        checkpoint_every_steps=c.every_steps,
        best_metric=c.best_metric,
        max_detections=e.max_detections,
        score_threshold=e.score_threshold,
        pretrained_backbone=os.path.expanduser(config.model.pretrained_backbone),
    )


def detach_fraction(config: ml_collections.ConfigDict) -> float:
    """``config.loss.ll4al_detach_fraction``: the share of an LL4AL cycle during which the
    loss modules' gradient reaches the backbone (``Plan.ll4al_detach_fraction``).

    Raises:
      ValueError: outside [0, 1].
    """
    fraction = float(config.loss.ll4al_detach_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"config.loss.ll4al_detach_fraction must lie in [0, 1], got {fraction}")
    return fraction


def ll4al_detach_step(fraction: float, num_steps: int) -> int:
    """The step after which an LL4AL cycle's loss modules see detached features."""
    return round(fraction * num_steps)


def warmup_steps(configured: int, num_steps: int) -> int:
    """The warm-up of a run: at most a quarter of it, so short continuous-training cycles
    still decay."""
    return min(configured, max(num_steps // 4, 1))


def check_schedules(
    config: ml_collections.ConfigDict,
    mesh: jax.sharding.Mesh,
    *,
    needs_loss_prediction: bool = False,
) -> None:
    """Raises ``ValueError`` for train / eval / score settings the devices cannot run: those
    of ``train.config.check_config``, an input size that is not two multiples of 32, an odd batch
    with the LL4AL loss modules (their ranking loss pairs the batch's images) and a score
    batch that is not a multiple of the devices, a negative step count or number of passes,
    an evaluation split that is the training split (the pool), and more cycles than the
    pool holds (a cycle that would select nothing and train again)."""
    # before anything is locked or prepared (schedule.resolve checks the same later)
    schedule_lib.check_nonnegative(
        {k: config.train.get(k, 0) or 0 for k in schedule_lib.SCHEDULE_KEYS}
    )
    if config.data.train_split == config.data.eval_split:
        raise ValueError(
            f"data.eval_split = data.train_split = {config.data.train_split!r}: the pool would "
            "be evaluated on itself; give a held-out split"
        )
    a = config.al
    last = float(a.initial_fraction) + (int(a.num_cycles) - 1) * float(a.budget_fraction)
    if not 0 < float(a.initial_fraction) <= 1 or float(a.budget_fraction) <= 0:
        raise ValueError(
            f"al.initial_fraction must be in (0, 1] and al.budget_fraction > 0, got "
            f"{a.initial_fraction} and {a.budget_fraction}"
        )
    if int(a.num_cycles) < 1 or last > 1 + 1e-9:
        raise ValueError(
            f"al.num_cycles={a.num_cycles} (cycle 0 included) with al.initial_fraction="
            f"{a.initial_fraction} and al.budget_fraction={a.budget_fraction} would label "
            f"{100 * last:.0f} % of the pool: a cycle past 100 % selects nothing and trains "
            "again; lower num_cycles or the fractions"
        )
    config_lib.check_config(train_config(config), mesh)
    size = config.data.image_size
    if (
        isinstance(size, (str, bytes))
        or not hasattr(size, "__len__")
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        or any(v % 32 for v in size)
    ):
        raise ValueError(
            f"data.image_size must be (height, width), two positive multiples of 32 "
            f"(the backbone's stride), got {size!r}"
        )
    if (config.model.loss_prediction or needs_loss_prediction) and config.train.batch_size % 2:
        raise ValueError(
            f"train.batch_size={config.train.batch_size}: the LL4AL loss modules (model."
            "loss_prediction, or an ll4al strategy) pair the images of a batch: use an even size"
        )
    n_dev = sharding.num_shards(mesh)
    if config.al.score_batch_size % n_dev:
        raise ValueError(
            f"al.score_batch_size={config.al.score_batch_size} is not a multiple of the {n_dev} "
            "devices"
        )


def decode_kwargs(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Detection decoding settings of scoring and evaluation (``decode.decode`` keywords)."""
    return {
        "max_detections": config.eval.max_detections,
        "score_threshold": config.eval.score_threshold,
    }
