"""Raw CenterNet outputs -> fixed-size detections with class distributions. Pure.

Paper III-A; docs/design.md.

Peaks are found on the per-cell maximum over classes (3x3 max-pool, no NMS), so each cell
yields at most one detection; its class distribution is the cell's per-class heat-map
probabilities normalised to sum to 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtal_jax import structs
from mtal_jax.models.multitask import STRIDE


def decode(
    outputs: structs.Outputs, *, max_detections: int = 50, score_threshold: float = 0.1
) -> structs.Detections:
    """Decodes the top-K peaks of the heat map.

    Args:
      outputs: model outputs with heatmap_logits [B, h, w, C_det], box_size [B, h, w, 2]
        (cells), box_offset [B, h, w, 2] (cells).
      max_detections: K, static.
      score_threshold: detections with a peak probability <= this are invalid.

    Returns:
      ``structs.Detections`` with boxes [B, K, 4] xyxy in input pixels (clipped to the
      image), det_probs [B, K, C_det] (rows sum to 1), scores [B, K], labels [B, K],
      valid [B, K].
    """
    heat = jax.nn.sigmoid(outputs.heatmap_logits.astype(jnp.float32))  # [B, h, w, C]
    b, h, w, c = heat.shape
    cell_max = jnp.max(heat, axis=-1)  # [B, h, w]
    pooled = jax.lax.reduce_window(cell_max, -jnp.inf, jax.lax.max, (1, 3, 3), (1, 1, 1), "SAME")
    peaks = jnp.where(cell_max >= pooled, cell_max, 0.0).reshape(b, h * w)
    k = min(max_detections, h * w)
    scores, flat = jax.lax.top_k(peaks, k)  # [B, K]
    ys, xs = flat // w, flat % w

    def gather(x):  # [B, h, w, D] -> [B, K, D]
        return jnp.take_along_axis(x.reshape(b, h * w, -1), flat[..., None], axis=1)

    probs = gather(heat)
    det_probs = probs / jnp.maximum(jnp.sum(probs, -1, keepdims=True), 1e-12)
    size = gather(outputs.box_size.astype(jnp.float32))
    offset = gather(outputs.box_offset.astype(jnp.float32))
    cx = (xs + offset[..., 0]) * STRIDE
    cy = (ys + offset[..., 1]) * STRIDE
    half_w, half_h = size[..., 0] * STRIDE / 2, size[..., 1] * STRIDE / 2
    boxes = jnp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
    boxes = jnp.clip(boxes, 0.0, jnp.array([w, h, w, h], jnp.float32) * STRIDE)
    valid = (
        (scores > score_threshold)
        & (boxes[..., 2] > boxes[..., 0])
        & (boxes[..., 3] > boxes[..., 1])
    )
    if k < max_detections:  # tiny maps: pad to the static K
        pad = max_detections - k
        p = lambda x, v=0: jnp.pad(
            x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2), constant_values=v
        )
        boxes, det_probs, scores, valid = (
            p(boxes),
            p(det_probs, 1.0 / c),
            p(scores),
            p(valid, False),
        )
    return structs.Detections(
        boxes=boxes,
        det_probs=det_probs,
        scores=jnp.where(valid, scores, 0.0),
        labels=jnp.argmax(det_probs, -1).astype(jnp.int32),
        valid=valid,
    )
