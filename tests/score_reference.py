"""Naive NumPy reference of BoxMask and the consistency scores (host side, loops over boxes).

Written straight from the contracts in ``scores.boxmask`` and ``scores.consistency`` (float64,
per-box KL / JS with plain logs) for the tests and for the baseline of
``bench/score_throughput.py``: one image at a time, one box at a time, one network call
per box. Not for production use; ``scores.boxmask`` and ``scores.consistency`` are the
batched, jitted versions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _bilinear_np(src: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Samples src [H, W, ...] at index positions ys [n], xs [m] (pixel m centred at m)."""
    height, width = src.shape[:2]
    ys = np.clip(ys, 0.0, height - 1.0)
    xs = np.clip(xs, 0.0, width - 1.0)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, height - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    wy = (ys - y0).reshape(-1, 1, *([1] * (src.ndim - 2)))
    wx = (xs - x0).reshape(1, -1, *([1] * (src.ndim - 2)))
    src = src.astype(np.float64)
    top = src[y0][:, x0] * (1 - wx) + src[y0][:, x1] * wx
    bottom = src[y1][:, x0] * (1 - wx) + src[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def crop_and_resize_np(image: np.ndarray, window_xyxy, out_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear crop of one window, half-pixel centres (``ops.crops`` convention).

    Args:
      image: [H, W, C].
      window_xyxy: (x1, y1, x2, y2) in pixels.
      out_hw: (S_h, S_w).

    Returns:
      [S_h, S_w, C] float64.
    """
    x1, y1, x2, y2 = (float(v) for v in window_xyxy)
    out_h, out_w = out_hw
    ys = y1 + (np.arange(out_h) + 0.5) * (y2 - y1) / out_h - 0.5
    xs = x1 + (np.arange(out_w) + 0.5) * (x2 - x1) / out_w - 0.5
    return _bilinear_np(image, ys, xs)


def box_mask_np(
    class_prob: np.ndarray, window_xyxy, box_xyxy, *, tau: float, out_hw: tuple[int, int]
) -> np.ndarray:
    """BoxMask of one box (paper III-C; docs/design.md §4, step 4), window and box in output-grid cells.

    Args:
      class_prob: [S', S'] probability of the box's class over the window.
      window_xyxy: crop window.
      box_xyxy: box.
      tau: threshold.
      out_hw: (h, w).

    Returns:
      [h, w] bool.
    """
    h, w = out_hw
    wx1, wy1, wx2, wy2 = (float(v) for v in window_xyxy)
    bx1, by1, bx2, by2 = (float(v) for v in box_xyxy)
    crop_h, crop_w = class_prob.shape
    centres_y = np.arange(h) + 0.5
    centres_x = np.arange(w) + 0.5
    pos_y = (centres_y - wy1) / max(wy2 - wy1, 1e-6) * crop_h - 0.5
    pos_x = (centres_x - wx1) / max(wx2 - wx1, 1e-6) * crop_w - 0.5
    sampled = _bilinear_np(class_prob, pos_y, pos_x)
    inside = ((by1 <= centres_y) & (centres_y < by2))[:, None] & (
        (bx1 <= centres_x) & (centres_x < bx2)
    )[None, :]
    return inside & (sampled > tau)


def _kl_np(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """KL(p || q) over the last axis: sum p (log max(p, eps) - log max(q, eps))."""
    return np.sum(p * (np.log(np.maximum(p, eps)) - np.log(np.maximum(q, eps))), axis=-1)


def _js_np(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """JS(p, q) in bits over the last axis: (KL(p||m) + KL(q||m)) / (2 ln 2), m = (p + q) / 2."""
    m = (p + q) / 2
    return (_kl_np(p, m, eps) + _kl_np(q, m, eps)) / (2 * np.log(2))


def consistency_scores_np(
    seg_probs: np.ndarray,
    box_masks: np.ndarray,
    det_probs: np.ndarray,
    det_valid: np.ndarray,
    det_to_seg: np.ndarray,
    *,
    eps: float = 1e-6,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    cls_divergence: str = "js",
) -> dict[str, np.ndarray]:
    """The consistency scores of one image, with a Python loop over the boxes.

    Args:
      seg_probs: [h, w, C_seg].
      box_masks: [K, h, w] bool.
      det_probs: [K, C_det].
      det_valid: [K] bool.
      det_to_seg: [C_det] int.
      eps: log floor and probability of the classes detection does not predict.
      weights: (w_loc, w_cls, w_seg).
      cls_divergence: ``"js"`` or ``"kl"``.

    Returns:
      dict with s_loc [K], s_cls [K], s_box [K], s_seg (float), score (float).
    """
    seg_probs = np.asarray(seg_probs, np.float64)
    num_seg_classes = seg_probs.shape[-1]
    labels = np.argmax(seg_probs, axis=-1)
    w_loc, w_cls, w_seg = weights
    num_boxes = len(det_valid)
    s_loc, s_cls, s_box = np.zeros(num_boxes), np.zeros(num_boxes), np.zeros(num_boxes)
    union = np.zeros(labels.shape, bool)
    for k in range(num_boxes):
        if not det_valid[k]:
            continue
        mask = np.asarray(box_masks[k], bool)
        union |= mask
        c = det_to_seg[int(np.argmax(det_probs[k]))]
        q = np.full(num_seg_classes, eps)
        q[np.asarray(det_to_seg)] = 0.0  # detection classes get their probabilities, no eps
        for d, p in enumerate(det_probs[k]):
            q[det_to_seg[d]] += p
        q /= q.sum()
        if mask.any():
            s_loc[k] = 1.0 - np.mean(labels[mask] == c)
            p = seg_probs[mask]  # [n, C_seg]
            if cls_divergence == "kl":
                sym = _kl_np(p, q[None], eps) + _kl_np(q[None], p, eps)
                s_cls[k] = np.sum(sym) / (2 * mask.sum())
            else:
                s_cls[k] = np.mean(_js_np(p, q[None], eps))
        else:
            s_loc[k], s_cls[k] = 1.0, 0.0
        s_box[k] = w_loc * s_loc[k] + w_cls * s_cls[k]
    outside = ~union
    det_classes = np.isin(labels, np.asarray(det_to_seg))
    s_seg = float(np.mean(det_classes[outside])) if outside.any() else 0.0
    best = max((s_box[k] for k in range(num_boxes) if det_valid[k]), default=0.0)
    return {
        "s_loc": s_loc,
        "s_cls": s_cls,
        "s_box": s_box,
        "s_seg": s_seg,
        "score": w_seg * s_seg + best,
    }


def naive_box_mask_scores(
    segment_fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    boxes: np.ndarray,
    det_probs: np.ndarray,
    det_valid: np.ndarray,
    seg_probs: np.ndarray,
    det_to_seg: np.ndarray,
    *,
    crop_size: int = 64,
    context_margin: float = 0.1,
    tau: float = 0.3,
    eps: float = 1e-6,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    cls_divergence: str = "js",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The whole BoxMask scoring of one image, one crop and one network call per box.

    Args:
      segment_fn: uint8 [1, S, S, 3] -> logits [1, S', S', C_seg].
      image: [H, W, 3] uint8.
      boxes: [K, 4] xyxy in input pixels.
      det_probs: [K, C_det].
      det_valid: [K] bool.
      seg_probs: [h, w, C_seg] full-image segmentation probabilities.
      det_to_seg: [C_det] int.
      crop_size, context_margin, tau, eps, weights, cls_divergence: as in
        ``ours_strategy.ours``.

    Returns:
      (box_masks [K, h, w] bool, ``consistency_scores_np`` dict).
    """
    height, width = image.shape[:2]
    h, w = seg_probs.shape[:2]
    to_grid = np.array([w / width, h / height] * 2)
    masks = np.zeros((len(boxes), h, w), bool)
    for k in range(len(boxes)):
        if not det_valid[k]:
            continue
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        dx, dy = context_margin * (x2 - x1), context_margin * (y2 - y1)
        window = np.clip([x1 - dx, y1 - dy, x2 + dx, y2 + dy], 0, [width, height, width, height])
        crop = crop_and_resize_np(image, window, (crop_size, crop_size))
        crop = np.round(np.clip(crop, 0, 255)).astype(np.uint8)
        logits = np.asarray(segment_fn(crop[None]), np.float64)[0]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        c = det_to_seg[int(np.argmax(det_probs[k]))]
        masks[k] = box_mask_np(
            probs[..., c], window * to_grid, np.asarray(boxes[k]) * to_grid, tau=tau, out_hw=(h, w)
        )
    scores = consistency_scores_np(
        seg_probs,
        masks,
        det_probs,
        det_valid,
        det_to_seg,
        eps=eps,
        weights=weights,
        cls_divergence=cls_divergence,
    )
    return masks, scores
