"""The jitted step functions of one (model, schedule) pair, built once and reused.

``build_step_fns`` makes the optimizer (``train.state.create_optimizer``) and jits the
train step (state donated) and the eval step of ``train.step``. They do not depend on the
seed, so the AL experiment builds them once per schedule and passes them to every run of
``train.loop.train`` with that schedule: AL cycles do not recompile. The functions are also
kept for the life of the process (the last ``CACHE_SIZE`` built), keyed by the model, the
settings they are built from (``_settings``) and the number of segmentation classes: a
second experiment in one process (a test module, a notebook, ``sim2real``'s two phases)
neither traces nor compiles them again.
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


CACHE_SIZE = 8
"""Step functions kept per process (``build_step_fns``); each holds its compiled programs."""

_cache: dict[tuple, StepFns] = {}  # insertion order: the oldest is dropped first


def _settings(cfg: config_lib.TrainConfig) -> tuple:
    """The fields of ``cfg`` the step functions are built from (not the seed, the logging,
    evaluation or checkpoint cadence), hashable."""
    return (
        cfg.learning_rate, cfg.lr_warmup_steps, cfg.num_steps, cfg.weight_decay,
        cfg.grad_clip_norm, tuple(sorted(dict(cfg.loss_weights).items())), cfg.ll4al_weight,
        cfg.ll4al_margin, cfg.ll4al_detach_step, tuple(cfg.seg_class_weights),
        cfg.max_detections, cfg.score_threshold,
    )  # fmt: skip


def build_step_fns(
    model: multitask.Model, cfg: config_lib.TrainConfig, spec: pipeline.Spec
) -> StepFns:
    """Optimizer plus jitted train and eval steps for ``cfg`` (seed-independent); the same
    ``StepFns`` for the same model, settings and classes within a process (module docstring).
    """
    key = (model, spec.num_seg_classes, _settings(cfg))
    try:
        fns = _cache.get(key)
    except TypeError:  # a model with an unhashable field: built every time
        return _build(model, cfg, spec)
    if fns is None:
        fns = _cache[key] = _build(model, cfg, spec)
        while len(_cache) > CACHE_SIZE:
            del _cache[next(iter(_cache))]
    return fns


def _build(model: multitask.Model, cfg: config_lib.TrainConfig, spec: pipeline.Spec) -> StepFns:
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
