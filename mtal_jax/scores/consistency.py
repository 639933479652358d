"""Detection-segmentation inconsistency scores S_loc, S_cls, S_seg (paper III-D..III-G, SPEC §5).

Every score is an *inconsistency*: higher = the two tasks disagree more = more informative.
Each paper equation is one per-image function below; ``consistency_scores`` vmaps them
over the batch. Dimension letters: B batch, K detection slots, C_det detection classes,
C_seg segmentation classes, h w the segmentation output grid.

Examples:
  >>> import jax.numpy as jnp
  >>> seg_probs = jnp.zeros((1, 2, 2, 3)).at[..., 1].set(1.0)      # every pixel is class 1
  >>> box_masks = jnp.ones((1, 1, 2, 2), bool)                     # one box covers the image
  >>> out = consistency_scores(seg_probs, box_masks, jnp.array([[[1.0]]]),
  ...                          jnp.array([[True]]), jnp.array([1]))
  >>> round(float(out.s_loc[0, 0]), 3), round(float(out.score[0]), 3)
  (0.0, 0.0)
"""

from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

_HIGHEST = jax.lax.Precision.HIGHEST


@flax.struct.dataclass
class ConsistencyScores:
    """Outputs of ``consistency_scores`` (all float32, invalid detection slots are 0).

    Attributes:
      s_loc: [B, K] localisation inconsistency (Eq. 1, as 1 - agreement).
      s_cls: [B, K] classification inconsistency (Eq. 2).
      s_seg: [B] segmentation inconsistency (Eq. 3).
      s_box: [B, K] ``w_loc * s_loc + w_cls * s_cls`` (Algorithm 1, line 8).
      score: [B] ``w_seg * s_seg + max_k s_box`` (Algorithm 1, line 13).
    """

    s_loc: jax.Array
    s_cls: jax.Array
    s_seg: jax.Array
    s_box: jax.Array
    score: jax.Array


def box_seg_classes(det_probs: ArrayLike, det_to_seg: ArrayLike) -> jax.Array:
    """Segmentation class c_k of each detection: ``det_to_seg[argmax det_probs]``.

    Args:
      det_probs: [..., C_det] class distribution of each detection.
      det_to_seg: [C_det] int segmentation id of each detection class.

    Returns:
      [...] int32.
    """
    det_to_seg = jnp.asarray(det_to_seg, jnp.int32)
    return det_to_seg[jnp.argmax(jnp.asarray(det_probs), axis=-1)]


def det_probs_to_seg(
    det_probs: ArrayLike, det_to_seg: ArrayLike, num_seg_classes: int, *, eps: float = 1e-6
) -> jax.Array:
    """The transformed detection distribution p~_cls over segmentation classes (paper III-E).

    Classes that detection does not predict get ``eps``; detection probabilities are summed
    into their segmentation class (two detection classes may share one), then normalised.

    Args:
      det_probs: [K, C_det] rows summing to 1.
      det_to_seg: [C_det] int.
      num_seg_classes: C_seg (static).
      eps: floor probability.

    Returns:
      [K, C_seg] float32 rows summing to 1.
    """
    det_probs = jnp.asarray(det_probs, jnp.float32)
    q = jnp.full((det_probs.shape[0], num_seg_classes), eps, jnp.float32)
    q = q.at[:, jnp.asarray(det_to_seg, jnp.int32)].add(det_probs)  # duplicates add up
    return q / jnp.sum(q, axis=-1, keepdims=True)


def localization_inconsistency(
    seg_labels: ArrayLike, box_masks: ArrayLike, box_classes: ArrayLike
) -> jax.Array:
    """S_loc of each box of one image (paper Eq. 1, turned into an inconsistency).

    ``S_loc = 1 - (1 / |BM|) * sum_{(i, j) in BM} [lab(i, j) == c]``; 1.0 for an empty BoxMask
    (SPEC §5).

    Args:
      seg_labels: [h, w] int argmax segmentation class.
      box_masks: [K, h, w] bool BoxMasks.
      box_classes: [K] int segmentation class c_k of each box.

    Returns:
      [K] float32 in [0, 1].
    """
    box_masks = jnp.asarray(box_masks, bool)
    agree = jnp.asarray(seg_labels)[None] == jnp.asarray(box_classes)[:, None, None]  # [K, h, w]
    count = jnp.sum(box_masks, axis=(1, 2))
    hits = jnp.sum(box_masks & agree, axis=(1, 2))
    return jnp.where(count > 0, 1.0 - hits / jnp.maximum(count, 1), 1.0).astype(jnp.float32)


def symmetric_kl_map(seg_probs: ArrayLike, box_probs: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
    """``KL(p_ij || q_k) + KL(q_k || p_ij)`` for every pixel and box (the summand of Eq. 2).

    ``KL(p || q) = sum_c p_c * (log max(p_c, eps) - log max(q_c, eps))`` (SPEC §5). The sum of
    both directions is ``sum_c (p_c - q_c) (log p_c - log q_c)``, expanded into four
    contractions so no [K, h, w, C] array is built.

    Args:
      seg_probs: [h, w, C_seg] segmentation probabilities p.
      box_probs: [K, C_seg] transformed detection distributions q.
      eps: log floor.

    Returns:
      [K, h, w] float32 >= 0.
    """
    p = jnp.asarray(seg_probs, jnp.float32)
    q = jnp.asarray(box_probs, jnp.float32)
    log_p = jnp.log(jnp.maximum(p, eps))
    log_q = jnp.log(jnp.maximum(q, eps))
    p_log_p = jnp.sum(p * log_p, axis=-1)  # [h, w]
    q_log_q = jnp.sum(q * log_q, axis=-1)  # [K]
    p_log_q = jnp.einsum("hwc,kc->khw", p, log_q, precision=_HIGHEST)
    q_log_p = jnp.einsum("kc,hwc->khw", q, log_p, precision=_HIGHEST)
    sym = p_log_p[None] - p_log_q - q_log_p + q_log_q[:, None, None]
    return jnp.maximum(sym, 0.0)  # exact value is >= 0; clamp rounding error


def classification_inconsistency(
    seg_probs: ArrayLike, box_masks: ArrayLike, box_probs: ArrayLike, *, eps: float = 1e-6
) -> jax.Array:
    """S_cls of each box of one image (paper Eq. 2).

    ``S_cls = 1 / (2 |BM|) * sum_{(i, j) in BM} [KL(p_ij || q) + KL(q || p_ij)]``; 0.0 for an
    empty BoxMask (SPEC §5).

    Args:
      seg_probs: [h, w, C_seg].
      box_masks: [K, h, w] bool.
      box_probs: [K, C_seg] transformed detection distributions (``det_probs_to_seg``).
      eps: log floor.

    Returns:
      [K] float32 >= 0.
    """
    box_masks = jnp.asarray(box_masks, bool)
    sym = symmetric_kl_map(seg_probs, box_probs, eps=eps)  # [K, h, w]
    count = jnp.sum(box_masks, axis=(1, 2))
    total = jnp.sum(jnp.where(box_masks, sym, 0.0), axis=(1, 2))
    return jnp.where(count > 0, total / (2.0 * jnp.maximum(count, 1)), 0.0)


def segmentation_inconsistency(
    seg_labels: ArrayLike, box_masks: ArrayLike, det_to_seg: ArrayLike, num_seg_classes: int
) -> jax.Array:
    """S_seg of one image (paper Eq. 3).

    The fraction of pixels outside the union of the BoxMasks (BM') whose segmentation
    label is a detection class; 0.0 when no pixel lies outside.

    Args:
      seg_labels: [h, w] int argmax segmentation class.
      box_masks: [K, h, w] bool BoxMasks of the valid detections (others all False).
      det_to_seg: [C_det] int; its values form the set of detection classes.
      num_seg_classes: C_seg (static).

    Returns:
      [] float32 in [0, 1].
    """
    outside = ~jnp.any(jnp.asarray(box_masks, bool), axis=0)  # [h, w] = BM'
    is_det_class = jnp.zeros((num_seg_classes,), bool).at[jnp.asarray(det_to_seg)].set(True)
    hits = jnp.sum(outside & is_det_class[jnp.asarray(seg_labels)])
    count = jnp.sum(outside)
    return jnp.where(count > 0, hits / jnp.maximum(count, 1), 0.0).astype(jnp.float32)


def combine_scores(
    s_loc: ArrayLike,
    s_cls: ArrayLike,
    s_seg: ArrayLike,
    det_valid: ArrayLike,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> tuple[jax.Array, jax.Array]:
    """Algorithm 1: per-box ``S_box`` and the image score ``w_seg S_seg + max_k S_box``.

    Args:
      s_loc: [K] float.
      s_cls: [K] float.
      s_seg: [] float.
      det_valid: [K] bool.
      weights: (w_loc, w_cls, w_seg); the 0/1 settings are the ablations of Table I.

    Returns:
      (s_box [K] float32, 0 for invalid slots; score [] float32, the max term is 0 with no
      valid slot).
    """
    w_loc, w_cls, w_seg = weights
    det_valid = jnp.asarray(det_valid, bool)
    s_box = jnp.where(det_valid, w_loc * jnp.asarray(s_loc) + w_cls * jnp.asarray(s_cls), 0.0)
    best_box = jnp.max(jnp.where(det_valid, s_box, -jnp.inf), initial=-jnp.inf)
    best_box = jnp.where(jnp.any(det_valid), best_box, 0.0)
    return s_box.astype(jnp.float32), (w_seg * jnp.asarray(s_seg) + best_box).astype(jnp.float32)


def _image_scores(seg_probs, box_masks, det_probs, det_valid, det_to_seg, *, eps, weights):
    """All scores of one image; see ``consistency_scores``."""
    num_seg_classes = seg_probs.shape[-1]
    box_masks = box_masks & det_valid[:, None, None]  # invalid slots have no BoxMask
    seg_labels = jnp.argmax(seg_probs, axis=-1)  # [h, w]
    classes = box_seg_classes(det_probs, det_to_seg)  # [K]
    box_probs = det_probs_to_seg(det_probs, det_to_seg, num_seg_classes, eps=eps)  # [K, C_seg]
    s_loc = localization_inconsistency(seg_labels, box_masks, classes)
    s_cls = classification_inconsistency(seg_probs, box_masks, box_probs, eps=eps)
    s_seg = segmentation_inconsistency(seg_labels, box_masks, det_to_seg, num_seg_classes)
    s_box, score = combine_scores(s_loc, s_cls, s_seg, det_valid, weights)
    return ConsistencyScores(
        s_loc=jnp.where(det_valid, s_loc, 0.0),
        s_cls=jnp.where(det_valid, s_cls, 0.0),
        s_seg=s_seg,
        s_box=s_box,
        score=score,
    )


def consistency_scores(
    seg_probs: ArrayLike,
    box_masks: ArrayLike,
    det_probs: ArrayLike,
    det_valid: ArrayLike,
    det_to_seg: ArrayLike,
    *,
    eps: float = 1e-6,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> ConsistencyScores:
    """S_loc, S_cls, S_seg, S_box and the combined score of a batch (SPEC §5, Algorithm 1).

    Args:
      seg_probs: [B, h, w, C_seg] softmax of the full-image segmentation.
      box_masks: [B, K, h, w] bool BoxMasks (``boxmask.box_masks_from_crops``).
      det_probs: [B, K, C_det] detection class distributions (rows sum to 1).
      det_valid: [B, K] bool, True for real detections; invalid slots score 0 and their
        masks are ignored.
      det_to_seg: [C_det] int segmentation id of each detection class.
      eps: probability floor of the KL divergences (and of p~_cls).
      weights: (w_loc, w_cls, w_seg).

    Returns:
      ``ConsistencyScores``; higher = more inconsistent = more informative.

    Raises:
      ValueError: on inconsistent shapes.
    """
    seg_probs = jnp.asarray(seg_probs, jnp.float32)
    box_masks = jnp.asarray(box_masks, bool)
    det_probs = jnp.asarray(det_probs, jnp.float32)
    det_valid = jnp.asarray(det_valid, bool)
    det_to_seg = jnp.asarray(det_to_seg, jnp.int32)
    b, h, w, _ = seg_probs.shape
    k = det_valid.shape[1]
    if (
        box_masks.shape != (b, k, h, w)
        or det_probs.shape[:2] != (b, k)
        or det_valid.shape != (b, k)
        or det_to_seg.shape != (det_probs.shape[2],)
    ):
        raise ValueError(
            "inconsistent shapes: seg_probs [B,h,w,C_seg]="
            f"{seg_probs.shape}, box_masks [B,K,h,w]={box_masks.shape}, det_probs [B,K,C_det]="
            f"{det_probs.shape}, det_valid [B,K]={det_valid.shape}, det_to_seg [C_det]="
            f"{det_to_seg.shape}"
        )
    per_image = functools.partial(_image_scores, eps=eps, weights=tuple(weights))
    per_image = jax.vmap(per_image, in_axes=(0, 0, 0, 0, None))
    return per_image(seg_probs, box_masks, det_probs, det_valid, det_to_seg)
