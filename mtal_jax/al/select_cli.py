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
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np

from mtal_jax import jsonio, output_file, runtime
from mtal_jax.al import diagnostics, experiment
from mtal_jax.export import directory as export_directory
from mtal_jax.train import run_files

log = logging.getLogger(__name__)


def read_id_file(path: str, all_ids: list[str] | None = None) -> list[str]:
    """Image ids, one per line (blank lines and ``#`` comments skipped), or a JSON list, or
    a run's ``pool.json`` (``{"labeled_ids": [pool indices], "pool_size": N, ...}``: the
    ids of its labeled images; needs ``all_ids``, the pool's ids in index order)."""
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
    if text.lstrip().startswith("{"):
        return _pool_json_ids(path, text, all_ids)
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"id file {path}: malformed JSON list: {e}") from e
        if not isinstance(ids, list) or any(isinstance(x, (dict, list)) for x in ids):
            raise ValueError(f"id file {path}: expected a JSON list of image ids")
        return [str(x) for x in ids]
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _pool_json_ids(path: str, text: str, all_ids: list[str] | None) -> list[str]:
    """The image ids of a run's ``pool.json`` (its labeled images)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"id file {path}: malformed JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("labeled_ids"), list):
        raise ValueError(  # noqa: TRY004 (bad file content: input_checks, one line)
            f"id file {path}: a JSON object, but not a run's pool.json (no labeled_ids list); "
            "expected image ids, one per line, or a JSON list of them"
        )
    if all_ids is None:
        raise ValueError(
            f"id file {path}: a run's pool.json names the labeled images: pass it as --labeled"
        )
    size = doc.get("pool_size", len(all_ids))
    if size != len(all_ids):
        raise ValueError(
            f"id file {path}: a pool.json of a pool of {size} images, but this config's pool "
            f"has {len(all_ids)}: another dataset or split"
        )
    indices = doc["labeled_ids"]
    bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int)
           or not 0 <= i < len(all_ids)]  # fmt: skip
    if bad:
        raise ValueError(
            f"id file {path}: labeled_ids holds {len(bad)} bad pool indices, e.g. {bad[:5]}"
        )
    return [all_ids[i] for i in indices]


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


def load_variables(config: ml_collections.ConfigDict, setup: experiment.Setup, path: str) -> dict:
    """Restores the model variables of checkpoint ``path`` for the model of ``config``
    (``train.run_files.load_variables``).

    Raises:
      FileNotFoundError: no checkpoint in ``path``.
      ValueError: the checkpoint does not match the config's model (other classes, backbone...).
      finite.NonFiniteError: the checkpoint's parameters are not finite (a diverged run).
    """
    return run_files.load_variables(path, setup.model, experiment.train_config(config), setup.spec)


def with_strategy_kwargs(
    config: ml_collections.ConfigDict, strategy: str, **overrides
) -> ml_collections.ConfigDict:
    """A copy of ``config`` with ``overrides`` (None values skipped) added to the strategy's
    ``config.al.strategy.kwargs[strategy]`` (the flags ``--det_score_threshold``,
    ``--cls_divergence``, ``--crop_window`` and ``--weights`` of ``select.py``)."""
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
    image_url_prefix: str | None = None,
    det_score_threshold: float | None = None,
    cls_divergence: str | None = None,
    weights: Sequence[float] | None = None,
    round_: int = 0,
    crop_window: str | None = None,
) -> list[dict]:
    """Scores the pool and writes the ranked selection; returns its rows.

    ``round_``: the annotation round, the protocol's cycle whose model scores (0: the
    first selection); only strategies that depend on it read it (Alternation: CALD or
    EquAL by its parity, docs/baselines.md).

    ``fmt`` "label-studio" or "coco" writes the folder ``output`` with pre-annotations and
    disagreement maps (``export.directory``; ``image_url_prefix`` for Label Studio).
    ``det_score_threshold``, ``cls_divergence``, ``crop_window`` and ``weights`` ((w_loc,
    w_cls, w_seg); None: the config's, else the strategy's defaults) override the
    strategy's kwargs (``ours``). For ``ours`` the score diagnostics
    of ``al.diagnostics`` are logged (warnings) and stored under ``"diagnostics"`` in the
    JSON output.
    """
    with runtime.input_checks():
        config = with_strategy_kwargs(
            config,
            strategy,
            det_score_threshold=det_score_threshold,
            cls_divergence=cls_divergence,
            crop_window=crop_window,
            weights=tuple(weights) if weights is not None else None,
        )
        plan = experiment.plan_from_config(config, names=[strategy])  # unknown names fail here
        spec = plan.strategy(strategy)
        if budget <= 0:
            raise ValueError(f"--budget must be positive, got {budget}")
        if round_ < 0:
            raise ValueError(f"--round must be >= 0, got {round_}")
        if image_url_prefix is not None and fmt != "label-studio":
            log.warning("--image_url_prefix is for --format label-studio; ignored with %s", fmt)
        run_files.check_weights(checkpoint)  # fail fast on a missing checkpoint
        if fmt in export_directory.FORMATS:
            export_directory.check_output(output)  # fail fast, before scoring
        else:
            output_file.check(output)  # and on an output that cannot be written
    setup = experiment.build_setup(config, needs_loss_prediction=spec.base == "ll4al")
    source = setup.dataset.sources[plan.train_split]
    n = setup.pool_size
    all_ids = experiment.image_ids(source, np.arange(n))
    id_to_index = {i: k for k, i in enumerate(all_ids)}
    with runtime.input_checks():
        candidates = (
            ids_to_mask(read_id_file(pool_file), id_to_index, n, pool_file)
            if pool_file
            else np.ones(n, bool)
        )
        labeled = (
            ids_to_mask(read_id_file(labeled_file, all_ids), id_to_index, n, labeled_file)
            if labeled_file
            else np.zeros(n, bool)
        )
        selectable = candidates & ~labeled
        if budget > int(selectable.sum()):
            raise ValueError(
                f"--budget {budget} is larger than the {int(selectable.sum())} unlabeled "
                "images of the pool"
            )
    with runtime.input_checks():  # a checkpoint of another model than the config's
        variables = load_variables(config, setup, checkpoint)
    context = experiment.cycle_context(setup, plan, spec, round_, labeled)
    strat = experiment.make_strategy(spec, context)
    key = jax.random.key(seed)
    selected, scores, _ = experiment.select_images(
        setup,
        plan,
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
        weights = {"weights": spec.kwargs["weights"]} if "weights" in spec.kwargs else {}
        diag = diagnostics.score_diagnostics(scores, mask=selectable, **weights)
        for warning in diag["warnings"]:
            log.warning("score diagnostics (%s): %s", strategy, warning)
        meta["diagnostics"] = diag
    if fmt in export_directory.FORMATS:
        export_directory.write(
            fmt, output, setup=setup, config=config, variables=variables, rows=rows, meta=meta,
            strategy=strategy, image_url_prefix=image_url_prefix, progress=progress,
        )  # fmt: skip
        log.info("exported %d images (%s) -> %s", len(rows), fmt, output)
        return rows
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
