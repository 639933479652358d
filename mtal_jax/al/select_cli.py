"""``select.py``: rank an unlabeled pool with a trained checkpoint and write the selection.

Every input is checked before any scoring starts: unknown strategy, a budget larger than
the pool, pool/labeled files with unknown image ids, a checkpoint that does not match
the config's model.
"""

from __future__ import annotations

import csv
import logging
import os

import jax
import ml_collections
import numpy as np

from mtal_jax import checkpointing, jsonio, strategies
from mtal_jax.al import diagnostics, experiment
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)


def read_id_file(path: str) -> list[str]:
    """Image ids, one per line (blank lines and ``#`` comments skipped), or a JSON list."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"id file {path} does not exist")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return [str(x) for x in jsonio.read(path)]
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def ids_to_mask(ids: list[str], id_to_index: dict[str, int], n: int, path: str) -> np.ndarray:
    """[N] bool mask of ``ids``.

    Raises:
      ValueError: naming the file and the first unknown ids.
    """
    unknown = [i for i in ids if i not in id_to_index]
    if unknown:
        raise ValueError(f"{path}: {len(unknown)} unknown image id(s), e.g. {unknown[:5]}")
    mask = np.zeros(n, bool)
    mask[[id_to_index[i] for i in ids]] = True
    return mask


def checkpoint_dir(path: str) -> str:
    """The orbax manager directory of a run dir, its ``train`` dir or a manager dir."""
    for cand in (os.path.join(path, "train", "best"), os.path.join(path, "best"), path):
        if os.path.isdir(cand) and any(d.isdigit() for d in os.listdir(cand)):
            return cand
    raise FileNotFoundError(f"no checkpoint found in {path} (expected <run>/train/best/<step>)")


def load_variables(config: ml_collections.ConfigDict, setup: experiment.Setup, path: str) -> dict:
    """Restores the model variables of checkpoint ``path`` for the model of ``config``.

    Raises:
      ValueError: the checkpoint does not match the config's model (other classes, backbone...).
    """
    directory = checkpoint_dir(path)
    cfg = experiment.train_config(config)
    tx = state_lib.create_optimizer(
        learning_rate=cfg.learning_rate, warmup_steps=cfg.lr_warmup_steps, total_steps=cfg.num_steps,
        weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm,
    )  # fmt: skip
    like = jax.eval_shape(
        lambda: state_lib.create_train_state(
            setup.model, tx, jax.random.key(0), setup.spec.image_hw
        )
    )
    manager = checkpointing.make_manager(directory, best_metric="metric")
    try:
        step = manager.best_step() if manager.best_step() is not None else manager.latest_step()
        state, _ = checkpointing.restore(manager, step, like)
    except Exception as e:  # orbax raises many types for structure/shape mismatches
        raise ValueError(
            f"checkpoint {directory} does not match the model of the config "
            f"(backbone {config.model.backbone!r}, {setup.spec.num_det_classes} detection / "
            f"{setup.spec.num_seg_classes} segmentation classes): {type(e).__name__}: {str(e)[:300]}"
        ) from e
    finally:
        checkpointing.close(manager)
    return jax.device_get(step_lib.variables_of(state))


def with_strategy_kwargs(
    config: ml_collections.ConfigDict, strategy: str, **overrides
) -> ml_collections.ConfigDict:
    """A copy of ``config`` with ``overrides`` (None values skipped) added to the strategy's
    ``config.al.strategy.kwargs[strategy]`` (the flags ``--det_score_threshold`` and
    ``--cls_divergence`` of ``select.py``)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if not overrides:
        return config
    config = ml_collections.ConfigDict(config.to_dict())  # unlocked copy
    kwargs = dict(config.al.strategy.kwargs or {})
    kwargs[strategy] = {**dict(kwargs.get(strategy, {})), **overrides}
    config.al.strategy.kwargs = kwargs
    return config


def run(
    config: ml_collections.ConfigDict,
    *,
    strategy: str,
    checkpoint: str,
    budget: int,
    pool_file: str | None = None,
    labeled_file: str | None = None,
    output: str = "selection.json",
    fmt: str = "json",
    seed: int = 0,
    progress: bool = True,
    det_score_threshold: float | None = None,
    cls_divergence: str | None = None,
) -> list[dict]:
    """Scores the pool and writes the ranked selection; returns its rows.

    ``det_score_threshold`` and ``cls_divergence`` (None: the config's, else the strategy's
    defaults) override the strategy's kwargs (``ours``). For ``ours`` the score diagnostics
    of ``al.diagnostics`` are logged (warnings) and stored under ``"diagnostics"`` in the
    JSON output.
    """
    if strategy not in strategies.STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; valid names: {', '.join(sorted(strategies.STRATEGIES))}"
        )
    if budget <= 0:
        raise ValueError(f"--budget must be positive, got {budget}")
    checkpoint_dir(checkpoint)  # fail fast on a missing checkpoint
    config = with_strategy_kwargs(
        config, strategy, det_score_threshold=det_score_threshold, cls_divergence=cls_divergence
    )
    setup = experiment.build_setup(config, needs_loss_prediction=strategy == "ll4al")
    source = setup.dataset.sources[config.data.train_split]
    n = setup.pool_size
    all_ids = experiment.image_ids(source, np.arange(n))
    id_to_index = {i: k for k, i in enumerate(all_ids)}
    candidates = (
        ids_to_mask(read_id_file(pool_file), id_to_index, n, pool_file)
        if pool_file
        else np.ones(n, bool)
    )
    labeled = (
        ids_to_mask(read_id_file(labeled_file), id_to_index, n, labeled_file)
        if labeled_file
        else np.zeros(n, bool)
    )
    selectable = candidates & ~labeled
    if budget > int(selectable.sum()):
        raise ValueError(
            f"--budget {budget} is larger than the {int(selectable.sum())} unlabeled images of the pool"
        )
    variables = load_variables(config, setup, checkpoint)
    context = {"labeled_class_hist": experiment.labeled_class_hist(setup, config, labeled)}
    strat = experiment.make_strategy(strategy, config, cycle=0, context=context)
    key = jax.random.key(seed)
    selected, scores, _ = experiment.select_images(
        setup,
        config,
        strat,
        variables,
        labeled,
        budget,
        key,
        candidates=candidates,
        progress=progress,
    )
    rows = []
    for rank, idx in enumerate(selected):
        row = {"rank": rank + 1, "index": int(idx), "image_id": all_ids[idx]}
        row.update({k: float(v[idx]) for k, v in scores.items()})
        rows.append(row)
    meta = {
        "strategy": strategy,
        "checkpoint": os.path.abspath(checkpoint),
        "budget": budget,
        "seed": seed,
    }
    if diagnostics.has_components(scores):
        user = dict(config.al.strategy.kwargs.get(strategy, {}) or {})
        weights = {"weights": user["weights"]} if "weights" in user else {}
        diag = diagnostics.score_diagnostics(scores, mask=selectable, **weights)
        for warning in diag["warnings"]:
            log.warning("score diagnostics (%s): %s", strategy, warning)
        meta["diagnostics"] = diag
    if fmt == "csv":
        tmp = f"{output}.tmp{os.getpid()}"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, output)
    else:
        jsonio.write_atomic(output, meta | {"selected": rows})
    log.info(
        "selected %d of %d images with %s -> %s", len(rows), int(selectable.sum()), strategy, output
    )
    return rows
