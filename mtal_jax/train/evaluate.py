"""Evaluation over a split: mAP (host, COCO-exact) and mIoU (confusion matrix summed on device).

Segmentation predictions are never kept: each batch contributes its confusion matrix.
Detections of valid slots go to the host once per batch for mAP.

mAP counts every ground-truth box. The pipeline pads boxes to ``max_boxes`` and keeps the
largest when an image has more (``data.pipeline.preprocess``); scoring against those only
would count the objects left out as never missed and raise mAP. The ground truth of such an
image is read again with all its boxes (host only; the batch keeps its shapes). So is an
image with crowd regions (COCO ``iscrowd``), which never enter a batch: mAP ignores the
detections inside them, as COCOeval does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import tqdm

from mtal_jax import metrics, records, runtime, sharding, structs
from mtal_jax.data import pipeline

log = logging.getLogger(__name__)


def evaluate(
    eval_fn: Callable[[dict, structs.Batch], dict],
    variables: dict,
    source: Any,
    indices: Sequence[int],
    spec: pipeline.Spec,
    *,
    batch_size: int,
    mesh: jax.sharding.Mesh,
    progress: bool = True,
    keep_per_image: bool = False,
) -> records.EvalResult:
    """Evaluates ``variables`` on ``source[indices]``.

    Args:
      eval_fn: jitted ``train.step.make_eval_step`` output.
      variables: ``{"params", "batch_stats"}`` (replicated on the mesh).
      source: data source of the split.
      indices: examples to evaluate.
      spec: pipeline sizes and classes.
      batch_size: multiple of the device count.
      mesh: device mesh.
      progress: show a progress bar.
      keep_per_image: also return per-image losses ``losses`` [N, 2] and ``index`` [N].

    Returns:
      ``records.EvalResult``: one value per ``records.EVAL_METRICS`` name, the per-class
      values and, with ``keep_per_image``, ``losses`` and ``index``.
    """
    preds, gts, per_loss, per_index = [], [], [], []
    dropped = 0
    conf = np.zeros((spec.num_seg_classes, spec.num_seg_classes), np.int64)
    batches = pipeline.iterate_eval(source, indices, spec, batch_size=batch_size)
    total = -(-len(indices) // batch_size)
    for host in tqdm.tqdm(batches, total=total, desc="eval", leave=False, disable=not progress):
        runtime.raise_pending_interrupt()  # a Ctrl-C lost where it was raised
        batch = sharding.put_batch(to_batch(host), mesh)
        out = jax.device_get(eval_fn(variables, batch))
        conf += np.asarray(out["confusion"], np.int64)
        dets = out["detections"]
        for b in np.flatnonzero(host["valid"]):
            keep = np.asarray(dets.valid[b])
            preds.append(
                {
                    "boxes": dets.boxes[b][keep],
                    "scores": dets.scores[b][keep],
                    "labels": dets.labels[b][keep],
                }
            )
            gts.append(_ground_truth(host, b, source, spec))
            dropped += int(host["num_dropped_boxes"][b]) if "num_dropped_boxes" in host else 0
        per_loss.append(np.asarray(out["losses"])[host["valid"]])
        per_index.append(host["index"][host["valid"]])
    if dropped:
        log.info(
            "evaluation: %d ground-truth boxes beyond data.max_boxes=%d count in mAP (read "
            "again for their images); training sees the largest %d per image",
            dropped, spec.max_boxes, spec.max_boxes,
        )  # fmt: skip
    det = metrics.detection_map(preds, gts, spec.num_det_classes)
    seg = metrics.miou_from_confusion(conf)
    values = {  # one entry per records.EVAL_METRICS name
        "map": float(det["map"]),
        "ap50": float(det["ap50"]),
        "miou": float(seg["miou"]),
    }
    if tuple(values) != records.metric_names():
        raise RuntimeError(
            f"evaluate computes {tuple(values)}, records.EVAL_METRICS lists "
            f"{records.metric_names()}: add the metric in both places"
        )
    losses = index = None
    if keep_per_image:
        losses = np.concatenate(per_loss) if per_loss else np.zeros((0, 2), np.float32)
        index = np.concatenate(per_index) if per_index else np.zeros((0,), np.int32)
    return records.EvalResult(
        metrics=values,
        per_class_ap=[float(x) for x in det["per_class_ap"]],
        per_class_iou=[float(x) for x in seg["per_class"]],
        losses=losses,
        index=index,
    )


def _ground_truth(host: dict[str, np.ndarray], b: int, source: Any, spec: pipeline.Spec) -> dict:
    """``{"boxes", "labels"}`` (and ``crowd_boxes``, ``crowd_labels``) of every ground-truth
    box of example ``b`` of the batch, in input pixels: the batch's, or, when the pipeline
    dropped boxes beyond ``max_boxes`` or the image has crowd regions, the example read
    again (``pipeline.ground_truth``)."""
    valid = host["box_valid"][b]
    again = sum(int(host[k][b]) for k in ("num_dropped_boxes", "num_crowd_boxes") if k in host)
    if not again:
        return {"boxes": host["boxes"][b][valid], "labels": host["box_labels"][b][valid]}
    index = int(host["index"][b])
    return pipeline.ground_truth(source[index], spec, index)


def to_batch(host: dict[str, np.ndarray]) -> structs.Batch:
    """Host dict from the pipeline -> ``structs.Batch`` (drops bookkeeping keys).

    Optional fields (``content_hw``) missing from ``host`` stay None.
    """
    return structs.Batch(**{f: host[f] for f in structs.Batch.__dataclass_fields__ if f in host})
