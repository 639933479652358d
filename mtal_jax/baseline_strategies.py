"""The baseline strategies of the MTAL paper (Sec. IV-B): one factory each (docs/baselines.md).

Random, Entropy, CALD, EquAL, Alternation, LL4AL, CDAL and Core-set. Each factory takes
the cycle's ``strategy_types.CycleContext`` (positional, optional) and keyword
hyperparameters, and returns a ``strategy_types.Strategy`` (the protocol is described
there); ``strategies.get_strategy`` resolves them by name. The paper's own strategy is
``ours_strategy.ours``.

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

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax import selection, strategy_types, structs
from mtal_jax.scores import cald as cald_lib
from mtal_jax.scores import diversity, loss_prediction, uncertainty
from mtal_jax.scores import equal as equal_lib
from mtal_jax.strategy_types import CycleContext, Strategy

Array = jax.Array

_NO_CONTEXT = CycleContext()


def _centers(scores: ArrayLike, selectable: ArrayLike) -> Array:
    """k-centre seeds: labeled rows (not selectable, finite score; padding is -inf/NaN)."""
    return ~jnp.asarray(selectable, bool) & jnp.isfinite(jnp.asarray(scores, jnp.float32))


def _k_center_select(
    distance_fn: selection.DistanceFn, block_size: int, random_first: bool
) -> Callable[..., Array]:
    """The ``select`` of the diversity strategies (CDAL, core-set): k-centre greedy on the
    features, seeded with the labeled rows (``_centers``)."""

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

    return select


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

    return Strategy(
        score=_zero_score,
        select=_k_center_select(distance_fn, block_size, random_first),
        features=features,
        needs_labeled_features=True,
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

    return Strategy(
        score=_zero_score,
        select=_k_center_select(selection.squared_euclidean, block_size, random_first),
        features=features,
        needs_labeled_features=True,
    )
