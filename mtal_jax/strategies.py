"""Active-learning strategies: one explicit registry of factories (paper IV-B and III).

Each factory takes the cycle's ``strategy_types.CycleContext`` (positional, optional) and
keyword hyperparameters, and returns a ``strategy_types.Strategy`` (the protocol is
described there). ``get_strategy(name, context, **kwargs)`` resolves a name of
``STRATEGIES`` and rejects unknown names and keywords with the valid ones listed.

Conventions shared by the factories below:

* Every ``score`` writes -inf in ``"score"`` for padded examples (``preds.valid``
  False). Diversity strategies (``cdal``, ``coreset``) seed k-centre greedy with the rows
  that are not selectable and have a finite score: the shell passes the labeled images'
  scores and features too (``needs_labeled_features``) and marks any row to ignore
  (padding) with score -inf or NaN.
* Every ``select`` goes through ``selection.check_budget``: a budget larger than the
  selectable pool raises a ``ValueError`` naming both numbers.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax import selection, strategy_types, structs
from mtal_jax.scores import boxmask, consistency, diversity, loss_prediction, uncertainty
from mtal_jax.scores import cald as cald_lib
from mtal_jax.scores import equal as equal_lib
from mtal_jax.strategy_types import CycleContext, Strategy

Array = jax.Array

_NO_CONTEXT = CycleContext()


def _centers(scores: ArrayLike, selectable: ArrayLike) -> Array:
    """k-centre seeds: labeled rows (not selectable, finite score; padding is -inf/NaN)."""
    return ~jnp.asarray(selectable, bool) & jnp.isfinite(jnp.asarray(scores, jnp.float32))


def _zero_score(preds: structs.Predictions) -> dict[str, Array]:
    return strategy_types.mask_padded(
        {"score": jnp.zeros(preds.valid.shape, jnp.float32)}, preds.valid
    )


# ----------------------------------------------------------------------------- factories


def random(context: CycleContext = _NO_CONTEXT) -> Strategy:
    """Random: a uniform sample of the unlabeled pool (paper IV-B; paper IV-B).

    ``score`` is 0 (the predict function has no key); ``select`` draws uniform scores
    from its key and takes the top ``budget`` (= a uniform subset).
    """
    del context

    def select(scores, feats, selectable, budget, key):
        del scores, feats
        return selection.random_k(selectable, budget, key)

    return Strategy(score=_zero_score, select=select)


def entropy(
    context: CycleContext = _NO_CONTEXT, *, seg_weight: float = 1.0, det_weight: float = 1.0
) -> Strategy:
    """Entropy: mean pixel entropy + mean detection entropy, top-k (``scores.uncertainty``).

    The pixel mean runs over ``preds.pixel_valid`` (padding excluded).
    """
    del context

    def score(preds):
        det = preds.detections
        out = uncertainty.entropy_scores(
            preds.seg_probs,
            det.det_probs,
            det.valid,
            seg_weight=seg_weight,
            det_weight=det_weight,
            pixel_valid=preds.pixel_valid,
        )
        return strategy_types.mask_padded(out, preds.valid)

    return Strategy(score=score, select=selection.top_k_select)


def cald(
    context: CycleContext = _NO_CONTEXT,
    *,
    base_point: float = 1.3,
    mutual_range: float = 1.2,
    mutual: bool = True,
    augmentations: tuple[str, ...] = cald_lib.AUGMENTATIONS,
    cls_dist: str = "with_background",
    max_ref_boxes: int | None = 40,
    resize_mode: str = "down_up",
    seed: int = 0,
) -> Strategy:
    """CALD (Yu et al. 2022), faithful to we1pingyu/CALD (``scores.cald``).

    ``score["score"]`` = -consistency (CALD ranks ascending; we negate so higher = more
    informative); ``score["consistency"]`` is CALD's own value. ``features`` are the
    class-score vectors [B, C_det] used by the two-stage selection.

    Args:
      context: the cycle (varies the cutout placements) and ``labeled_class_hist``,
        [C_det] mean GT object count per class over the labeled set
        (``cald.labeled_class_histogram``), passed by the shell every cycle. None: the
        class step compares against a uniform distribution (not the reference).
      base_point: beta (1.3).
      mutual_range: candidates = int(mutual_range * budget) (1.2).
      mutual: use the two-stage class-distribution step (reference default; False =
        ``--no-mutual``: plain top-k).
      augmentations: subset of ``cald.AUGMENTATIONS``.
      cls_dist: ``"with_background"`` or ``"foreground"`` (``scores.cald`` docstring).
      max_ref_boxes: the reference's subsampling above 40 boxes (None: off).
      resize_mode: ``"down_up"`` (reference behaviour) or ``"pad"``.
      seed: cutout seed.
    """
    extra = cald_lib.make_augment_extra(
        augmentations=tuple(augmentations),
        seed=seed,
        cycle=context.cycle,
        resize_mode=resize_mode,
        max_ref_boxes=max_ref_boxes,
    )
    hist = context.labeled_class_hist
    hist = None if hist is None else jnp.asarray(hist, jnp.float32)

    def score(preds):
        out = cald_lib.consistency(
            preds, base_point=base_point, cls_dist=cls_dist, max_ref_boxes=max_ref_boxes
        )
        return strategy_types.mask_padded(
            {"score": -out["consistency"], "consistency": out["consistency"]}, preds.valid
        )

    def features(preds):
        return cald_lib.consistency(
            preds, base_point=base_point, cls_dist=cls_dist, max_ref_boxes=max_ref_boxes
        )["cls_vec"]

    def select(scores, feats, selectable, budget, key):
        del key
        if not mutual:
            return selection.top_k(scores, selectable, budget)
        return cald_lib.class_distribution_select(
            scores, feats, selectable, budget, labeled_class_hist=hist, mutual_range=mutual_range
        )

    return Strategy(score=score, select=select, features=features, extras=(extra,))


def equal(
    context: CycleContext = _NO_CONTEXT, *, variant: str = "kl", eps: float = 1e-8
) -> Strategy:
    """EquAL: flip consistency of the segmentation, top-k (``scores.equal``).

    The pixel mean runs over ``preds.pixel_valid`` (padding excluded).

    Args:
      context: unused (the strategy is the same every cycle).
      variant: ``"kl"`` (default: the KL divergence between the predictions of the image
        and of its flipped version, as the MTAL paper describes EquAL, Sec. II),
        ``"sym_kl"`` or ``"entropy_sum"``.
      eps: probability clip inside the logs.
    """
    del context
    if variant not in equal_lib.VARIANTS:
        raise ValueError(f"unknown EquAL variant {variant!r}; valid: {equal_lib.VARIANTS}")

    def score(preds):
        s = equal_lib.flip_consistency(
            preds.seg_probs,
            preds.extras[equal_lib.FLIP_KEY],
            variant=variant,
            eps=eps,
            pixel_valid=preds.pixel_valid,
        )
        return strategy_types.mask_padded({"score": s}, preds.valid)

    return Strategy(score=score, select=selection.top_k_select, extras=(equal_lib.flip_extra,))


def alternation(
    context: CycleContext = _NO_CONTEXT,
    *,
    cald_parity: int = 0,
    cald_kwargs: dict[str, Any] | None = None,
    equal_kwargs: dict[str, Any] | None = None,
) -> Strategy:
    """Alternation (Reichart et al., ACL 2008; paper IV-B): CALD or EquAL by cycle parity
    (docs/baselines.md, "Alternation").

    Args:
      context: the cycle (CALD when ``context.cycle % 2 == cald_parity``, else EquAL),
        forwarded to the chosen strategy.
      cald_parity: 0 (default: CALD on even cycles, EquAL on odd) or 1.
      cald_kwargs: keyword arguments of ``cald``.
      equal_kwargs: keyword arguments of ``equal``.
    """
    if cald_parity not in (0, 1):
        raise ValueError(f"cald_parity must be 0 or 1, got {cald_parity}")
    if context.cycle % 2 == cald_parity:
        return cald(context, **(cald_kwargs or {}))
    return equal(context, **(equal_kwargs or {}))


def ll4al(
    context: CycleContext = _NO_CONTEXT,
    *,
    normalization: str = "none",
    weights: tuple[float, float] = (1.0, 1.0),
) -> Strategy:
    """LL4AL (Yoo & Kweon 2019), multi-task: sum of the two predicted losses, top-k.

    Needs a model built with ``loss_prediction=True`` (``preds.loss_pred`` [B, 2]). The
    normalisation needs the whole pool, so ``features`` carries the two predicted losses
    and ``select`` normalises them over the selectable rows (``scores.loss_prediction``);
    ``score["score"]`` is the plain sum.

    Training follows the reference (Mephisto405/Learning-Loss-for-Active-Learning): the
    loss modules' gradient reaches the backbone for the first 60 % of each LL4AL cycle
    (``loss.ll4al_detach_fraction``, ``al.experiment.train_config``). Selection ranks the
    whole unlabeled pool, where the reference ranks a random subset of 10 000 images: a
    deliberate choice (the subset only saves scoring time; ranking every image applies the
    same criterion without the sampling noise).

    Args:
      context: unused (the strategy is the same every cycle).
      normalization: ``"none"`` (default, the paper's sum), ``"rank"`` or ``"zscore"``.
      weights: (detection, segmentation) weights.
    """
    del context
    if normalization not in loss_prediction.NORMALIZATIONS:
        raise ValueError(
            f"unknown normalization {normalization!r}; valid: {loss_prediction.NORMALIZATIONS}"
        )

    def _loss_pred(preds):
        if preds.loss_pred is None:
            raise ValueError("ll4al needs a model built with loss_prediction=True")
        return preds.loss_pred.astype(jnp.float32)

    def score(preds):
        lp = _loss_pred(preds)
        out = {
            "score": weights[0] * lp[:, 0] + weights[1] * lp[:, 1],
            "loss_det": lp[:, 0],
            "loss_seg": lp[:, 1],
        }
        return strategy_types.mask_padded(out, preds.valid)

    def select(scores, feats, selectable, budget, key):
        del scores, key
        combined = loss_prediction.combined_predicted_loss(
            feats, selectable, normalization=normalization, weights=tuple(weights)
        )
        return selection.top_k(combined, selectable, budget)

    return Strategy(score=score, select=select, features=_loss_pred)


def cdal(
    context: CycleContext = _NO_CONTEXT,
    *,
    det_form: str = "vector",
    row_reduce: str = "mean",
    seg_weight: float = 1.0,
    det_weight: float = 1.0,
    random_first: bool = True,
    block_size: int = 256,
    eps: float = 1e-30,
    drop_zero_rows: bool = True,
) -> Strategy:
    """CDAL-CS (Agarwal et al. 2020): k-centre greedy on contextual-diversity features.

    The segmentation feature averages over ``preds.pixel_valid`` (padding excluded).
    Distances equal sharat29ag/CDAL's ``kl`` (``CDAL_CS.py``) to float32 precision with
    the defaults of ``eps`` and ``drop_zero_rows`` (``scores.diversity`` docstring).

    Args:
      context: unused (the strategy is the same every cycle).
      det_form: ``"vector"`` (reference detection code) or ``"per_class"`` (paper formula).
      row_reduce: ``"mean"`` (CDAL_CS.py) or ``"sum"`` over the class rows both images have.
      seg_weight: weight of the segmentation distance.
      det_weight: weight of the detection distance.
      random_first: the reference's random first pick even with a labeled set (default
        True, as ``CDAL_CS.py``).
      block_size: centres per distance block (memory 4 N block_size bytes).
      eps: probability clip inside the logs (1e-30: the reference's unclipped logs; a
        clip as large as 1e-8 changes distances on a trained network's peaked outputs).
      drop_zero_rows: drop a class row that holds an exact zero in either image, as the
        reference's NaN check does (False: keep it, its zeros clipped at ``eps``).
    """
    del context
    distance_fn = diversity.make_cdal_distance(
        det_form=det_form, row_reduce=row_reduce, seg_weight=seg_weight, det_weight=det_weight
    )

    def features(preds):
        det = preds.detections
        return diversity.cdal_features(
            preds.seg_probs,
            det.det_probs,
            det.valid,
            det_form=det_form,
            eps=eps,
            drop_zero_rows=drop_zero_rows,
            pixel_valid=preds.pixel_valid,
        )

    def select(scores, feats, selectable, budget, key):
        return selection.k_center_greedy(
            feats,
            selectable,
            budget,
            key,
            centers=_centers(scores, selectable),
            distance_fn=distance_fn,
            block_size=block_size,
            random_first=random_first,
        )

    return Strategy(
        score=_zero_score, select=select, features=features, needs_labeled_features=True
    )


def coreset(
    context: CycleContext = _NO_CONTEXT, *, block_size: int = 256, random_first: bool = False
) -> Strategy:
    """Core-set (Sener & Savarese 2018): k-centre greedy on pooled backbone features.

    Squared Euclidean on ``preds.embedding``, seeded with the labeled set; the first pick
    is random only without a labeled set (google/active-learning), unless ``random_first``.
    Only the greedy k-centre is provided: the robust variant of the original paper (a
    mixed-integer program with outlier tolerance, initialised by the greedy solution) is
    not.

    Args:
      context: unused (the strategy is the same every cycle).
      block_size: centres per distance block (memory 4 N block_size bytes).
      random_first: always pick the first point at random.
    """
    del context

    def features(preds):
        return preds.embedding.astype(jnp.float32)

    def select(scores, feats, selectable, budget, key):
        return selection.k_center_greedy(
            feats,
            selectable,
            budget,
            key,
            centers=_centers(scores, selectable),
            block_size=block_size,
            random_first=random_first,
        )

    return Strategy(
        score=_zero_score, select=select, features=features, needs_labeled_features=True
    )


def ours(
    context: CycleContext = _NO_CONTEXT,
    *,
    weights: tuple[float, float, float] = boxmask.DEFAULT_WEIGHTS,
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
    the scores from ``scores.boxmask.make_score_fn`` (``scores.consistency``, Eq. 1-3).

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
        ``scores.boxmask.CROP_WINDOWS``).

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
    weights = _check_weights(weights)
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
        score=boxmask.make_score_fn(weights=weights, eps=eps, cls_divergence=cls_divergence),
        select=selection.top_k_select,
        extras=(extra,),
    )


def _check_weights(weights) -> tuple[float, float, float]:
    """``(w_loc, w_cls, w_seg)`` as three floats; a clear error unless they are three finite,
    non-negative numbers, not all 0 (an all-zero score ranks nothing)."""
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


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "random": random,
    "entropy": entropy,
    "cald": cald,
    "equal": equal,
    "alternation": alternation,
    "ll4al": ll4al,
    "cdal": cdal,
    "coreset": coreset,
    "ours": ours,
}


NEEDS_LABELED_CLASS_HIST = frozenset({"cald", "alternation"})
"""Strategies whose context must carry ``labeled_class_hist`` (the shell computes it)."""


def get_strategy(name: str, context: CycleContext | None = None, **kwargs: Any) -> Strategy:
    """Builds the strategy ``name`` for ``context`` with keyword hyperparameters.

    Args:
      name: a key of ``STRATEGIES``.
      context: the cycle's context (default: cycle 0, no labeled-class histogram).
      **kwargs: the factory's keyword hyperparameters.

    Returns:
      the ``Strategy``.

    Raises:
      ValueError: for an unknown name or keyword, listing the valid ones (a typo must not
        be ignored silently).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid names: {sorted(STRATEGIES)}")
    factory = STRATEGIES[name]
    valid = hyperparameters(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"strategy {name!r} takes no keyword(s) {unknown}; valid: {valid}")
    return factory(_NO_CONTEXT if context is None else context, **kwargs)


def hyperparameters(name: str) -> list[str]:
    """The keyword hyperparameters of strategy ``name`` (its factory's keyword-only arguments).

    Raises:
      ValueError: for an unknown name.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid names: {sorted(STRATEGIES)}")
    params = inspect.signature(STRATEGIES[name]).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def resolved_hyperparameters(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every keyword hyperparameter of strategy ``name``: ``kwargs`` over the factory's
    defaults (two specs build the same strategy when these are equal).

    Raises:
      ValueError: for an unknown name or keyword.
    """
    valid = hyperparameters(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"strategy {name!r} takes no keyword(s) {unknown}; valid: {valid}")
    params = inspect.signature(STRATEGIES[name]).parameters
    return {k: kwargs[k] if k in kwargs else params[k].default for k in valid}


# Hyperparameters of ``ours`` that only enter S_cls: with w_cls = 0 no score, box choice or
# selection depends on them (S_loc and S_seg are ratios of pixel counts, exact in float32).
_OURS_CLS_ONLY = ("cls_divergence", "eps")


def selection_identity(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``resolved_hyperparameters`` with those that cannot change what the strategy selects
    set to None: two specs with equal identities select the same images from the same model
    and pool, so their runs are the same runs (``al.experiment.share``).

    For ``ours`` with ``w_cls = 0`` (Table I's settings without S_cls) ``cls_divergence`` and
    ``eps`` only change the stored S_cls values, never the score: ``w_cls * S_cls`` is an
    exact 0 for the finite S_cls that both divergences give.

    Raises:
      ValueError: for an unknown name or keyword, or invalid ``ours`` weights.
    """
    params = resolved_hyperparameters(name, kwargs)
    if name == "ours":
        params["weights"] = _check_weights(params["weights"])  # (1, 0, 1) == [1.0, 0.0, 1.0]
        if params["weights"][1] == 0.0:
            params.update({k: None for k in _OURS_CLS_ONLY})
    return params
