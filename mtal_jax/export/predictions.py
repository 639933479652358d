"""The model's predictions on the selected images, with BoxMasks and score components (shell).

The export runs the checkpoint once more over the selected images, through the same code
path as selection: ``train.step.make_predict_fn`` with the ``ours`` strategy of the config
(its BoxMask extra, ``scores.boxmask.make_box_mask_extra``, and its score function), and
``scores.consistency.consistency_scores`` for the per-box components (S_loc, S_cls, S_box)
with the same keyword arguments as ``ours``. Whatever strategy selected the images, the
export carries this strategy's BoxMasks and components, which are what the disagreement
map draws.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mtal_jax import ours_strategy, runtime, sharding, strategy_types, structs
from mtal_jax.al import experiment
from mtal_jax.data import pipeline
from mtal_jax.export import frame
from mtal_jax.scores import consistency
from mtal_jax.train import evaluate as evaluate_lib
from mtal_jax.train import step as step_lib


def consistency_name(strategy: str, config: ml_collections.ConfigDict) -> str:
    """The strategy whose BoxMasks and scores the export uses.

    ``strategy`` itself when it is ``ours`` or an alias of it (Table I ablations), else
    ``ours`` with the config's keyword arguments for it.
    """
    kwargs = config.al.strategy.kwargs
    user = dict(kwargs.get(strategy, {})) if kwargs else {}
    return strategy if user.get("base", strategy) == "ours" else "ours"


def _spec(name: str, config: ml_collections.ConfigDict) -> experiment.StrategySpec:
    return experiment.strategy_specs(config, [name])[0]


def ours_kwargs(name: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Keyword arguments of ``ours_strategy.ours`` for ``name``: its defaults + the config's."""
    params = inspect.signature(ours_strategy.ours).parameters.values()
    resolved = {
        p.name: p.default
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }
    return resolved | dict(_spec(name, config).kwargs)


def _consistency_kwargs(resolved: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``consistency_scores`` among ``ours``'s (eps, weights, ...)."""
    params = inspect.signature(consistency.consistency_scores).parameters.values()
    names = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    out = {k: v for k, v in resolved.items() if k in names}
    if "weights" in out:
        out["weights"] = tuple(out["weights"])
    return out


def make_export_strategy(
    strategy: strategy_types.Strategy,
    consistency_kwargs: dict[str, Any],
    image_hw: tuple[int, int],
) -> strategy_types.Strategy:
    """``strategy`` with a score function that returns the export's maps as well.

    Args:
      strategy: an ``ours`` strategy (its extras give ``box_masks`` and ``box_valid``).
      consistency_kwargs: keyword arguments of ``consistency.consistency_scores``.
      image_hw: (H, W) input size, static.

    Returns:
      A strategy whose ``score(preds)`` holds ``image_scores`` (the strategy's own score
      dict, [B] each), ``boxes`` [B, K, 4] input pixels, ``det_scores`` [B, K],
      ``det_labels`` [B, K], ``box_classes`` [B, K] segmentation class c_k, ``box_valid``
      [B, K], ``box_masks`` [B, K, h, w], ``box_class_probs`` [B, K, S', S'],
      ``box_windows_grid`` and ``boxes_grid`` [B, K, 4] (the extra's, for
      ``export.frame.box_mask``), ``seg_labels`` [B, h, w], ``seg_labels_full``
      and ``seg_confidence_full`` [B, H, W] (bilinear probabilities at input size),
      ``s_loc``, ``s_cls``, ``s_box`` [B, K], ``s_seg`` and ``score`` [B].
    """
    height, width = image_hw

    def score(preds: structs.Predictions) -> dict[str, Any]:
        det, extras = preds.detections, preds.extras
        det_to_seg = extras["det_to_seg"][0]
        valid = extras["box_valid"]
        comps = consistency.consistency_scores(
            preds.seg_probs, extras["box_masks"], det.det_probs, valid, det_to_seg,
            pixel_valid=preds.pixel_valid, **consistency_kwargs,
        )  # fmt: skip
        b, _, _, c = preds.seg_probs.shape
        full = jax.image.resize(preds.seg_probs, (b, height, width, c), "bilinear")
        return {
            "image_scores": strategy.score(preds),
            "boxes": det.boxes,
            "det_scores": det.scores,
            "det_labels": det.labels,
            "box_classes": consistency.box_seg_classes(det.det_probs, det_to_seg),
            "box_valid": valid,
            "box_masks": extras["box_masks"] & valid[..., None, None],
            "box_class_probs": extras["box_class_probs"],
            "box_windows_grid": extras["box_windows_grid"],
            "boxes_grid": extras["boxes_grid"],
            "seg_labels": jnp.argmax(preds.seg_probs, -1).astype(jnp.int32),
            "seg_labels_full": jnp.argmax(full, -1).astype(jnp.int32),
            "seg_confidence_full": jnp.max(full, -1),
            "s_loc": comps.s_loc,
            "s_cls": comps.s_cls,
            "s_box": comps.s_box,
            "s_seg": comps.s_seg,
            "score": comps.score,
        }

    return strategy._replace(score=score, features=None)


def predict_images(
    setup: experiment.Setup,
    config: ml_collections.ConfigDict,
    variables: dict,
    indices: Sequence[int],
    *,
    strategy: str,
) -> Iterator[dict[str, Any]]:
    """Yields one record per image of ``indices`` (pool indices of the train split), in order.

    Args:
      setup: experiment setup.
      config: the config (``config.al.strategy.kwargs`` gives the ``ours`` settings).
      variables: model variables.
      indices: pool indices.
      strategy: the selection strategy's name (see ``consistency_name``).

    Yields:
      dicts of host arrays: ``index``, ``image`` [h0, w0, 3] uint8 (the original image),
      ``boxes`` in its pixels, ``frame`` (``export.frame``: how the other maps, made on the
      network input, map to it), ``box_mask_tau`` (the strategy's tau) and the other
      per-image entries of ``make_export_strategy`` (without the batch axis).
    """
    name = consistency_name(strategy, config)
    resolved = ours_kwargs(name, config)
    strat = experiment.make_strategy(_spec(name, config), strategy_types.CycleContext())
    export_strategy = make_export_strategy(
        strat, _consistency_kwargs(resolved), tuple(setup.spec.image_hw)
    )
    predict_fn = jax.jit(
        step_lib.make_predict_fn(
            setup.model,
            export_strategy,
            decode_kwargs=experiment.decode_kwargs(config),
            det_to_seg=np.asarray(setup.dataset.det_to_seg, np.int32),
            with_features=False,
        )
    )
    variables = sharding.put_replicated(variables, setup.mesh)
    source = setup.dataset.sources[config.data.train_split]
    batch_size = config.al.score_batch_size
    for host in pipeline.iterate_eval(source, indices, setup.spec, batch_size=batch_size):
        runtime.raise_pending_interrupt()  # a Ctrl-C lost where it was raised
        batch = sharding.put_batch(evaluate_lib.to_batch(host), setup.mesh)
        out, _ = predict_fn(variables, batch)
        out = jax.device_get(out)
        for row in np.flatnonzero(np.asarray(host["valid"])):
            record = jax.tree.map(lambda x, row=row: np.asarray(x)[row], out)
            record["index"] = int(host["index"][row])
            record["box_mask_tau"] = float(resolved["tau"])
            yield in_original_frame(
                record, source[record["index"]]["image"], tuple(host["content_hw"][row]),
                tuple(setup.spec.image_hw),
            )  # fmt: skip


def in_original_frame(
    record: dict[str, Any], image: np.ndarray, content_hw: tuple[int, int],
    input_hw: tuple[int, int],
) -> dict[str, Any]:  # fmt: skip
    """``record`` (predictions on the network input) for the original ``image`` [h0, w0, 3]:
    the image itself, the boxes in its pixels and its ``frame`` (``export.frame``), which
    maps the maps to it when they are written."""
    image = np.asarray(image, np.uint8)
    h0, w0 = image.shape[:2]
    f = frame.make((h0, w0), content_hw, input_hw, np.asarray(record["seg_labels"]).shape)
    boxes = np.asarray(record["boxes"], np.float64) * f["scale"]
    return dict(
        record, image=image, frame=f,
        boxes=np.clip(boxes, 0, [w0, h0, w0, h0]).astype(np.float32),
    )  # fmt: skip
