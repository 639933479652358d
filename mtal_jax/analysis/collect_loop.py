"""A checkpoint's pass over a split for the paper's analyses (shell): Table II, Fig. 6 and
Fig. 5 gather their inputs here.

``collect_split`` loads a training run's weights, builds the strategy as selection builds
it, and runs ``collect.make_analysis_fn`` (the jitted per-batch function) over the eval
split or over a cycle's unlabeled pool, batch by batch: per-image columns, BoxMask IoU
totals per tau, and the maps of the images to overlay. ``analysis.figures`` writes the
tables and figures from its result; ``analysis.cli`` is the command line.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import tqdm

from mtal_jax import jsonio, runtime, strategy_types
from mtal_jax.al import experiment, select_cli
from mtal_jax.analysis import collect
from mtal_jax.data import pipeline
from mtal_jax.scores import consistency_score
from mtal_jax.train import evaluate

_MAP_KEYS = ("seg_labels", "box_masks", "boxes", "box_classes", "box_valid")


def collect_split(
    config: ml_collections.ConfigDict,
    checkpoint: str,
    *,
    taus: tuple[float, ...],
    max_images: int = 0,
    overlay_images: tuple[int, ...] = (),
    pool_json: str | None = None,
    progress: bool = True,
    setup: experiment.Setup | None = None,
    scan: bool = True,
    strategy: str = "ours",
) -> dict:
    """Runs the analysis function over the eval split, or over the unlabeled training
    images of ``pool_json`` (a cycle's ``pool.json``: Fig. 6 on the cycle-0 pool).

    ``setup`` reuses an ``experiment.build_setup(config)`` (several checkpoints of one
    config); ``scan=False`` skips the pass over the split and computes only the overlay maps
    (``columns`` then empty, ``intersection``/``union`` 0). ``strategy``: the name (``ours``
    or an alias of it) whose BoxMasks and scores are analysed, built as selection builds it.

    Returns:
      {"columns": name -> [N] per-image values (valid images, in split order), "index": [N],
       "intersection"/"union"/"boxes"/"empty": [len(taus), C_seg] (IoU counts; kept boxes
       and empty BoxMasks per class), "maps": {index: dict of maps},
       "setup": experiment.Setup}.
    """
    setup = experiment.build_setup(config) if setup is None else setup
    with runtime.input_checks():  # a missing or mismatched checkpoint: one line
        variables = select_cli.load_variables(config, setup, checkpoint)
    kwargs = {
        "strategy": experiment.make_strategy(
            experiment.strategy_specs(config, [strategy])[0], strategy_types.CycleContext()
        ),
        "decode_kwargs": experiment.decode_kwargs(config),
        "det_to_seg": np.asarray(setup.dataset.det_to_seg, np.int32),
        "loss_weights": setup.train_cfg.loss_weights,
        "seg_class_weights": tuple(setup.train_cfg.seg_class_weights),
        "taus": taus,
    }
    analysis_fn = jax.jit(collect.make_analysis_fn(setup.model, **kwargs))
    if pool_json:
        source = setup.dataset.sources[config.data.train_split]
        labeled = np.zeros(len(source), bool)
        labeled[np.asarray(jsonio.read(pool_json)["labeled_ids"], np.int64)] = True
        indices = np.flatnonzero(~labeled)
    else:
        source = setup.dataset.sources[config.data.eval_split]
        indices = np.arange(len(source))
    outside = [i for i in overlay_images if not 0 <= i < len(source)]
    if outside:  # before: dropped silently
        with runtime.input_checks():
            split = config.data.train_split if pool_json else config.data.eval_split
            raise ValueError(
                f"--overlay_images {outside}: the {split} split has {len(source)} images "
                f"(indices 0-{len(source) - 1})"
            )
    limit = max_images or config.eval.max_images
    indices = indices[:limit] if limit else indices
    indices = indices if scan else indices[:0]
    n = len(indices)
    batch_size = config.eval.batch_size
    per_image: dict[str, list] = {}
    inter = union = boxes = empty = 0.0
    batches = pipeline.iterate_eval(source, indices, setup.spec, batch_size=batch_size)
    for host in tqdm.tqdm(
        batches, total=-(-n // batch_size), desc="analysis", disable=not progress
    ):
        runtime.raise_pending_interrupt()  # a Ctrl-C lost where it was raised
        out = jax.device_get(analysis_fn(variables, evaluate.to_batch(host)))
        keep = np.asarray(out["valid"], bool)
        for key in out:
            if key not in ("valid", "iou_intersection", "iou_union", "box_count", "box_empty"):
                per_image.setdefault(key, []).append(np.asarray(out[key])[keep])
        inter = inter + np.asarray(out["iou_intersection"], np.float64)
        union = union + np.asarray(out["iou_union"], np.float64)
        boxes = boxes + np.asarray(out["box_count"], np.float64)
        empty = empty + np.asarray(out["box_empty"], np.float64)
    maps = {}
    if overlay_images:
        chosen = list(overlay_images)
        host = next(pipeline.iterate_eval(source, chosen, setup.spec, batch_size=len(chosen)))
        maps_fn = jax.jit(collect.make_analysis_fn(setup.model, return_maps=True, **kwargs))
        out = jax.device_get(maps_fn(variables, evaluate.to_batch(host)))
        for row, index in enumerate(chosen):
            maps[index] = {k: np.asarray(out[k][row]) for k in _MAP_KEYS}
            maps[index]["image"] = host["images"][row]
    columns = {k: np.concatenate(v) for k, v in per_image.items()}
    return {
        "columns": columns, "intersection": inter, "union": union, "boxes": boxes,
        "empty": empty, "maps": maps, "setup": setup,
        "weights": _strategy_weights(config, strategy),
    }  # fmt: skip


def _strategy_weights(config: ml_collections.ConfigDict, strategy: str) -> tuple:
    """(w_loc, w_cls, w_seg) of ``strategy`` as ``make_strategy`` builds it."""
    spec = experiment.strategy_specs(config, [strategy])[0]
    return tuple(spec.kwargs.get("weights", consistency_score.DEFAULT_WEIGHTS))
