"""The jitted step functions of one (model, schedule) pair, built once and reused.

``build_step_fns`` makes the optimizer (``train.state.create_optimizer``) and jits the
train step (state donated) and the eval step of ``train.step``. They do not depend on the
seed, so the AL experiment builds them once per schedule and passes them to every run of
``train.loop.train`` with that schedule: AL cycles do not recompile.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from mtal_jax.data import pipeline
from mtal_jax.models import multitask
from mtal_jax.train import config as config_lib
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib


@dataclasses.dataclass(frozen=True)
class StepFns:
    """Jitted functions of one (model, schedule) pair: reuse them to avoid recompiling."""

    tx: Any
    train_step: Any
    eval_fn: Any


def build_step_fns(
    model: multitask.Model, cfg: config_lib.TrainConfig, spec: pipeline.Spec
) -> StepFns:
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
