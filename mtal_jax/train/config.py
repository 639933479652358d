"""The configuration of one training run and the rules it must satisfy.

``TrainConfig`` holds everything ``train.loop.train`` needs besides model and data, unpacked
from the experiment config at the shell boundary (``al.experiment.training.train_config``), so no
``ConfigDict`` reaches the loop. ``check_config`` refuses settings the loop cannot run before
any file is written, and ``check_single_process`` refuses a multi-process run (only pool
scoring splits batches across processes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax

from mtal_jax import losses, records, sharding

BEST_METRICS = (*records.metric_names(), "mean_map_miou")


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
