"""COCO box mAP in vectorised NumPy, equal to pycocotools' ``COCOeval`` (paper IV-A).

``detection_map`` reproduces ``COCOeval(iouType="bbox")`` with the default parameters
restricted to what the paper reports: AP averaged over IoU thresholds 0.50:0.05:0.95
(``stats[0]``) and AP at IoU 0.50 (``stats[1]``), 101-point interpolated precision, area
range "all", at most 100 detections per image and class. The COCOeval details it keeps,
so that the numbers agree to floating-point rounding:

- boxes are converted to ``xywh`` and IoU is computed as in ``maskApi.c`` (``bbIou``:
  ``min(x + w) - max(x)``, no ``+1``, zero when the overlap is not positive);
- detections of one (image, class) are sorted by descending score with a stable sort and
  cut to the top 100; matching is greedy in that order: each detection takes the
  still-unmatched ground truth of highest IoU ``>= min(t, 1 - 1e-10)``, the later one on
  ties;
- per class, the detections of all images are concatenated in image order and stably
  sorted by descending score; precision is made monotone from the right and read at
  the 101 recall thresholds with ``searchsorted(side="left")`` (0 beyond the last recall);
- crowd regions (``iscrowd`` 1 annotations, given as ``crowd_boxes``): a detection that
  matches no ordinary ground truth but overlaps a crowd region of its class by
  ``intersection / detection area >= t`` (``bbIou`` with ``iscrowd``) is ignored, neither
  true nor false positive; a crowd region absorbs any number of detections and is never a
  ground truth to find;
- classes without (non-crowd) ground truth are left out of the mean.

Host-side only (NumPy): it runs once per AL cycle on the whole evaluation split. The
only Python loops are over matching ranks (at most 100 per size bucket), classes and IoU
thresholds; everything else is array code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
"""[T=10] COCO IoU thresholds 0.50:0.05:0.95 (same floats as ``COCOeval.Params``)."""

RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
"""[R=101] COCO recall thresholds 0:0.01:1 (same floats as ``COCOeval.Params``)."""

MAX_DETS = 100
"""Detections kept per image and class (COCOeval ``maxDets[-1]``)."""

# Elements of one padded [P, D, G] IoU block; bounds the memory of the matching step.
_BLOCK_ELEMENTS = 1 << 21


def detection_map(
    predictions: Sequence[Mapping[str, Any]],
    ground_truths: Sequence[Mapping[str, Any]],
    num_classes: int,
) -> dict[str, Any]:
    """COCO mAP@[.50:.95] and AP50 of a detection split, equal to pycocotools COCOeval.

    Args:
      predictions: one dict per image with ``boxes`` [N, 4] xyxy in pixels (x2 >= x1,
        y2 >= y1), ``scores`` [N] float (higher = more confident) and ``labels`` [N] int
        in [0, num_classes). N may differ per image and be 0.
      ground_truths: one dict per image (same order and length as ``predictions``) with
        ``boxes`` [M, 4] xyxy in pixels and ``labels`` [M] int in [0, num_classes), and
        optionally the image's crowd regions ``crowd_boxes`` [K, 4] xyxy and
        ``crowd_labels`` [K] int (COCO ``iscrowd`` 1: detections inside are ignored).
      num_classes: C, the number of detection classes.

    Returns:
      A dict with ``map`` (COCOeval ``stats[0]``) and ``ap50`` (``stats[1]``), floats in
      [0, 1], NaN when no class has ground truth; ``per_class_ap`` and
      ``per_class_ap50``, lists of C floats, NaN for classes without ground truth.

    Raises:
      ValueError: on mismatched lengths, malformed arrays or labels out of range.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(
            f"predictions ({len(predictions)}) and ground_truths ({len(ground_truths)}) "
            "must list the same images"
        )
    num_images = len(ground_truths)
    det_image, det_boxes, det_labels, det_scores = _flatten(predictions, "predictions", True)
    gt_image, gt_boxes, gt_labels, _ = _flatten(ground_truths, "ground_truths", False)
    crowds = [
        {"boxes": g.get("crowd_boxes", ()), "labels": g.get("crowd_labels", ())}
        for g in ground_truths
    ]
    crowd_image, crowd_boxes, crowd_labels, _ = _flatten(crowds, "ground_truths crowd", False)
    for name, labels in (
        ("predictions", det_labels),
        ("ground_truths", gt_labels),
        ("ground_truths crowd", crowd_labels),
    ):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes})")

    # COCOeval order: per (class, image), stable sort by descending score, top MAX_DETS.
    order = np.lexsort((-det_scores, det_image, det_labels))
    det_key = (det_labels * num_images + det_image)[order]
    det_rank = _rank_in_group(det_key)
    top = det_rank < MAX_DETS
    keep, det_key, det_rank = order[top], det_key[top], det_rank[top]
    det_xywh, det_labels, det_scores = _to_xywh(det_boxes[keep]), det_labels[keep], det_scores[keep]

    # Ground truths grouped by (class, image), original order kept inside a group.
    gt_order = np.lexsort((gt_image, gt_labels))
    gt_key = (gt_labels * num_images + gt_image)[gt_order]
    gt_rank = _rank_in_group(gt_key)
    gt_xywh = _to_xywh(gt_boxes[gt_order])

    matched = _match(det_key, det_rank, det_xywh, gt_key, gt_rank, gt_xywh)  # [n_det, T]
    crowd_key = crowd_labels * num_images + crowd_image
    crowd_overlap = _crowd_overlap(det_key, det_xywh, crowd_key, _to_xywh(crowd_boxes))
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
    ignored = ~matched & (crowd_overlap[:, None] >= thresholds[None, :])  # [n_det, T]
    num_gt = np.bincount(gt_labels, minlength=num_classes)  # [C]
    precision = _precision(matched, ignored, det_labels, det_scores, num_gt)  # [T, R, C]

    per_class_ap = precision.mean(axis=(0, 1))  # [C], NaN where no ground truth
    per_class_ap50 = precision[0].mean(axis=0)  # [C]
    has_gt = num_gt > 0
    return {
        "map": float(per_class_ap[has_gt].mean()) if has_gt.any() else float("nan"),
        "ap50": float(per_class_ap50[has_gt].mean()) if has_gt.any() else float("nan"),
        "per_class_ap": per_class_ap.tolist(),
        "per_class_ap50": per_class_ap50.tolist(),
    }


def _flatten(
    items: Sequence[Mapping[str, Any]], name: str, with_scores: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenates per-image dicts into flat arrays.

    Returns:
      ``image`` [N] int64 image index, ``boxes`` [N, 4] float64 xyxy, ``labels`` [N]
      int64 and ``scores`` [N] float64 (zeros when ``with_scores`` is False).
    """
    boxes, labels, scores = [], [], []
    for i, item in enumerate(items):
        b = np.asarray(item["boxes"], np.float64).reshape(-1, 4)
        lab = np.asarray(item["labels"]).reshape(-1)
        s = np.asarray(item["scores"], np.float64).reshape(-1) if with_scores else None
        s = np.zeros(len(lab)) if s is None else s
        if not (len(b) == len(lab) == len(s)):
            raise ValueError(
                f"{name}[{i}]: boxes {b.shape}, labels {lab.shape} and scores {s.shape} disagree"
            )
        if lab.size and not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"{name}[{i}]: labels must be integers, got {lab.dtype}")
        inverted = ~((b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1]))  # also NaN coordinates
        if inverted.any():  # COCOeval drops such a box (negative area), this code would not
            k = int(np.flatnonzero(inverted)[0])
            raise ValueError(
                f"{name}[{i}]: box {k} {b[k].tolist()} is not xyxy with x2 >= x1 and y2 >= y1 "
                f"({int(inverted.sum())} such boxes)"
            )
        boxes.append(b)
        labels.append(lab.astype(np.int64))
        scores.append(s)
    counts = [len(lab) for lab in labels]
    image = np.repeat(np.arange(len(items), dtype=np.int64), counts)
    if not items:
        return image, np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0)
    return image, np.concatenate(boxes), np.concatenate(labels), np.concatenate(scores)


def _to_xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy -> [N, 4] xywh (float64), the format COCOeval computes IoU in."""
    return np.concatenate([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]], axis=1)


def _rank_in_group(sorted_keys: np.ndarray) -> np.ndarray:
    """Position of each element inside its run of equal keys ([N] sorted -> [N] int64)."""
    n = len(sorted_keys)
    is_start = np.ones(n, bool)
    is_start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    start = np.maximum.accumulate(np.where(is_start, np.arange(n), 0))
    return np.arange(n) - start


def _overlap_wh(d: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Overlap width and height of xywh boxes as ``bbIou`` (broadcast [..., 4] x [..., 4]
    -> two [...] arrays; not positive where the boxes do not overlap)."""
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0], g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1], g[..., 1])
    return w, h


def _iou_xywh(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """IoU as pycocotools ``bbIou`` (non-crowd): [..., D, 4] x [..., G, 4] -> [..., D, G]."""
    d = dets[..., :, None, :]  # [..., D, 1, 4]
    g = gts[..., None, :, :]  # [..., 1, G, 4]
    w, h = _overlap_wh(d, g)
    inter = w * h
    union = d[..., 2] * d[..., 3] + g[..., 2] * g[..., 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((w > 0) & (h > 0), inter / union, 0.0)


def _crowd_overlap(
    det_key: np.ndarray, det_xywh: np.ndarray, crowd_key: np.ndarray, crowd_xywh: np.ndarray
) -> np.ndarray:
    """Largest crowd overlap of each detection (pycocotools ``bbIou`` with ``iscrowd``).

    Args:
      det_key: [n_det] group key (class * num_images + image) of each detection.
      det_xywh: [n_det, 4] float64 detection boxes.
      crowd_key: [n_crowd] group key of each crowd region.
      crowd_xywh: [n_crowd, 4] float64 crowd boxes.

    Returns:
      [n_det] float64: max over the crowd regions of the detection's group of
      intersection / detection area (0 without overlap, -1 when the group has none).
    """
    overlap = np.full(len(det_key), -1.0)
    if not len(crowd_key) or not len(det_key):
        return overlap
    order = np.argsort(crowd_key, kind="stable")
    crowd_key, crowd_xywh = crowd_key[order], crowd_xywh[order]
    start = np.searchsorted(crowd_key, det_key, side="left")  # [n_det]
    count = np.searchsorted(crowd_key, det_key, side="right") - start
    width = int(count.max())
    if not width:
        return overlap
    step = max(1, _BLOCK_ELEMENTS // width)
    for lo in range(0, len(det_key), step):
        sl = slice(lo, lo + step)
        slot = start[sl, None] + np.arange(width)  # [n, K]
        real = np.arange(width) < count[sl, None]
        g = crowd_xywh[np.minimum(slot, len(crowd_key) - 1)]  # [n, K, 4]
        d = det_xywh[sl, None, :]  # [n, 1, 4]
        w, h = _overlap_wh(d, g)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((w > 0) & (h > 0), w * h / (d[..., 2] * d[..., 3]), 0.0)
        overlap[sl] = np.where(real, ratio, -1.0).max(axis=1)
    return overlap


def _match(
    det_key: np.ndarray,
    det_rank: np.ndarray,
    det_xywh: np.ndarray,
    gt_key: np.ndarray,
    gt_rank: np.ndarray,
    gt_xywh: np.ndarray,
) -> np.ndarray:
    """Greedy COCOeval matching of every (class, image) group at all IoU thresholds.

    Groups are padded to power-of-two sizes, bucketed by padded size and processed in
    blocks, so the only Python loop is over the detection rank inside a block.

    Args:
      det_key: [n_det] group key (class * num_images + image), sorted.
      det_rank: [n_det] rank of the detection inside its group (score order).
      det_xywh: [n_det, 4] float64 boxes.
      gt_key: [n_gt] group key, sorted.
      gt_rank: [n_gt] position of the ground truth inside its group.
      gt_xywh: [n_gt, 4] float64 boxes.

    Returns:
      [n_det, T] bool, True where the detection matches a ground truth at IoU_THRESHOLDS[t].
    """
    num_thresholds = len(IOU_THRESHOLDS)
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)  # [T]
    matched = np.zeros((len(det_key), num_thresholds), bool)
    groups, det_count = np.unique(det_key, return_counts=True)
    gt_groups, gt_count = np.unique(gt_key, return_counts=True)
    groups, in_det, in_gt = np.intersect1d(groups, gt_groups, return_indices=True)
    if not len(groups):
        return matched
    pad_d = 1 << np.ceil(np.log2(det_count[in_det])).astype(np.int64)  # [num_groups]
    pad_g = 1 << np.ceil(np.log2(gt_count[in_gt])).astype(np.int64)
    for bucket_d, bucket_g in sorted(set(zip(pad_d.tolist(), pad_g.tolist()))):
        bucket = groups[(pad_d == bucket_d) & (pad_g == bucket_g)]
        block = max(1, _BLOCK_ELEMENTS // (bucket_d * bucket_g))
        for lo in range(0, len(bucket), block):
            keys = bucket[lo : lo + block]  # [P] sorted
            det_sel = np.flatnonzero(np.isin(det_key, keys))
            gt_sel = np.flatnonzero(np.isin(gt_key, keys))
            det_slot = np.searchsorted(keys, det_key[det_sel])
            gt_slot = np.searchsorted(keys, gt_key[gt_sel])
            dets = np.zeros((len(keys), bucket_d, 4))
            gts = np.zeros((len(keys), bucket_g, 4))
            dets[det_slot, det_rank[det_sel]] = det_xywh[det_sel]
            gts[gt_slot, gt_rank[gt_sel]] = gt_xywh[gt_sel]
            real_det = _filled(det_slot, det_rank[det_sel], len(keys), bucket_d)  # [P, D]
            real_gt = _filled(gt_slot, gt_rank[gt_sel], len(keys), bucket_g)  # [P, G]
            real = real_det[:, :, None] & real_gt[:, None, :]  # [P, D, G]
            ious = np.where(real, _iou_xywh(dets, gts), -1.0)  # padding never matches
            block_matched = _greedy_match(ious, thresholds)  # [P, T, D]
            matched[det_sel] = block_matched[det_slot, :, det_rank[det_sel]]
    return matched


def _filled(slot: np.ndarray, rank: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[rows, cols] bool, True at (slot[i], rank[i])."""
    out = np.zeros((rows, cols), bool)
    out[slot, rank] = True
    return out


def _greedy_match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """COCOeval greedy matching of padded groups.

    Args:
      ious: [P, D, G] float64 IoU, detections in score order, -1 for padding.
      thresholds: [T] IoU thresholds.

    Returns:
      [P, T, D] bool, True where detection d is matched at threshold t.
    """
    num_groups, num_dets, num_gts = ious.shape
    gt_taken = np.zeros((num_groups, len(thresholds), num_gts), bool)
    det_matched = np.zeros((num_groups, len(thresholds), num_dets), bool)
    rows = np.arange(num_groups)[:, None]  # [P, 1]
    cols = np.arange(len(thresholds))[None, :]  # [1, T]
    for d in range(num_dets):
        iou = ious[:, None, d, :]  # [P, 1, G]
        ok = (iou >= thresholds[None, :, None]) & ~gt_taken  # [P, T, G]
        score = np.where(ok, iou, -np.inf)
        best = num_gts - 1 - np.argmax(score[..., ::-1], axis=-1)  # [P, T], last of ties
        hit = ok.any(axis=-1)  # [P, T]
        det_matched[:, :, d] = hit
        gt_taken[rows, cols, best] |= hit
    return det_matched


def _precision(
    matched: np.ndarray,
    ignored: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    num_gt: np.ndarray,
) -> np.ndarray:
    """Interpolated precision at the COCO recall thresholds (COCOeval ``accumulate``).

    Args:
      matched: [n_det, T] bool, detections in (class, image, rank) order.
      ignored: [n_det, T] bool, detections neither true nor false positive (inside a
        crowd region); they keep their place in the score order, as in COCOeval.
      labels: [n_det] int64 class of each detection.
      scores: [n_det] float64 score of each detection.
      num_gt: [C] number of ground-truth boxes per class.

    Returns:
      [T, R, C] float64 precision; NaN for classes without ground truth.
    """
    num_thresholds, num_recalls = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = np.full((num_thresholds, num_recalls, len(num_gt)), np.nan)
    # Stable: ties keep image order then rank order, as COCOeval's concatenation does.
    order = np.lexsort((-scores, labels))
    matched, ignored, labels = matched[order], ignored[order], labels[order]
    bounds = np.searchsorted(labels, np.arange(len(num_gt) + 1))
    for c in np.flatnonzero(num_gt):
        tps = matched[bounds[c] : bounds[c + 1]].T  # [T, nd]
        fps = ~tps & ~ignored[bounds[c] : bounds[c + 1]].T
        num_dets = tps.shape[1]
        precision[:, :, c] = 0.0
        if not num_dets:
            continue
        tp = np.cumsum(tps, axis=1).astype(float)
        fp = np.cumsum(fps, axis=1).astype(float)
        recall = tp / num_gt[c]
        prec = tp / (fp + tp + np.spacing(1))
        prec = np.maximum.accumulate(prec[:, ::-1], axis=1)[:, ::-1]  # monotone from the right
        for t in range(num_thresholds):
            idx = np.searchsorted(recall[t], RECALL_THRESHOLDS, side="left")  # [R]
            inside = idx < num_dets
            precision[t, inside, c] = prec[t, idx[inside]]
    return precision
