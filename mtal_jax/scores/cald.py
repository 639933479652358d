"""CALD: consistency-based active learning for detection (Yu et al. 2022; paper IV-B).

Follows the official code (we1pingyu/CALD ``cald_train.py``, ``cald/cald_helper.py``;
docs/baselines.md, "CALD"):

1. ``make_augment_extra`` runs the detector on augmented copies of each image (flip,
   cutout x2, resize 0.8, rotation 5 degrees; ``ops/augment.py``) through
   ``ctx.apply_fn`` / ``ctx.decode_fn`` and maps the reference detections into each
   augmented frame.
2. ``consistency``: for each reference box i, match the augmented detection j* of highest
   IoU and compute C_i = IoU + 0.5 (1 - JS(p_i, q_j*)) (pm_i + pm_j*) in [0, 2]; an
   augmentation's value is min(1, min_i |C_i - base_point|); the image's is the mean over
   augmentations. LOWER = more informative in CALD. Our ``score`` is its NEGATION, so that
   higher = more informative as everywhere else in the library.
3. ``class_distribution_select``: the two-stage step. Keep the ``int(mutual_range *
   budget)`` best-scored images, take those whose class-score vector is all zero, then
   those whose class-score vector diverges most (JS of softmaxes) from the labeled set's
   class histogram.

Mapping of the Faster R-CNN quantities onto our CenterNet detections (our choice): the
detection confidence ``Detections.scores`` plays ``prob_max``; the class distribution
``scores_cls`` (softmax over background + C classes in the reference) is
``[1 - score, score * det_probs]`` (``cls_dist="with_background"``, default) or
``det_probs`` alone (``"foreground"``).

Where the labeled histogram comes from: the shell computes it each cycle with
``labeled_class_histogram`` (mean ground-truth object count per class over the labeled
images, as the reference's ``cls_kldiv``) and passes it to the factory as
``labeled_class_hist``; the per-image class-score vectors travel as the strategy's
``features``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from mtal_jax import selection
from mtal_jax.ops import augment
from mtal_jax.ops import boxes as box_ops

AUGMENTATIONS = ("flip", "cutout", "resize", "rotation")
CLS_DISTS = ("with_background", "foreground")
EXTRA_KEYS = (
    "cald_ref_boxes",
    "cald_boxes",
    "cald_probs",
    "cald_scores",
    "cald_labels",
    "cald_valid",
)


def reference_mask(valid: ArrayLike, *, max_ref_boxes: int | None = 40, subsample: int = 50):
    """Which reference detections CALD uses (the reference's ``> 40`` subsampling quirk).

    With more than ``max_ref_boxes`` valid detections, the reference keeps those of rank
    ``round(linspace(0, n - 1, subsample))`` (score order; numpy rounding, half to even).

    Args:
      valid: [..., K] bool, valid detections (score-sorted slots).
      max_ref_boxes: threshold; None disables the subsampling.
      subsample: number of linspace points.

    Returns:
      [..., K] bool.
    """
    valid = jnp.asarray(valid, bool)
    if max_ref_boxes is None:
        return valid
    n = jnp.sum(valid, axis=-1, keepdims=True).astype(jnp.float32)  # [..., 1]
    rank = jnp.cumsum(valid, axis=-1) - 1  # [..., K] rank among valid slots
    ks = jnp.arange(subsample, dtype=jnp.float32)
    kept = jnp.round(ks * (n - 1.0) / (subsample - 1))  # [..., S]
    hit = jnp.any(rank[..., :, None] == kept[..., None, :].astype(rank.dtype), axis=-1)
    return jnp.where(n > max_ref_boxes, valid & hit, valid)


def class_distribution(det_probs: ArrayLike, scores: ArrayLike, cls_dist: str) -> jax.Array:
    """The per-detection distribution compared by JS ([..., C+1] or [..., C])."""
    det_probs = jnp.asarray(det_probs, jnp.float32)
    if cls_dist == "foreground":
        return det_probs
    if cls_dist == "with_background":
        s = jnp.asarray(scores, jnp.float32)[..., None]
        return jnp.concatenate([1.0 - s, s * det_probs], axis=-1)
    raise ValueError(f"unknown cls_dist {cls_dist!r}; valid: {CLS_DISTS}")


def js_divergence(p: ArrayLike, q: ArrayLike) -> jax.Array:
    """Jensen-Shannon divergence (natural log) of distributions on the last axis, >= 0.

    As ``scipy.stats.entropy`` in the reference, each input is first normalised to sum 1.
    """
    p = jnp.asarray(p, jnp.float32)
    q = jnp.asarray(q, jnp.float32)
    p = p / jnp.maximum(jnp.sum(p, -1, keepdims=True), 1e-12)
    q = q / jnp.maximum(jnp.sum(q, -1, keepdims=True), 1e-12)
    m = 0.5 * (p + q)

    def kl(a, b):
        return jnp.sum(
            jnp.where(
                a > 0,
                a * (jnp.log(jnp.where(a > 0, a, 1.0)) - jnp.log(jnp.where(a > 0, b, 1.0))),
                0.0,
            ),
            -1,
        )

    return jnp.maximum(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0)


def augmentation_consistency(
    ref_boxes: ArrayLike,
    ref_dist: ArrayLike,
    ref_pm: ArrayLike,
    ref_use: ArrayLike,
    aug_boxes: ArrayLike,
    aug_dist: ArrayLike,
    aug_pm: ArrayLike,
    aug_valid: ArrayLike,
    *,
    base_point: float = 1.3,
) -> jax.Array:
    """CALD's value of one augmentation of one image (lower = more informative).

    C_i = max_j IoU(b_i, b'_j) + 0.5 (1 - JS(p_i, q_j*)) (pm_i + pm'_j*), j* = argmax_j IoU
    (the first valid augmented detection when every IoU is 0, as the reference's argmax);
    value = min(1, min_i |C_i - base_point|), and 0.0 when the augmented image has no
    detection.

    Args:
      ref_boxes: [K, 4] reference boxes mapped into the augmented frame.
      ref_dist: [K, C'] reference class distributions.
      ref_pm: [K] reference confidences.
      ref_use: [K] bool, reference detections taken into account.
      aug_boxes: [K2, 4] detections on the augmented image.
      aug_dist: [K2, C'] their class distributions.
      aug_pm: [K2] their confidences.
      aug_valid: [K2] bool.
      base_point: beta (CALD ``-bp``, 1.3).

    Returns:
      scalar float32 in [0, 1].
    """
    aug_valid = jnp.asarray(aug_valid, bool)
    iou = box_ops.pairwise_iou(ref_boxes, aug_boxes)  # [K, K2]
    iou = jnp.where(aug_valid[None, :], iou, -1.0)
    j = jnp.argmax(iou, axis=1)  # [K]
    max_iou = jnp.maximum(jnp.max(iou, axis=1), 0.0)
    q = jnp.asarray(aug_dist, jnp.float32)[j]  # [K, C']
    js = js_divergence(ref_dist, q)
    c = max_iou + 0.5 * (1.0 - js) * (jnp.asarray(ref_pm, jnp.float32) + jnp.asarray(aug_pm)[j])
    dev = jnp.where(jnp.asarray(ref_use, bool), jnp.abs(c - base_point), 1.0)
    value = jnp.minimum(jnp.min(dev), 1.0)
    return jnp.where(jnp.any(aug_valid), value, 0.0)


def class_score_vector(scores: ArrayLike, labels: ArrayLike, valid: ArrayLike, num_classes: int):
    """Per-class maximum detection confidence (0 for absent classes); [..., K] -> [..., C]."""
    onehot = jax.nn.one_hot(labels, num_classes, dtype=bool) & jnp.asarray(valid, bool)[..., None]
    return jnp.max(jnp.where(onehot, jnp.asarray(scores, jnp.float32)[..., None], 0.0), axis=-2)


def consistency(
    preds: Any,
    *,
    base_point: float = 1.3,
    cls_dist: str = "with_background",
    max_ref_boxes: int | None = 40,
) -> dict[str, jax.Array]:
    """CALD image consistency and class-score vectors from ``Predictions`` with CALD extras.

    Args:
      preds: ``structs.Predictions`` whose ``extras`` hold ``EXTRA_KEYS`` (from
        ``make_augment_extra``), each [B, A, K, ...].
      base_point: beta.
      cls_dist: see module docstring.
      max_ref_boxes: see ``reference_mask``.

    Returns:
      ``{"consistency": [B] (0 when the image has no detection; lower = more
      informative), "cls_vec": [B, C_det] mean class-score vector over the reference and
      its augmentations}``.
    """
    det = preds.detections
    ex = preds.extras
    num_classes = det.det_probs.shape[-1]
    use = reference_mask(det.valid, max_ref_boxes=max_ref_boxes)  # [B, K]
    ref_dist = class_distribution(det.det_probs, det.scores, cls_dist)  # [B, K, C']
    aug_dist = class_distribution(ex["cald_probs"], ex["cald_scores"], cls_dist)

    per_aug = jax.vmap(  # over augmentations
        lambda rb, ab, ad, ap, av, rd, rp, ru: augmentation_consistency(
            rb, rd, rp, ru, ab, ad, ap, av, base_point=base_point
        ),
        in_axes=(0, 0, 0, 0, 0, None, None, None),
    )
    per_image = jax.vmap(per_aug)  # over images
    values = per_image(
        ex["cald_ref_boxes"],
        ex["cald_boxes"],
        aug_dist,
        ex["cald_scores"],
        ex["cald_valid"],
        ref_dist,
        det.scores,
        use,
    )  # [B, A]
    has_ref = jnp.any(det.valid, axis=-1)
    value = jnp.where(has_ref, jnp.mean(values, axis=-1), 0.0)

    ref_vec = class_score_vector(det.scores, det.labels, use, num_classes)  # [B, C]
    aug_vec = class_score_vector(
        ex["cald_scores"], ex["cald_labels"], ex["cald_valid"], num_classes
    )  # [B, A, C]
    mean_vec = (ref_vec + jnp.sum(aug_vec, axis=1)) / (1.0 + aug_vec.shape[1])
    return {"consistency": value, "cls_vec": jnp.where(has_ref[:, None], mean_vec, ref_vec)}


def make_augment_extra(
    *,
    augmentations: tuple[str, ...] = AUGMENTATIONS,
    seed: int = 0,
    cycle: int = 0,
    resize_ratio: float = 0.8,
    resize_mode: str = "down_up",
    rotation_degrees: float = 5.0,
    num_cuts: int = 2,
    max_ref_boxes: int | None = 40,
) -> Callable:
    """ExtraFn that detects on the augmented images (CALD ``--augs FCDR``).

    Cutout is random: each image's key is ``fold_in(fold_in(key(seed), cycle), checksum)``
    (``augment.image_keys``), so a given image gets the same cuts in a cycle however the
    pool is batched.

    Args:
      augmentations: subset of ``AUGMENTATIONS``, in order.
      seed: base seed of the cutout placements.
      cycle: AL cycle (folded into the key).
      resize_ratio: 0.8.
      resize_mode: ``"down_up"`` (reference behaviour) or ``"pad"``; see ``augment.resize``.
      rotation_degrees: 5.
      num_cuts: 2.
      max_ref_boxes: the reference boxes the cutout rule looks at (``reference_mask``).

    Returns:
      ``(ctx, images, preds) -> dict`` of ``EXTRA_KEYS``, each [B, A, ...].

    Raises:
      ValueError: for an unknown augmentation name.
    """
    for name in augmentations:
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown CALD augmentation {name!r}; valid: {AUGMENTATIONS}")
    base_key = jax.random.fold_in(jax.random.key(seed), cycle)

    def extra(ctx, images, preds):
        ref = preds.detections
        use = reference_mask(ref.valid, max_ref_boxes=max_ref_boxes)
        outs = {k: [] for k in EXTRA_KEYS}
        for name in augmentations:
            if name == "flip":
                aug_images, ref_boxes = augment.hflip(images, ref.boxes)
            elif name == "cutout":
                keys = augment.image_keys(images, base_key)
                aug_images = augment.cutout(images, ref.boxes, use, keys, num_cuts=num_cuts)
                ref_boxes = ref.boxes
            elif name == "resize":
                aug_images, ref_boxes = augment.resize(
                    images, ref.boxes, ratio=resize_ratio, mode=resize_mode
                )
            else:
                aug_images, ref_boxes = augment.rotate(images, ref.boxes, degrees=rotation_degrees)
            det = ctx.decode_fn(ctx.apply_fn(aug_images))
            for k, v in zip(
                EXTRA_KEYS, (ref_boxes, det.boxes, det.det_probs, det.scores, det.labels, det.valid)
            ):
                outs[k].append(v)
        return {k: jnp.stack(v, axis=1) for k, v in outs.items()}

    return extra


def labeled_class_histogram(
    box_labels: ArrayLike, box_valid: ArrayLike, labeled: ArrayLike, num_classes: int
) -> np.ndarray:
    """Mean ground-truth object count per class over the labeled images (host side).

    This is r of CALD's ``cls_kldiv``; the shell passes it as ``labeled_class_hist``.

    Args:
      box_labels: [N, M] int detection classes of the pool's ground-truth boxes.
      box_valid: [N, M] bool.
      labeled: [N] bool.
      num_classes: C_det.

    Returns:
      [C_det] float64 numpy array (zeros when nothing is labeled).
    """
    labels = np.asarray(box_labels)[np.asarray(labeled, bool)]
    valid = np.asarray(box_valid, bool)[np.asarray(labeled, bool)]
    counts = np.zeros((labels.shape[0], num_classes))
    rows = np.nonzero(valid)
    np.add.at(counts, (rows[0], labels[rows]), 1.0)
    return counts.mean(axis=0) if labels.shape[0] else np.zeros(num_classes)


def class_distribution_select(
    scores: ArrayLike,
    cls_vecs: ArrayLike,
    selectable: ArrayLike,
    budget: int,
    *,
    labeled_class_hist: ArrayLike | None = None,
    mutual_range: float = 1.2,
) -> jax.Array:
    """CALD's two-stage selection (``cls_kldiv``), jittable with ``budget`` static.

    1. Candidates: the ``int(mutual_range * budget)`` selectable images of highest score
       (= lowest CALD consistency), in score order.
    2. Candidates whose class-score vector is all zero come first (in score order), then
       the largest JS(softmax(r), softmax(cls_vec)), r = ``labeled_class_hist``. As in the
       reference, r is not updated between picks, so this is a single top-k.

    The reference returns MORE than ``budget`` images when more candidates have an
    all-zero vector; we return the first ``budget`` of them.

    Args:
      scores: [N] higher = more informative.
      cls_vecs: [N, C] class-score vectors.
      selectable: [N] bool.
      budget: static int.
      labeled_class_hist: [C] mean GT count per class of the labeled set. None: a uniform
        softmax (r = 0), which the reference never does; pass the real histogram.
      mutual_range: candidate range (CALD ``-mr``, 1.2).

    Returns:
      [budget] int32 distinct selectable indices.
    """
    budget = selection.check_budget(selectable, budget)
    cls_vecs = jnp.asarray(cls_vecs, jnp.float32)
    n, c = cls_vecs.shape
    if budget == 0:
        return jnp.zeros((0,), jnp.int32)
    n_cand = min(max(int(mutual_range * budget), budget), n)
    _, cand = jax.lax.top_k(selection.ranking_priority(scores, selectable), n_cand)
    cand_ok = jnp.asarray(selectable, bool)[cand]
    r = jnp.zeros((c,)) if labeled_class_hist is None else jnp.asarray(labeled_class_hist)
    vecs = cls_vecs[cand]  # [n_cand, C]
    js = js_divergence(jax.nn.softmax(r.astype(jnp.float32))[None, :], jax.nn.softmax(vecs, -1))
    zero = jnp.all(vecs == 0, axis=-1)
    first = 2.0 + (n_cand - jnp.arange(n_cand)) / n_cand  # > log 2 >= any JS
    priority = jnp.where(cand_ok, jnp.where(zero, first, js), -jnp.inf)
    _, pick = jax.lax.top_k(priority, budget)
    return cand[pick].astype(jnp.int32)
