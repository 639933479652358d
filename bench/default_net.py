"""The default experiment's network, optimizer and training step, for the benchmarks.

``configs/default.py`` sizes (tiny backbone, 64-channel neck and heads, LL4AL modules on,
96x192 inputs, batch 16, 32 box slots) on a fixed batch of rendered synthetic street
scenes, so that every training-step benchmark times the network the experiments train.
Import after JAX's flags are set (this module imports JAX).
"""

from __future__ import annotations

import numpy as np

from configs import default as default_config
from mtal_jax import structs
from mtal_jax.al import experiment
from mtal_jax.data import synthetic_classes, synthetic_scene
from mtal_jax.models import multitask
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib


def config():
    """``configs/default.py``'s ConfigDict."""
    return default_config.get_config()


def scene_batch(
    batch: int, image_hw: tuple[int, int], max_boxes: int, seed: int = 0
) -> structs.Batch:
    """A host batch of rendered synthetic scenes (real boxes, labels and masks).

    Returns:
      ``structs.Batch`` of NumPy arrays: images [B, H, W, 3] uint8, boxes [B, M, 4],
      box_labels / box_valid [B, M], seg_labels [B, H, W] int32, valid [B], index [B].
    """
    h, w = image_hw
    images = np.zeros((batch, h, w, 3), np.uint8)
    seg = np.zeros((batch, h, w), np.int32)
    boxes = np.zeros((batch, max_boxes, 4), np.float32)
    labels = np.zeros((batch, max_boxes), np.int32)
    box_valid = np.zeros((batch, max_boxes), bool)
    for i in range(batch):
        s = synthetic_scene.render_scene(seed * 100_003 + i, h, w)
        m = min(len(s["boxes"]), max_boxes)
        images[i], seg[i] = s["image"], s["segmentation"]
        boxes[i, :m], labels[i, :m], box_valid[i, :m] = s["boxes"][:m], s["box_labels"][:m], True
    return structs.Batch(
        images=images, boxes=boxes, box_labels=labels, box_valid=box_valid, seg_labels=seg,
        valid=np.ones(batch, bool), index=np.arange(batch, dtype=np.int32),
    )  # fmt: skip


def build(cfg=None, *, total_steps: int = 1000):
    """The default model, optimizer, un-jitted train step and the train config.

    Returns:
      (model, tx, train_step, train_cfg): ``train_step(state, batch, key)``.
    """
    cfg = cfg or config()
    model = multitask.Model(
        num_det_classes=len(synthetic_classes.DET_CLASSES),
        num_seg_classes=len(synthetic_classes.SEG_CLASSES),
        backbone=cfg.model.backbone,
        neck_channels=cfg.model.neck_channels,
        head_channels=cfg.model.head_channels,
        loss_prediction=bool(cfg.model.loss_prediction),
    )
    tc = experiment.train_config(cfg, num_steps=total_steps)
    tx = state_lib.create_optimizer(
        learning_rate=tc.learning_rate,
        warmup_steps=tc.lr_warmup_steps,
        total_steps=total_steps,
        weight_decay=tc.weight_decay,
        grad_clip_norm=tc.grad_clip_norm,
    )
    step = step_lib.make_train_step(
        model,
        tx,
        tc.loss_weights,
        ll4al_weight=tc.ll4al_weight,
        ll4al_margin=tc.ll4al_margin,
        ll4al_detach_step=tc.ll4al_detach_step,
    )
    return model, tx, step, tc
