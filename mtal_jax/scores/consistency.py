"""Detection-segmentation inconsistency scores S_loc, S_cls, S_seg (paper III-D..III-G).

Every score is an *inconsistency*: higher = the two tasks disagree more = more informative.
Each paper equation is one per-image function below; ``consistency_scores`` vmaps them
over the batch (the divergences of S_cls are in ``divergence``). Dimension letters: B
batch, K detection slots, C_det detection classes, C_seg segmentation classes, h w the
segmentation output grid.

Contract (lab = argmax segmentation, c_k = ``det_to_seg[argmax det_probs_k]``, BM_k the
BoxMask of detection k; only the slots of ``det_valid`` count):

* S_loc (Eq. 1, as an inconsistency) = ``1 - mean_{BM_k} [lab == c_k]``; 1 for an empty BM_k.
* S_cls (Eq. 2): q = ``det_probs_to_seg`` (eps only on the classes detection does not
  predict). ``cls_divergence="js"`` (default): mean Jensen-Shannon divergence in bits of
  p_ij and q over BM_k, in [0, 1] like the other two scores (paper III-F: the scores share
  one range). ``"kl"``: the paper's Eq. 2 verbatim, ``sum_{BM_k} [KL(p||q) + KL(q||p)] /
  (2 |BM_k|)``, which with a negligible eps reaches about 2 ln(1 / eps) = 27.6 and then
  decides the combined score alone. 0 for an empty BM_k.
* S_seg (Eq. 3): fraction of the pixels outside every valid BoxMask whose lab is a
  detection class; 0 when no pixel lies outside.
* S_box = w_loc S_loc + w_cls S_cls (valid slots), score = w_seg S_seg + max_k S_box (the max
  is 0 without a valid slot, so an image without a scored detection gets S_seg over the
  whole image).
* Only image content counts (``pixel_valid``): the padding that letterboxes an image into
  the network input is in no BoxMask and outside BM' too, so what the network predicts on
  it (it is never trained there) changes no score.

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
import numpy as np
from jax.typing import ArrayLike

from mtal_jax.scores import divergence

CLS_DIVERGENCES = ("js", "kl")
"""Divergences of S_cls: ``"js"`` (default, bounded) and ``"kl"`` (the paper's Eq. 2)."""


@flax.struct.dataclass
class ConsistencyScores:
    """Outputs of ``consistency_scores`` (all float32, invalid detection slots are 0).

    Attributes:
      s_loc: [B, K] localisation inconsistency (Eq. 1, as 1 - agreement).
      s_cls: [B, K] classification inconsistency (Eq. 2, or its Jensen-Shannon variant).
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

    ``q_c = eps`` for the segmentation classes that detection does not predict; for a class
    c in ``det_to_seg``, ``q_c`` = the sum of the detection probabilities mapped to c (two
    detection classes may share one), with no eps added (the paper sets only the other
    classes to a negligible value); then ``q /= sum(q)``.

    Args:
      det_probs: [K, C_det] rows summing to 1.
      det_to_seg: [C_det] int.
      num_seg_classes: C_seg (static).
      eps: probability of the classes detection does not predict.

    Returns:
      [K, C_seg] float32 rows summing to 1.
    """
    det_probs = jnp.asarray(det_probs, jnp.float32)
    det_to_seg = jnp.asarray(det_to_seg, jnp.int32)
    q = jnp.zeros((det_probs.shape[0], num_seg_classes), jnp.float32)
    q = q.at[:, det_to_seg].add(det_probs)  # duplicates add up
    is_det_class = jnp.zeros((num_seg_classes,), bool).at[det_to_seg].set(True)
    q = jnp.where(is_det_class, q, eps)
    return q / jnp.sum(q, axis=-1, keepdims=True)


def localization_inconsistency(
    seg_labels: ArrayLike, box_masks: ArrayLike, box_classes: ArrayLike
) -> jax.Array:
    """S_loc of each box of one image (paper Eq. 1, turned into an inconsistency).

    ``S_loc = 1 - (1 / |BM|) * sum_{(i, j) in BM} [lab(i, j) == c]``; 1.0 for an empty BoxMask.

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


def classification_inconsistency(
    seg_probs: ArrayLike,
    box_masks: ArrayLike,
    box_probs: ArrayLike,
    *,
    eps: float = 1e-6,
    cls_divergence: str = "js",
) -> jax.Array:
    """S_cls of each box of one image (paper Eq. 2; bounded JS variant by default).

    * ``"kl"`` (Eq. 2 verbatim): ``1 / (2 |BM|) * sum_{BM} [KL(p_ij || q) + KL(q || p_ij)]``,
      unbounded (up to about 2 ln(1 / eps)).
    * ``"js"``: ``1 / |BM| * sum_{BM} JS(p_ij, q)`` in bits, in [0, 1] like S_loc and S_seg
      (the paper means its three scores to share one range, III-F).

    0.0 for an empty BoxMask.

    Args:
      seg_probs: [h, w, C_seg].
      box_masks: [K, h, w] bool.
      box_probs: [K, C_seg] transformed detection distributions (``det_probs_to_seg``).
      eps: log floor.
      cls_divergence: ``"js"`` or ``"kl"``.

    Returns:
      [K] float32 >= 0 (<= 1 for ``"js"``).
    """
    box_masks = jnp.asarray(box_masks, bool)
    if cls_divergence == "js":
        div, scale = divergence.js_map(seg_probs, box_probs, eps=eps), 1.0  # [K, h, w]
    elif cls_divergence == "kl":
        div, scale = divergence.symmetric_kl_map(seg_probs, box_probs, eps=eps), 2.0
    else:
        raise ValueError(f"cls_divergence must be one of {CLS_DIVERGENCES}, got {cls_divergence!r}")
    count = jnp.sum(box_masks, axis=(1, 2))
    total = jnp.sum(jnp.where(box_masks, div, 0.0), axis=(1, 2))
    return jnp.where(count > 0, total / (scale * jnp.maximum(count, 1)), 0.0)


def segmentation_inconsistency(
    seg_labels: ArrayLike,
    box_masks: ArrayLike,
    det_to_seg: ArrayLike,
    num_seg_classes: int,
    pixel_valid: ArrayLike | None = None,
) -> jax.Array:
    """S_seg of one image (paper Eq. 3).

    The fraction of the content pixels outside the union of the BoxMasks (BM') whose
    segmentation label is a detection class; 0.0 when no such pixel lies outside.

    Args:
      seg_labels: [h, w] int argmax segmentation class.
      box_masks: [K, h, w] bool BoxMasks of the valid detections (others all False).
      det_to_seg: [C_det] int; its values form the set of detection classes.
      num_seg_classes: C_seg (static).
      pixel_valid: [h, w] bool, False for padding, or None (every pixel is content).

    Returns:
      [] float32 in [0, 1].
    """
    outside = ~jnp.any(jnp.asarray(box_masks, bool), axis=0)  # [h, w] = BM'
    if pixel_valid is not None:
        outside = outside & jnp.asarray(pixel_valid, bool)
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


def _image_scores(
    seg_probs, box_masks, det_probs, det_valid, pixel_valid, det_to_seg, *, eps, weights,
    cls_divergence,
):  # fmt: skip
    """All scores of one image; see ``consistency_scores``."""
    num_seg_classes = seg_probs.shape[-1]
    # invalid slots have no BoxMask, and no BoxMask reaches into the padding
    box_masks = box_masks & det_valid[:, None, None] & pixel_valid[None]
    seg_labels = jnp.argmax(seg_probs, axis=-1)  # [h, w]
    classes = box_seg_classes(det_probs, det_to_seg)  # [K]
    box_probs = det_probs_to_seg(det_probs, det_to_seg, num_seg_classes, eps=eps)  # [K, C_seg]
    s_loc = localization_inconsistency(seg_labels, box_masks, classes)
    s_cls = classification_inconsistency(
        seg_probs, box_masks, box_probs, eps=eps, cls_divergence=cls_divergence
    )
    s_seg = segmentation_inconsistency(
        seg_labels, box_masks, det_to_seg, num_seg_classes, pixel_valid
    )
    s_box, score = combine_scores(s_loc, s_cls, s_seg, det_valid, weights)
    return ConsistencyScores(
        s_loc=jnp.where(det_valid, s_loc, 0.0),
        s_cls=jnp.where(det_valid, s_cls, 0.0),
        s_seg=s_seg,
        s_box=s_box,
        score=score,
    )


def check_eps(eps: float) -> None:
    """Raises ``ValueError`` for an ``eps`` outside (0, 1): with eps <= 0, 0 log 0 is NaN and
    every score NaN (selection then falls back to pool order)."""
    if not 0.0 < float(eps) < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")


def _check_ranks(seg_probs, box_masks, det_probs, det_valid, det_to_seg) -> None:
    """Raises ``ValueError`` naming the first input of the wrong rank (an unbatched call,
    e.g., passes [h, w, C_seg] for [B, h, w, C_seg])."""
    expected = (
        ("seg_probs", seg_probs, "[B, h, w, C_seg]"),
        ("box_masks", box_masks, "[B, K, h, w]"),
        ("det_probs", det_probs, "[B, K, C_det]"),
        ("det_valid", det_valid, "[B, K]"),
        ("det_to_seg", det_to_seg, "[C_det]"),
    )
    for name, array, shape in expected:
        rank = shape.count(",") + 1
        if jnp.ndim(array) != rank:
            unbatched = jnp.ndim(array) == rank - 1 and shape.startswith("[B")
            hint = " (one image is a batch of one: add a leading axis)" if unbatched else ""
            raise ValueError(f"{name} must be {shape}, got shape {jnp.shape(array)}{hint}")


def _checked_det_to_seg(det_to_seg: ArrayLike, num_seg_classes: int) -> jax.Array:
    """``det_to_seg`` as int32, refused when not integer or, when its values are known
    (not traced), outside [0, ``num_seg_classes``): an id out of range would silently drop
    a class from S_cls's q and S_seg while S_loc counts its boxes as all wrong."""
    array = jnp.asarray(det_to_seg)
    if not jnp.issubdtype(array.dtype, jnp.integer):
        raise ValueError(f"det_to_seg must hold integer class ids, got dtype {array.dtype}")
    try:
        values = np.asarray(det_to_seg)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        values = None  # traced under jit: checked by the caller that built it
    if values is not None and values.size and (values.min() < 0 or values.max() >= num_seg_classes):
        raise ValueError(
            f"det_to_seg must name segmentation classes in [0, {num_seg_classes}), got "
            f"{values.tolist()}"
        )
    return array.astype(jnp.int32)


def consistency_scores(
    seg_probs: ArrayLike,
    box_masks: ArrayLike,
    det_probs: ArrayLike,
    det_valid: ArrayLike,
    det_to_seg: ArrayLike,
    *,
    eps: float = 1e-6,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    cls_divergence: str = "js",
    pixel_valid: ArrayLike | None = None,
) -> ConsistencyScores:
    """S_loc, S_cls, S_seg, S_box and the combined score of a batch (paper III-D..G, Algorithm 1).

    Args:
      seg_probs: [B, h, w, C_seg] softmax of the full-image segmentation.
      box_masks: [B, K, h, w] bool BoxMasks (``boxmask.box_masks_from_crops``).
      det_probs: [B, K, C_det] detection class distributions (rows sum to 1).
      det_valid: [B, K] bool, True for real detections; invalid slots score 0 and their
        masks are ignored.
      det_to_seg: [C_det] int segmentation id of each detection class.
      eps: log floor of the divergences and probability of the classes detection does
        not predict in p~_cls (``det_probs_to_seg``).
      weights: (w_loc, w_cls, w_seg).
      cls_divergence: S_cls divergence, ``"js"`` (default: mean Jensen-Shannon divergence in
        bits, in [0, 1]) or ``"kl"`` (the paper's Eq. 2, symmetric KL, unbounded).
      pixel_valid: [B, h, w] bool, False for the padding around the image content
        (``structs.Predictions.pixel_valid``), or None (every pixel is content).

    Returns:
      ``ConsistencyScores``; higher = more inconsistent = more informative.

    Under ``jax.jit``, ``eps``, ``weights`` and ``cls_divergence`` choose the computation:
    mark them static (``jax.jit(consistency_scores, static_argnames=("eps", "weights",
    "cls_divergence"))``); the arrays may change freely without retracing.

    Raises:
      ValueError: on arrays of the wrong rank or inconsistent shapes, a ``det_to_seg`` that
        is not integer or (when its values are known, outside ``jit``) names no
        segmentation class, ``weights`` that are not three numbers, an unknown
        ``cls_divergence`` or an ``eps`` outside (0, 1).
    """
    if cls_divergence not in CLS_DIVERGENCES:
        raise ValueError(f"cls_divergence must be one of {CLS_DIVERGENCES}, got {cls_divergence!r}")
    check_eps(eps)
    if len(tuple(weights)) != 3:
        raise ValueError(f"weights must be three numbers (w_loc, w_cls, w_seg), got {weights!r}")
    seg_probs = jnp.asarray(seg_probs, jnp.float32)
    box_masks = jnp.asarray(box_masks, bool)
    det_probs = jnp.asarray(det_probs, jnp.float32)
    det_valid = jnp.asarray(det_valid, bool)
    _check_ranks(seg_probs, box_masks, det_probs, det_valid, det_to_seg)
    det_to_seg = _checked_det_to_seg(det_to_seg, seg_probs.shape[-1])
    b, h, w, _ = seg_probs.shape
    k = det_valid.shape[1]
    pixel_valid = (
        jnp.ones((b, h, w), bool) if pixel_valid is None else jnp.asarray(pixel_valid, bool)
    )
    if (
        box_masks.shape != (b, k, h, w)
        or pixel_valid.shape != (b, h, w)
        or det_probs.shape[:2] != (b, k)
        or det_valid.shape != (b, k)
        or det_to_seg.shape != (det_probs.shape[2],)
    ):
        raise ValueError(
            "inconsistent shapes: seg_probs [B,h,w,C_seg]="
            f"{seg_probs.shape}, box_masks [B,K,h,w]={box_masks.shape}, det_probs [B,K,C_det]="
            f"{det_probs.shape}, det_valid [B,K]={det_valid.shape}, det_to_seg [C_det]="
            f"{det_to_seg.shape}, pixel_valid [B,h,w]={pixel_valid.shape}"
        )
    per_image = functools.partial(
        _image_scores, eps=eps, weights=tuple(weights), cls_divergence=cls_divergence
    )
    per_image = jax.vmap(per_image, in_axes=(0, 0, 0, 0, 0, None))
    return per_image(seg_probs, box_masks, det_probs, det_valid, pixel_valid, det_to_seg)
