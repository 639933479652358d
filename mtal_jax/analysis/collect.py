"""One jitted function per batch that gathers what Table II and Figures 5-6 need (pure).

``make_analysis_fn`` scores a batch exactly as selection does: the same
``train.step.strategy_predictions`` (forward pass, decoding, the ``ours`` strategy's BoxMask
extra) and the same ``strategy.score``, for the strategy built from the same keyword
arguments (``al.experiment.make_strategy``). It adds the per-image losses and the errors of
the scored boxes (Fig. 6), the
BoxMask accuracy totals per threshold (Table II: the BoxMasks at each tau come from the
extra's crop probabilities through ``scores.boxmask.box_masks_from_class_probs``, the
function behind the extra's own BoxMasks; the crop network does not depend on tau) and,
optionally, the maps for overlays (Fig. 5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from mtal_jax import losses, strategy_types, structs
from mtal_jax.analysis import box_errors, boxmask_accuracy
from mtal_jax.models import multitask
from mtal_jax.scores import boxmask
from mtal_jax.train import step as step_lib

REQUIRED_EXTRAS = ("box_masks", "box_valid", "box_classes", "box_class_probs")


def make_analysis_fn(
    model: multitask.Model,
    strategy: strategy_types.Strategy,
    *,
    decode_kwargs: dict,
    det_to_seg: jax.Array,
    loss_weights: dict[str, float],
    seg_class_weights: tuple[float, ...] = (),
    taus: Sequence[float] = (0.1, 0.3, 0.5, 0.7),
    return_maps: bool = False,
) -> Callable[[dict, structs.Batch], dict[str, jax.Array]]:
    """Builds ``analysis_fn(variables, batch) -> dict``.

    Args:
      model: the multi-task network.
      strategy: the ``ours`` strategy (or an alias of it) whose BoxMasks and scores are
        analysed, as selection builds it.
      decode_kwargs: ``max_detections`` and ``score_threshold`` of ``decode.decode``.
      det_to_seg: [C_det] int32.
      loss_weights: training loss weights; the detection classification loss is the
        weighted ``det_heatmap`` term, the localisation loss the weighted sum of
        ``det_size`` and ``det_offset`` (``train.step.DET_CLS_TERMS`` / ``DET_LOC_TERMS``).
      seg_class_weights: class weights of the segmentation loss, as in training.
      taus: BoxMask thresholds of the accuracy table (Table II).
      return_maps: also return the per-image maps for overlays.

    Returns:
      A function whose dict holds, per image ([B]): every entry of ``strategy.score``
      (``score``, ``s_seg``, ``s_loc_max``, ``s_cls_max``, ``s_loc_best``, ...), ``s_loc`` and
      ``s_cls`` (= the max over scored boxes, the Fig. 6 columns), ``loss_det_cls``,
      ``loss_det_loc``, ``loss_seg``, the scored boxes' errors ``err_det_cls``,
      ``err_det_loc`` and ``num_matched`` (``box_errors.detected_box_errors``), ``num_boxes``,
      ``index``, ``valid``; summed over the
      batch: ``iou_intersection``, ``iou_union``, ``box_count`` and ``box_empty`` ([len(taus),
      C_seg]; ``boxmask_accuracy.box_counts``); with
      ``return_maps`` also ``seg_labels`` [B, h, w], ``box_masks`` [B, K, h, w], ``boxes``
      [B, K, 4] (input pixels), ``box_classes`` and ``box_valid`` [B, K].
    """

    def analysis_fn(variables: dict, batch: structs.Batch) -> dict[str, jax.Array]:
        outputs, preds = step_lib.strategy_predictions(
            model, strategy, variables, batch.images, batch.valid,
            decode_kwargs=decode_kwargs, det_to_seg=det_to_seg, content_hw=batch.content_hw,
        )  # fmt: skip
        extras = preds.extras
        missing = [k for k in REQUIRED_EXTRAS if k not in extras]
        if missing:
            raise ValueError(
                f"the analyses need the BoxMask extra of the 'ours' strategy; missing {missing}"
            )
        scores = strategy.score(preds)
        kept = extras["box_valid"]
        h, w, num_seg = preds.seg_probs.shape[1:]
        # the content only, as the scores read it (no BoxMask pixel in the letterbox padding)
        content = (
            jnp.ones((kept.shape[0], h, w), bool)
            if preds.pixel_valid is None
            else jnp.asarray(preds.pixel_valid, bool)
        )
        gt = boxmask_accuracy.labels_on_grid(batch.seg_labels, (h, w))
        counts = []
        for tau in taus:
            masks = boxmask.box_masks_from_class_probs(
                extras["box_class_probs"], extras["box_windows_grid"], extras["boxes_grid"],
                tau=tau, out_hw=(h, w),
            ) & kept[..., None, None] & content[:, None]  # fmt: skip
            counts.append(
                boxmask_accuracy.boxmask_iou_counts(
                    masks, extras["boxes_grid"], extras["box_classes"], kept, gt, num_seg
                )
                + boxmask_accuracy.box_counts(masks, extras["box_classes"], kept, num_seg)
            )
        per_example = losses.per_example_losses(outputs, batch, seg_class_weights=seg_class_weights)
        weighted = lambda terms: sum(loss_weights.get(t, 0.0) * per_example[t] for t in terms)
        det = preds.detections
        errors = box_errors.detected_box_errors(
            det.boxes, det.det_probs, kept, batch.boxes, batch.box_labels, batch.box_valid
        )
        out = {
            **scores,
            "index": batch.index,
            "valid": batch.valid,
            "s_loc": scores["s_loc_max"],
            "s_cls": scores["s_cls_max"],
            "loss_det_cls": weighted(step_lib.DET_CLS_TERMS),
            "loss_det_loc": weighted(step_lib.DET_LOC_TERMS),
            "loss_seg": per_example["seg"],
            "err_det_cls": errors["cls_error"],
            "err_det_loc": errors["loc_error"],
            "num_matched": errors["num_matched"],
            "num_boxes": jnp.sum(kept, axis=1),
            "iou_intersection": jnp.stack([c[0] for c in counts]),
            "iou_union": jnp.stack([c[1] for c in counts]),
            "box_count": jnp.stack([c[2] for c in counts]),
            "box_empty": jnp.stack([c[3] for c in counts]),
        }
        if return_maps:
            out.update(
                seg_labels=jnp.argmax(preds.seg_probs, -1),
                box_masks=extras["box_masks"],
                boxes=preds.detections.boxes,
                box_classes=extras["box_classes"],
                box_valid=kept,
            )
        return out

    return analysis_fn
