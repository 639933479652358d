"""One selection of the experiment: build the cycle's strategy, score the pool, select.

``select_images`` is what ``select.py`` runs too; ``select_cycle`` adds the durable
records of an experiment's cycle (``durable``), so a resumed run reads its selection back
instead of scoring again.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from mtal_jax import pool as pool_lib
from mtal_jax import sharding, strategies, strategy_types
from mtal_jax.al import diagnostics, scoring
from mtal_jax.al.experiment import durable
from mtal_jax.al.experiment.setup import Plan, Setup, StrategySpec
from mtal_jax.data import fields
from mtal_jax.scores import consistency_score
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)


def make_strategy(
    spec: StrategySpec, context: strategy_types.CycleContext
) -> strategy_types.Strategy:
    """Builds the strategy of ``spec`` for the cycle of ``context``."""
    return strategies.get_strategy(spec.base, context, **spec.kwargs)


def cycle_context(
    setup: Setup, plan: Plan, spec: StrategySpec, cycle: int, labeled: np.ndarray
) -> strategy_types.CycleContext:
    """The ``CycleContext`` of ``spec`` scoring with the model of ``cycle``.

    The labeled-class histogram (a pass over the labeled set's annotations) is computed
    only for the strategies that use it (``strategies.NEEDS_LABELED_CLASS_HIST``).
    """
    hist = None
    if spec.base in strategies.NEEDS_LABELED_CLASS_HIST:
        source = setup.dataset.sources[plan.train_split]
        hist = labeled_class_hist(source, labeled, setup.spec.num_det_classes)
    return strategy_types.CycleContext(cycle=cycle, labeled_class_hist=hist)


def labeled_class_hist(source: Any, labeled: np.ndarray, num_det_classes: int) -> np.ndarray:
    """[C_det] mean ground-truth box count per detection class over the labeled images
    (CALD's r)."""
    idx = np.flatnonzero(labeled)
    counts = fields.class_counts(source, idx, num_det_classes)  # images not decoded
    return counts / max(len(idx), 1)


def select_images(
    setup: Setup,
    plan: Plan,
    strategy: strategy_types.Strategy,
    variables: dict,
    labeled: np.ndarray,
    budget: int,
    key: jax.Array,
    *,
    candidates: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Scores the pool with ``strategy`` and selects ``budget`` unlabeled images.

    Args:
      setup: experiment setup.
      plan: experiment plan (splits, scoring batch, decoding).
      strategy: the strategy of this cycle.
      variables: model variables (host or replicated).
      labeled: [N] bool labeled mask.
      budget: images to select.
      key: selection key.
      candidates: optional [N] bool, restrict selection to these images (select.py --pool).
      progress: progress bars.

    Returns:
      (selected [budget] int64 pool indices in selection order, scores name -> [N] float32
      (NaN where not scored), scored [N] bool).

    Raises:
      ValueError: budget larger than the selectable pool, or every selectable image
        scored NaN (``check_scores``).
    """
    n = setup.pool_size
    selectable = ~labeled if candidates is None else (~labeled & candidates)
    if budget > int(selectable.sum()):
        raise ValueError(
            f"budget {budget} is larger than the {int(selectable.sum())} selectable unlabeled images"
        )
    scored = selectable | (labeled if strategy.needs_labeled_features else np.zeros(n, bool))
    predict_fn = jax.jit(
        step_lib.make_predict_fn(
            setup.model,
            strategy,
            decode_kwargs=plan.decode_kwargs,
            det_to_seg=np.asarray(setup.dataset.det_to_seg, np.int32),
        )
    )
    variables = sharding.put_replicated(variables, setup.mesh)
    source = setup.dataset.sources[plan.train_split]
    idx = np.flatnonzero(scored)
    scores, feats = scoring.score_pool(
        predict_fn, variables, source, idx, setup.spec,
        batch_size=plan.score_batch_size, mesh=setup.mesh, progress=progress,
    )  # fmt: skip
    full = {k: np.full(n, np.nan, np.float32) for k in scores}
    for k, v in scores.items():
        full[k][idx] = v
    if "score" in full:
        check_scores(full["score"], selectable)
    score_arr = np.where(
        scored, np.nan_to_num(full.get("score", np.zeros(n)), nan=-np.inf), -np.inf
    )
    feats_full = np.zeros((n, feats.shape[1] if feats is not None else 1), np.float32)
    if feats is not None:
        feats_full[idx] = feats
    select = jax.jit(strategy.select, static_argnums=3)
    selected = jax.device_get(
        select(score_arr.astype(np.float32), feats_full, selectable, budget, key)
    )
    return np.asarray(selected, np.int64), full, scored


def check_scores(score: np.ndarray, selectable: np.ndarray) -> None:
    """Checks a pool's scores for NaN before selection ranks them.

    Selection ranks a NaN score last (``selection``), which is right for an image left
    unscored but hides a numerical failure (checkpoints whose parameters are not finite
    are refused earlier, when read: ``run_files.load_variables``).

    Args:
      score: [N] float32, the strategy's ``score`` (NaN where not scored).
      selectable: [N] bool, the images selection may pick (all of them scored).

    Raises:
      ValueError: when every selectable image scored NaN: the selection would be the pool
        order, not the strategy's. Some of them NaN: a warning (they rank last).
    """
    nan = np.isnan(score) & selectable
    if not nan.any():
        return
    bad, total = int(nan.sum()), int(selectable.sum())
    message = (
        f"{bad} of the {total} selectable images scored NaN: the strategy's score is not "
        "finite there (its numerics, or a model whose outputs are not finite)"
    )
    if bad == total:
        raise ValueError(f"{message}; the selection would be the pool order, not the strategy's")
    log.warning("%s; they rank last", message)


def select_cycle(
    setup: Setup,
    plan: Plan,
    spec: StrategySpec,
    *,
    trial: int,
    cycle: int,
    cycle_dir: str,
    labeled: np.ndarray,
    variables: dict,
    budget: int,
    key: jax.Array,
    progress: bool = True,
) -> np.ndarray:
    """The labeled mask of ``cycle``: its durable selection, or a new one (scored with the
    model of cycle - 1, then written), plus the cycle's durable ``pool.json``."""
    selected = durable.read_selection(cycle_dir)
    if selected is None:
        context = cycle_context(setup, plan, spec, cycle - 1, labeled)
        selected, scores, scored = select_images(
            setup, plan, make_strategy(spec, context), variables, labeled, budget, key,
            progress=progress,
        )  # fmt: skip
        source = setup.dataset.sources[plan.train_split]
        # Before selection.json, so that every written selection has its diagnostics.
        _save_diagnostics(
            cycle_dir, spec, scores, ~labeled, f"trial {trial} {spec.name} cycle {cycle}"
        )
        durable.write_selection(
            cycle_dir,
            {
                "trial": trial, "strategy": spec.name, "cycle": cycle, "budget": budget,
                "selected": selected.tolist(), "image_ids": durable.image_ids(source, selected),
                "components": {k: v[selected].tolist() for k, v in scores.items()},
                "key": np.asarray(jax.random.key_data(key)).tolist(),
                "num_labeled_before": int(labeled.sum()),
            },
            scores=scores,
            scored=scored,
        )  # fmt: skip
    new = pool_lib.add_selection(labeled, selected)
    durable.pool(os.path.join(cycle_dir, "pool.json"), lambda: new, len(labeled))
    return new


def _save_diagnostics(
    cycle_dir: str, spec: StrategySpec, scores: dict, pool: np.ndarray, context: str
) -> None:
    """Score diagnostics of ``ours``-like strategies beside the selection (``al.diagnostics``)."""
    if diagnostics.has_components(scores) and jax.process_index() == 0:
        weights = spec.kwargs.get("weights", consistency_score.DEFAULT_WEIGHTS)
        diag = diagnostics.score_diagnostics(scores, weights=weights, mask=pool)
        diagnostics.write(os.path.join(cycle_dir, diagnostics.FILENAME), diag, context=context)
