"""Pure step functions built by factories (docs/design.md §7): train, eval and pool prediction.

The model, the optax transform and the loss weights are closed over; the returned
functions take and return plain pytrees and are jitted by the shell over the mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mtal_jax import decode, losses, metrics, strategy_types, structs
from mtal_jax.models import loss_heads, multitask
from mtal_jax.train import state as state_lib

# Per-image task losses used as LL4AL targets and in the correlation analysis (Fig. 6).
DET_CLS_TERMS = ("det_heatmap",)
DET_LOC_TERMS = ("det_size", "det_offset")


def variables_of(state: state_lib.TrainState) -> dict:
    """The ``model.apply`` variables of a train state."""
    return {"params": state.params, "batch_stats": state.batch_stats}


def task_losses(per_example: dict[str, jax.Array], weights: dict[str, float]) -> jax.Array:
    """Per-image (detection, segmentation) losses: [B, 2] float32 (weighted like training)."""
    det = sum(weights.get(k, 0.0) * per_example[k] for k in DET_CLS_TERMS + DET_LOC_TERMS)
    return jnp.stack([det, weights.get("seg", 1.0) * per_example["seg"]], -1)


def make_train_step(
    model: multitask.Model,
    tx: optax.GradientTransformation,
    loss_weights: dict[str, float],
    *,
    ll4al_weight: float = 1.0,
    ll4al_margin: float = 1.0,
    ll4al_detach_step: int = 0,
    seg_class_weights: tuple[float, ...] = (),
) -> Callable[[state_lib.TrainState, structs.Batch, jax.Array], tuple[state_lib.TrainState, dict]]:
    """Builds ``train_step(state, batch, key) -> (state, metrics)``.

    Args:
      model: the multi-task network.
      tx: optimizer.
      loss_weights: weight of each term of ``losses.per_example_losses``.
      ll4al_weight: lambda of the LL4AL loss-prediction loss (models with loss prediction).
      ll4al_margin: xi of the ranking loss.
      ll4al_detach_step: from this step on (``state.step`` counts from 0 in every run) the
        loss modules see detached features; 0 = always detached (CALD's detection port), a
        large value = never. The experiment sets it from ``loss.ll4al_detach_fraction`` in
        LL4AL's cycles (reference: 60 % of the run) and to 0 elsewhere.
      seg_class_weights: [C_seg] class weights of the segmentation loss (``loss.
        seg_class_weights``; () = unweighted).

    Returns:
      The step function. ``metrics`` holds the total loss, every term and the grad norm.
    """

    def train_step(state, batch, key):
        del key  # augmentation happens on the host; kept for the uniform signature

        def loss_fn(params):
            outputs, mutated = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                batch.images,
                train=True,
                detach_loss_features=state.step >= ll4al_detach_step,
                mutable=["batch_stats"],
            )
            per_example = losses.per_example_losses(
                outputs, batch, seg_class_weights=seg_class_weights
            )
            total, terms = losses.weighted_total(per_example, loss_weights, batch.valid)
            if outputs.loss_pred is not None:
                targets = task_losses(per_example, loss_weights)  # [B, 2]
                rank = sum(
                    loss_heads.margin_ranking_loss(
                        outputs.loss_pred[:, t], targets[:, t], margin=ll4al_margin
                    )
                    for t in range(2)
                )
                terms["ll4al_ranking"] = rank
                total = total + ll4al_weight * rank
            terms["total"] = total
            return total, (terms, mutated["batch_stats"])

        grads, (terms, batch_stats) = jax.grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            opt_state=opt_state,
        )
        terms["grad_norm"] = optax.global_norm(grads)
        return new_state, terms

    return train_step


def make_eval_step(
    model: multitask.Model,
    *,
    num_seg_classes: int,
    decode_kwargs: dict,
    loss_weights: dict[str, float],
    seg_class_weights: tuple[float, ...] = (),
) -> Callable[[dict, structs.Batch], dict[str, Any]]:
    """Builds ``eval_step(variables, batch) -> dict``.

    Returns a function whose dict holds ``detections`` (``structs.Detections``, boxes in
    input pixels), ``confusion`` ([C_seg, C_seg] int32 summed over the valid images, rows =
    ground truth) and ``losses`` ([B, 2] per-image detection / segmentation losses).
    """

    def eval_step(variables, batch):
        outputs = model.apply(variables, batch.images, train=False)
        dets = decode.decode(outputs, **decode_kwargs)
        logits = jax.image.resize(
            outputs.seg_logits, (*batch.seg_labels.shape, num_seg_classes), "bilinear"
        )
        pred = jnp.argmax(logits, -1)
        conf = metrics.confusion_matrix(pred, batch.seg_labels, num_seg_classes, valid=batch.valid)
        per_example = losses.per_example_losses(outputs, batch, seg_class_weights=seg_class_weights)
        return {
            "detections": dets,
            "confusion": conf,
            "losses": task_losses(per_example, loss_weights),
        }

    return eval_step


def content_mask(
    content_hw: jax.Array, out_hw: tuple[int, int], in_hw: tuple[int, int]
) -> jax.Array:
    """Which cells of a stride-s output map show image content rather than padding.

    The pipeline pads images bottom/right; the losses ignore those pixels through their
    ``IGNORE_LABEL``. Scores cannot read labels of unlabeled images, so this mask comes
    from the content size alone: a cell is content when its centre input pixel is (the
    full-resolution padding mask sampled nearest-neighbour at the map's resolution).

    Args:
      content_hw: [B, 2] int32 (height, width) of the content (``Batch.content_hw``).
      out_hw: (h, w) of the output map.
      in_hw: (H, W) of the network input.

    Returns:
      [B, h, w] bool.
    """
    (h, w), (hh, ww) = out_hw, in_hw
    ys = (jnp.arange(h) + 0.5) * (hh / h)  # [h] centre of each cell row, input pixels
    xs = (jnp.arange(w) + 0.5) * (ww / w)  # [w]
    content_hw = jnp.asarray(content_hw, jnp.float32)
    rows = ys[None, :] < content_hw[:, :1]  # [B, h]
    cols = xs[None, :] < content_hw[:, 1:]  # [B, w]
    return rows[:, :, None] & cols[:, None, :]


def strategy_predictions(
    model: multitask.Model,
    strategy: strategy_types.Strategy,
    variables: dict,
    images: jax.Array,
    valid: jax.Array,
    *,
    decode_kwargs: dict,
    det_to_seg: jax.Array,
    content_hw: jax.Array | None = None,
) -> tuple[structs.Outputs, structs.Predictions]:
    """The forward pass, decoding and the strategy's extras of one batch (pure, jittable).

    Shared by ``make_predict_fn`` (selection) and ``analysis.collect`` (Table II, Figs. 5-6),
    so that both score the same predictions.

    Args:
      model: the multi-task network.
      strategy: its ``extras`` fill ``Predictions.extras``.
      variables: model variables.
      images: [B, H, W, 3] uint8.
      valid: [B] bool, False for padded examples.
      decode_kwargs: ``max_detections`` and ``score_threshold`` of ``decode.decode``.
      det_to_seg: [C_det] int32.
      content_hw: [B, 2] int32 content size before padding (``Batch.content_hw``), or None;
        gives ``Predictions.pixel_valid`` (``content_mask``).

    Returns:
      (raw ``structs.Outputs``, ``structs.Predictions`` with the extras).
    """
    det_to_seg = jnp.asarray(det_to_seg, jnp.int32)
    apply_fn = lambda x: model.apply(variables, x, train=False)
    segment_fn = lambda x: model.apply(variables, x, method=multitask.Model.segment)
    decode_fn = lambda outputs: decode.decode(outputs, **decode_kwargs)
    ctx = strategy_types.PredictContext(apply_fn, segment_fn, decode_fn, det_to_seg)
    outputs = apply_fn(images)
    pixel_valid = (
        None
        if content_hw is None
        else content_mask(content_hw, outputs.seg_logits.shape[1:3], images.shape[1:3])
    )
    preds = structs.Predictions(
        detections=decode_fn(outputs),
        seg_probs=jax.nn.softmax(outputs.seg_logits.astype(jnp.float32), -1),
        embedding=outputs.embedding,
        valid=valid,
        loss_pred=outputs.loss_pred,
        pixel_valid=pixel_valid,
        content_hw=None if content_hw is None else jnp.asarray(content_hw, jnp.int32),
    )
    extras = {}
    for extra in strategy.extras:
        extras.update(extra(ctx, images, preds))
    return outputs, preds.replace(extras=extras)


def make_predict_fn(
    model: multitask.Model,
    strategy: strategy_types.Strategy,
    *,
    decode_kwargs: dict,
    det_to_seg: jax.Array,
    with_features: bool = True,
) -> Callable[[dict, structs.Batch], tuple[dict[str, jax.Array], jax.Array | None]]:
    """Builds ``predict_fn(variables, batch) -> (scores, feats)`` for pool scoring.

    The model runs once; decoding, the strategy's extras (with a ``PredictContext``) and its
    ``score`` follow inside the same function (``strategy_predictions``), so only per-image
    scores (a dict of [B] arrays, ``"score"`` included) and features ([B, D] or None) leave
    the device.

    Args:
      model: the multi-task network.
      strategy: the strategy (its score, features and extras are used).
      decode_kwargs: ``max_detections`` and ``score_threshold`` of ``decode.decode``.
      det_to_seg: [C_det] int32.
      with_features: compute ``strategy.features`` (when it has one).
    """

    def predict_fn(variables, batch):
        _, preds = strategy_predictions(
            model, strategy, variables, batch.images, batch.valid,
            decode_kwargs=decode_kwargs, det_to_seg=det_to_seg, content_hw=batch.content_hw,
        )  # fmt: skip
        scores = strategy.score(preds)
        feats = (
            strategy.features(preds) if (with_features and strategy.features is not None) else None
        )
        return scores, feats

    return predict_fn
