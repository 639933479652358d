"""``select.py``: rank an unlabeled pool with a trained checkpoint and write the selection.

Every input is checked before any scoring starts: unknown strategy, a budget larger than
the pool, pool/labeled files with unknown image ids, a checkpoint that does not match
the config's model.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os

import jax
import ml_collections
import numpy as np

from mtal_jax import checkpointing, jsonio, output_file, strategies
from mtal_jax.al import experiment
from mtal_jax.train import finite
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)


def read_id_file(path: str) -> list[str]:
    """Image ids, one per line (blank lines and ``#`` comments skipped), or a JSON list."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"id file {path} is a folder; give a file of image ids")
    if not os.path.exists(path):
        raise FileNotFoundError(f"id file {path} does not exist")
    try:  # Read once: a named pipe (``--pool <(...)``) cannot be read twice.
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"id file {path} is not UTF-8 text (byte {e.start}); expected image ids, one per line"
        ) from e
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"id file {path}: malformed JSON list: {e}") from e
        if not isinstance(ids, list) or any(isinstance(x, (dict, list)) for x in ids):
            raise ValueError(f"id file {path}: expected a JSON list of image ids")
        return [str(x) for x in ids]
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
      finite.NonFiniteError: the checkpoint's parameters are not finite (a diverged run).
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
    variables = jax.device_get(step_lib.variables_of(state))
    finite.check_variables(variables, where=f"checkpoint {directory} (step {step})")
    return variables


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
) -> list[dict]:
    """Scores the pool and writes the ranked selection; returns its rows."""
    if strategy not in strategies.STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; valid names: {', '.join(sorted(strategies.STRATEGIES))}"
        )
    if budget <= 0:
        raise ValueError(f"--budget must be positive, got {budget}")
    checkpoint_dir(checkpoint)  # fail fast on a missing checkpoint
    output_file.check(output)  # and on an output that cannot be written
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
    if fmt == "csv":
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        output_file.write_text(output, text.getvalue())
    else:
        output_file.write_text(output, jsonio.dumps(meta | {"selected": rows}) + "\n")
    log.info(
        "selected %d of %d images with %s -> %s", len(rows), int(selectable.sum()), strategy, output
    )
    return rows
