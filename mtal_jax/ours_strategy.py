"""The paper's strategy, ``ours``: detection-segmentation inconsistency (paper III, Alg. 1).

``ours`` builds the ``strategy_types.Strategy`` from the BoxMask extra
(``scores.boxmask``) and the consistency score (``scores.consistency_score`` over
``scores.consistency``, Eq. 1-3);
``check_weights`` is the one check of its (w_loc, w_cls, w_seg), shared with
``strategy_identity``. ``strategies.get_strategy("ours", ...)`` resolves it by name.
"""

from __future__ import annotations

import math
from typing import Any

from mtal_jax import selection
from mtal_jax.scores import boxmask, consistency, consistency_score
from mtal_jax.strategy_types import CycleContext, Strategy

_NO_CONTEXT = CycleContext()


def ours(
    context: CycleContext = _NO_CONTEXT,
    *,
    weights: tuple[float, float, float] = consistency_score.DEFAULT_WEIGHTS,
    tau: float = 0.3,
    crop_size: int = 64,
    context_margin: float = 0.1,
    eps: float = 1e-6,
    det_score_threshold: float = 0.3,
    cls_divergence: str = "js",
    max_crops: int | None = None,
    crop_chunk: int = 16,
    crop_window: str = "box",
) -> Strategy:
    """The paper's strategy: detection-segmentation inconsistency, top-k (paper III, Alg. 1).

    BoxMasks come from ``scores.boxmask.make_box_mask_extra`` inside the predict function,
    the scores from ``scores.consistency_score.make_score_fn`` (``scores.consistency``,
    Eq. 1-3).

    Args:
      context: unused (the strategy is the same every cycle).
      weights: (w_loc, w_cls, w_seg).
      tau: BoxMask threshold.
      crop_size: BoxMask crop side S.
      context_margin: crop window margin per side.
      eps: log floor of the divergences and probability of the classes detection does not
        predict (``consistency.det_probs_to_seg``).
      det_score_threshold: only detections with a score at least this are scored (0.3: the
        boxes the detector asserts; low-confidence candidates would saturate S_loc).
      cls_divergence: S_cls divergence, ``"js"`` (default, bounded in [0, 1] like S_loc and
        S_seg) or ``"kl"`` (the paper's Eq. 2 verbatim, for the paper-exact ablation).
      max_crops: crops per batch cap (None: all valid detections).
      crop_chunk: crops per network call of the BoxMask crops.
      crop_window: ``"box"`` (the box and its margin resized to S x S) or ``"native"`` (a
        square of at least S input pixels: small objects at their own scale;
        ``scores.box_crops.CROP_WINDOWS``).

    Returns:
      ``Strategy`` with the BoxMask extra, the consistency score and top-k selection.

    Raises:
      ValueError: an unknown ``cls_divergence``, a ``det_score_threshold`` outside [0, 1],
        an ``eps`` outside (0, 1) or a BoxMask setting out of range
        (``scores.boxmask.make_box_mask_extra``).
    """
    del context
    if cls_divergence not in consistency.CLS_DIVERGENCES:
        raise ValueError(
            f"strategy 'ours': cls_divergence must be one of {consistency.CLS_DIVERGENCES}, "
            f"got {cls_divergence!r}"
        )
    if not 0.0 <= float(det_score_threshold) <= 1.0:
        raise ValueError(
            f"strategy 'ours': det_score_threshold must be in [0, 1], got {det_score_threshold}"
        )
    weights = check_weights(weights)
    extra = boxmask.make_box_mask_extra(
        crop_size=crop_size,
        context_margin=context_margin,
        tau=tau,
        det_score_threshold=det_score_threshold,
        max_crops=max_crops,
        crop_chunk=crop_chunk,
        crop_window=crop_window,
    )
    return Strategy(
        score=consistency_score.make_score_fn(
            weights=weights, eps=eps, cls_divergence=cls_divergence
        ),
        select=selection.top_k_select,
        extras=(extra,),
    )


def check_weights(weights: Any) -> tuple[float, float, float]:
    """``(w_loc, w_cls, w_seg)`` as three floats; a clear error unless they are three finite,
    non-negative numbers, not all 0 (an all-zero score ranks nothing).

    Raises:
      ValueError: unless ``weights`` are three finite, non-negative numbers, not all 0.
    """
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(w) and w >= 0 for w in values) or not any(values):
        raise ValueError(
            "strategy 'ours': weights must be three finite, non-negative numbers "
            f"(w_loc, w_cls, w_seg), not all 0; got {weights!r}"
        )
    return values
