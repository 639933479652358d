"""One jitted function per batch that gathers what Table II and Figures 5-6 need (pure).

``make_analysis_fn`` runs the network once, decodes, builds the BoxMasks of every valid
detection once per threshold from a single pass of the packed crops (the crop network
does not depend on tau), and returns per-image scores and losses, the BoxMask accuracy
totals per threshold and, optionally, the maps for overlays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from mtal_jax import decode, losses, structs
from mtal_jax.analysis import boxmask_accuracy
from mtal_jax.models import multitask
from mtal_jax.scores import boxmask, consistency
from mtal_jax.train import step as step_lib


def _masked_max(values: jax.Array, valid: jax.Array) -> jax.Array:
    best = jnp.max(jnp.where(valid, values, -jnp.inf), axis=1)
    return jnp.where(jnp.any(valid, axis=1), best, 0.0)


def make_analysis_fn(
    model: multitask.Model,
    *,
    decode_kwargs: dict,
    det_to_seg: jax.Array,
    loss_weights: dict[str, float],
    taus: Sequence[float] = (0.1, 0.3, 0.5, 0.7),
    tau: float = 0.3,
    crop_size: int = 64,
    context_margin: float = 0.1,
    crop_chunk: int = 16,
    eps: float = 1e-6,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    return_maps: bool = False,
) -> Callable[[dict, structs.Batch], dict[str, jax.Array]]:
    """Builds ``analysis_fn(variables, batch) -> dict``.

    Args:
      model: the multi-task network.
      decode_kwargs: ``max_detections`` and ``score_threshold`` of ``decode.decode``.
      det_to_seg: [C_det] int32.
      loss_weights: training loss weights; the detection classification loss is the
        weighted ``det_heatmap`` term, the localisation loss the weighted sum of
        ``det_size`` and ``det_offset`` (``train.step.DET_CLS_TERMS`` / ``DET_LOC_TERMS``).
      taus: BoxMask thresholds of the accuracy table (Table II).
      tau: threshold of the BoxMasks behind the scores.
      crop_size, context_margin, crop_chunk, eps, weights: as in ``strategies.ours``.
      return_maps: also return the per-image maps for overlays.

    Returns:
      A function whose dict holds, per image ([B]): ``s_loc``, ``s_cls`` (max over valid
      boxes), ``s_seg``, ``score``, ``loss_det_cls``, ``loss_det_loc``, ``loss_seg``,
      ``num_boxes``; summed over valid images: ``iou_intersection`` and ``iou_union``
      ([len(taus), C_seg]); with ``return_maps`` also ``seg_labels`` [B, h, w],
      ``box_masks`` [B, K, h, w], ``boxes`` [B, K, 4] (input pixels), ``box_classes`` and
      ``box_valid`` [B, K].
    """
    det_to_seg = jnp.asarray(det_to_seg, jnp.int32)
    all_taus = tuple(taus) + ((tau,) if tau not in taus else ())

    def analysis_fn(variables: dict, batch: structs.Batch) -> dict[str, jax.Array]:
        images = batch.images
        outputs = model.apply(variables, images, train=False)
        dets = decode.decode(outputs, **decode_kwargs)
        seg_probs = jax.nn.softmax(outputs.seg_logits.astype(jnp.float32), -1)
        height, width = images.shape[1:3]
        h, w, num_seg = seg_probs.shape[1:]
        valid = dets.valid & batch.valid[:, None]
        windows = boxmask.crop_windows(
            dets.boxes, context_margin=context_margin, image_hw=(height, width)
        )
        classes = consistency.box_seg_classes(dets.det_probs, det_to_seg)
        segment_fn = lambda x: model.apply(variables, x, method=multitask.Model.segment)
        class_probs, kept = boxmask.packed_crop_class_probs(
            segment_fn, images, windows, classes, valid, dets.scores,
            crop_size=crop_size, max_crops=valid.size, crop_chunk=crop_chunk,
        )  # fmt: skip
        to_grid = jnp.array([w / width, h / height] * 2, jnp.float32)
        boxes_grid = dets.boxes * to_grid
        masks = {
            t: boxmask.box_masks_from_class_probs(
                class_probs, windows * to_grid, boxes_grid, tau=t, out_hw=(h, w)
            )
            & kept[..., None, None]
            for t in all_taus
        }
        gt = boxmask_accuracy.labels_on_grid(batch.seg_labels, (h, w))
        counts = [
            boxmask_accuracy.boxmask_iou_counts(masks[t], boxes_grid, classes, kept, gt, num_seg)
            for t in taus
        ]
        scores = consistency.consistency_scores(
            seg_probs, masks[tau], dets.det_probs, kept, det_to_seg, eps=eps, weights=weights
        )
        per_example = losses.per_example_losses(outputs, batch)
        weighted = lambda terms: sum(loss_weights.get(t, 0.0) * per_example[t] for t in terms)
        out = {
            "index": batch.index,
            "valid": batch.valid,
            "s_loc": _masked_max(scores.s_loc, kept),
            "s_cls": _masked_max(scores.s_cls, kept),
            "s_seg": scores.s_seg,
            "score": scores.score,
            "loss_det_cls": weighted(step_lib.DET_CLS_TERMS),
            "loss_det_loc": weighted(step_lib.DET_LOC_TERMS),
            "loss_seg": per_example["seg"],
            "num_boxes": jnp.sum(kept, axis=1),
            "iou_intersection": jnp.stack([c[0] for c in counts]),
            "iou_union": jnp.stack([c[1] for c in counts]),
        }
        if return_maps:
            out.update(
                seg_labels=jnp.argmax(seg_probs, -1),
                box_masks=masks[tau],
                boxes=dets.boxes,
                box_classes=classes,
                box_valid=kept,
            )
        return out

    return analysis_fn
