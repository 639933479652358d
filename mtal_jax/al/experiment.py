"""The active-learning experiment (imperative shell): trials x strategies x cycles (SPEC §2).

Disk layout of ``workdir`` (every JSON written atomically, selections never rewritten):

  config.json                       the resolved config (a resume must match it)
  reference/                        fully trained reference run (100 % of the pool)
  trial_<t>/cycle_0/                the shared cycle-0 model of trial t (+ pool.json)
  trial_<t>/<strategy>/cycle_<k>/   k >= 1: selection.json (made with the cycle k-1 model),
                                    pool.json (labeled ids), scores.npz, train/, metrics.json
  results.json, summary.md, summary.json, mdsq.png, map.png, miou.png

Resume: every step checks for its durable output first (a cycle's ``selection.json``,
``pool.json`` and the training run's own checkpoints), so killing the process at any
moment and running the same command again continues where it stopped and ends with the
same labeled sets. Continuous training: cycle k starts from the best checkpoint of cycle
k-1 with a fresh optimizer and schedule.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from mtal_jax import jsonio, metrics, reporting, sharding, strategies
from mtal_jax.al import pool as pool_lib
from mtal_jax.al import schedule as schedule_lib
from mtal_jax.al import scoring
from mtal_jax.data import catalog, pipeline
from mtal_jax.models import multitask
from mtal_jax.train import loop
from mtal_jax.train import step as step_lib

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Setup:
    """Everything built once per experiment from the config."""

    dataset: catalog.Dataset
    spec: pipeline.Spec
    model: multitask.Model
    mesh: jax.sharding.Mesh
    train_cfg: loop.TrainConfig
    pool_size: int
    eval_indices: list[int]


def strategy_names(config: ml_collections.ConfigDict) -> list[str]:
    """The experiment's strategies, validated against the registry.

    Raises:
      ValueError: unknown or duplicate names (listing the valid ones).
    """
    names = [s.strip() for s in str(config.al.strategies).split(",") if s.strip()]
    if not names:
        raise ValueError("config.al.strategies is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"config.al.strategies has duplicates: {names}")
    for n in names:
        base = _base_name(n, config)
        if base not in strategies.STRATEGIES:
            raise ValueError(
                f"unknown strategy {base!r}; valid names: {', '.join(sorted(strategies.STRATEGIES))}"
            )
    return names


def _user_kwargs(name: str, config: ml_collections.ConfigDict) -> dict:
    kwargs = config.al.strategy.kwargs
    return dict(kwargs.get(name, {})) if kwargs else {}


def _base_name(name: str, config: ml_collections.ConfigDict) -> str:
    """Registry name of ``name``: itself, or the ``base`` of an alias defined in
    ``config.al.strategy.kwargs`` (e.g. ``{"ours_seg": {"base": "ours", "weights": (0, 0, 1)}}``
    for the Table I ablations)."""
    return _user_kwargs(name, config).get("base", name)


def build_setup(config: ml_collections.ConfigDict, *, needs_loss_prediction: bool = False) -> Setup:
    """Loads the dataset and builds spec, model, mesh and the training settings."""
    d = config.data
    dataset = catalog.load(
        d.name, data_dir=d.data_dir, root=d.root, builder_kwargs=dict(d.builder_kwargs)
    )
    spec = pipeline.Spec(
        image_hw=tuple(d.image_size),
        max_boxes=d.max_boxes,
        num_det_classes=len(dataset.det_classes),
        num_seg_classes=len(dataset.seg_classes),
        name=d.name,
    )
    model = multitask.Model(
        num_det_classes=spec.num_det_classes,
        num_seg_classes=spec.num_seg_classes,
        backbone=config.model.backbone,
        neck_channels=config.model.neck_channels,
        head_channels=config.model.head_channels,
        loss_prediction=bool(config.model.loss_prediction or needs_loss_prediction),
    )
    mesh = sharding.create_mesh(config.mesh.num_devices or None)
    train_cfg = train_config(config)
    eval_source = dataset.sources[d.eval_split]
    n_eval = (
        len(eval_source)
        if not config.eval.max_images
        else min(len(eval_source), config.eval.max_images)
    )
    return Setup(
        dataset=dataset,
        spec=spec,
        model=model,
        mesh=mesh,
        train_cfg=train_cfg,
        pool_size=len(dataset.sources[d.train_split]),
        eval_indices=list(range(n_eval)),
    )


def train_config(
    config: ml_collections.ConfigDict, *, num_steps: int | None = None, seed: int | None = None
):
    """``loop.TrainConfig`` from the config sections (unpacked at the boundary)."""
    t, l, e, c = config.train, config.loss, config.eval, config.checkpoint
    steps = int(num_steps if num_steps is not None else t.steps)
    return loop.TrainConfig(
        num_steps=steps,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        # At most a quarter of the run: short continuous-training cycles still decay.
        lr_warmup_steps=min(int(t.lr_warmup_steps), max(steps // 4, 1)),
        weight_decay=t.weight_decay,
        grad_clip_norm=t.grad_clip_norm,
        loss_weights={
            "det_heatmap": l.det_heatmap,
            "det_size": l.det_size,
            "det_offset": l.det_offset,
            "seg": l.seg,
        },
        ll4al_weight=l.ll4al_weight,
        ll4al_margin=l.ll4al_margin,
        ll4al_detach_step=l.ll4al_detach_step,
        seed=int(config.seed if seed is None else seed),
        flip=config.data.flip,
        log_every_steps=t.log_every_steps,
        eval_every_steps=e.every_steps,
        eval_batch_size=e.batch_size,
        eval_max_images=0,  # Setup.eval_indices already applies config.eval.max_images
        checkpoint_every_steps=c.every_steps,
        best_metric=c.best_metric,
        max_detections=e.max_detections,
        score_threshold=e.score_threshold,
        pretrained_backbone=os.path.expanduser(config.model.pretrained_backbone),
    )


def make_strategy(
    name: str, config: ml_collections.ConfigDict, *, cycle: int, context: dict
) -> strategies.Strategy:
    """Builds strategy ``name`` for ``cycle`` with the user's kwargs for it.

    ``context`` holds values only the shell knows (e.g. ``labeled_class_hist``);
    ``strategies.get_strategy`` passes each only to factories that take it. ``name`` may
    be an alias with a ``base`` strategy (see ``_base_name``).
    """
    user = _user_kwargs(name, config)
    base = user.pop("base", name)
    extra = {k: v for k, v in context.items() if k not in user}
    return strategies.get_strategy(base, cycle=cycle, **user, **extra)


def decode_kwargs(config: ml_collections.ConfigDict) -> dict:
    return {
        "max_detections": config.eval.max_detections,
        "score_threshold": config.eval.score_threshold,
    }


def select_images(
    setup: Setup,
    config: ml_collections.ConfigDict,
    strategy: strategies.Strategy,
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
      config: the config.
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
      ValueError: budget larger than the selectable pool.
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
            decode_kwargs=decode_kwargs(config),
            det_to_seg=np.asarray(setup.dataset.det_to_seg, np.int32),
        )
    )
    variables = sharding.put_replicated(variables, setup.mesh)
    source = setup.dataset.sources[config.data.train_split]
    idx = np.flatnonzero(scored)
    scores, feats = scoring.score_pool(
        predict_fn, variables, source, idx, setup.spec,
        batch_size=config.al.score_batch_size, mesh=setup.mesh, progress=progress,
    )  # fmt: skip
    full = {k: np.full(n, np.nan, np.float32) for k in scores}
    for k, v in scores.items():
        full[k][idx] = v
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


def image_ids(source: Any, indices: np.ndarray) -> list[str]:
    out = []
    for i in indices:
        v = source[int(i)].get("image_id", b"")
        out.append(v.decode() if isinstance(v, bytes) else str(v))
    return out


def labeled_class_hist(setup: Setup, config, labeled: np.ndarray) -> np.ndarray:
    """Mean ground-truth box count per detection class over the labeled images (CALD's r)."""
    source = setup.dataset.sources[config.data.train_split]
    counts = np.zeros(setup.spec.num_det_classes)
    idx = np.flatnonzero(labeled)
    for i in idx:
        labels = np.asarray(source[int(i)]["box_labels"]).reshape(-1)
        np.add.at(counts, labels[(labels >= 0) & (labels < len(counts))], 1.0)
    return counts / max(len(idx), 1)


def run(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True) -> list[dict]:
    """Runs (or resumes) the whole experiment of ``config`` in ``workdir``.

    Returns:
      The result records (also in ``workdir/results.json``).
    """
    names = strategy_names(config)
    setup = build_setup(
        config, needs_loss_prediction=any(_base_name(n, config) == "ll4al" for n in names)
    )
    _check_config_file(config, workdir)  # after the data loaded: a missing root leaves no trace
    n = setup.pool_size
    budgets = pool_lib.cycle_budgets(
        n, config.al.initial_fraction, config.al.budget_fraction, config.al.num_cycles
    )
    log.info(
        "pool %d images, eval %d, cycles %d (budgets %s), strategies %s, trials %d, %d devices",
        n, len(setup.eval_indices), config.al.num_cycles, budgets, names, config.al.num_trials,
        sharding.num_shards(setup.mesh),
    )  # fmt: skip
    src = setup.dataset.sources
    train_source, eval_source = src[config.data.train_split], src[config.data.eval_split]
    ref = reference_metrics(config, setup, workdir, progress=progress)
    records: list[dict] = []

    sched = schedule_lib.from_config(config.train, n)  # passes over the pool -> steps
    log.info(
        "schedule: cycle %d steps, cycle 0 %d, reference %d", sched.cycle_steps,
        sched.initial_steps, sched.reference_steps,
    )  # fmt: skip
    step_fns: dict[int, loop.StepFns] = {}  # by run length (it sets the LR schedule)

    def train_cycle(run_dir, labeled, init, seed, num_steps=None):
        cfg = train_config(config, seed=seed, num_steps=num_steps)
        if cfg.num_steps not in step_fns:  # compiled once per schedule, not per cycle
            step_fns[cfg.num_steps] = loop.build_step_fns(setup.model, cfg, setup.spec)
        return loop.train(
            setup.model, cfg, workdir=run_dir, spec=setup.spec,
            train_source=train_source, train_indices=np.flatnonzero(labeled),
            eval_source=eval_source, eval_indices=setup.eval_indices, mesh=setup.mesh,
            init_variables=init, progress=progress, fns=step_fns[cfg.num_steps],
        )  # fmt: skip

    def record(trial, strategy, cycle, labeled, result, seconds):
        rec = {
            "trial": trial, "strategy": strategy, "cycle": cycle,
            "labeled_fraction": float(labeled.mean()), "labeled_ids": np.flatnonzero(labeled).tolist(),
            "map": result["map"], "ap50": result["ap50"], "miou": result["miou"],
            "mdsq": _mdsq(result, ref),
        }  # fmt: skip
        records.append(rec)
        log.info(
            "trial %d | %-11s | cycle %d | %5.1f%% labeled | mAP %.4f AP50 %.4f mIoU %.4f mDSQ %.4f | %.0f s",
            trial, strategy, cycle, 100 * rec["labeled_fraction"], rec["map"], rec["ap50"], rec["miou"],
            rec["mdsq"], seconds,
        )  # fmt: skip
        if jax.process_index() == 0:
            jsonio.write_atomic(os.path.join(workdir, "results.json"), records)

    for trial in range(config.al.num_trials):
        seed = int(config.seed) + 1000 * trial
        base = os.path.join(workdir, f"trial_{trial}")
        labeled0 = _durable_pool(
            os.path.join(base, "cycle_0", "pool.json"),
            lambda seed=seed: pool_lib.initial_labeled(n, config.al.initial_fraction, seed),
            n,
        )
        t0 = time.time()
        result0 = train_cycle(
            os.path.join(base, "cycle_0"), labeled0, None, seed, sched.initial_steps
        )
        secs0 = time.time() - t0
        for name in names:
            record(trial, name, 0, labeled0, result0, secs0)
            labeled, result = labeled0, result0
            for cycle in range(1, config.al.num_cycles):
                t0 = time.time()
                cdir = os.path.join(base, name, f"cycle_{cycle}")
                labeled = _durable_selection(
                    setup, config, name, cycle, cdir, labeled, result["variables"], budgets[cycle - 1],
                    jax.random.fold_in(jax.random.key(seed), cycle), trial, progress,
                )  # fmt: skip
                result = train_cycle(
                    cdir, labeled, result["variables"], seed + cycle, sched.cycle_steps
                )
                record(trial, name, cycle, labeled, result, time.time() - t0)
    if jax.process_index() == 0:
        reporting.write_summary(records, workdir)
    return records


def _mdsq(result: dict, ref: dict) -> float:
    """mDSQ (SPEC Eq. 4), NaN when a reference value is not positive."""
    if not (ref["map"] > 0 and ref["miou"] > 0):
        return float("nan")
    return metrics.mdsq(result["map"], result["miou"], ref["map"], ref["miou"])


def _durable_pool(path: str, create, n: int) -> np.ndarray:
    """Reads the labeled ids at ``path`` or creates and writes them once."""
    if os.path.exists(path):
        ids = np.asarray(jsonio.read(path)["labeled_ids"], np.int64)
    else:
        ids = np.flatnonzero(create())
        if jax.process_index() == 0:
            jsonio.write_atomic(
                path, {"labeled_ids": ids.tolist(), "num_labeled": len(ids), "pool_size": n}
            )
    labeled = np.zeros(n, bool)
    labeled[ids] = True
    return labeled


def _durable_selection(
    setup, config, name, cycle, cdir, labeled, variables, budget, key, trial, progress
):
    """The labeled mask of ``cycle``: reads ``selection.json`` or scores, selects and writes it."""
    sel_path = os.path.join(cdir, "selection.json")
    if os.path.exists(sel_path):
        selected = np.asarray(jsonio.read(sel_path)["selected"], np.int64)
    else:
        context = {}
        factory = strategies.STRATEGIES[_base_name(name, config)]
        if "labeled_class_hist" in inspect.signature(factory).parameters:
            context["labeled_class_hist"] = labeled_class_hist(setup, config, labeled)
        strategy = make_strategy(name, config, cycle=cycle - 1, context=context)
        selected, scores, scored = select_images(
            setup, config, strategy, variables, labeled, budget, key, progress=progress
        )
        source = setup.dataset.sources[config.data.train_split]
        if jax.process_index() == 0:
            os.makedirs(cdir, exist_ok=True)
            tmp = os.path.join(cdir, f"scores.tmp{os.getpid()}.npz")
            np.savez(tmp, scored=scored, **scores)
            os.replace(tmp, os.path.join(cdir, "scores.npz"))
            jsonio.write_atomic(
                sel_path,
                {
                    "trial": trial, "strategy": name, "cycle": cycle, "budget": budget,
                    "selected": selected.tolist(), "image_ids": image_ids(source, selected),
                    "components": {k: v[selected].tolist() for k, v in scores.items()},
                    "key": np.asarray(jax.random.key_data(key)).tolist(),
                    "num_labeled_before": int(labeled.sum()),
                },
                overwrite=False,
            )  # fmt: skip
    new = pool_lib.add_selection(labeled, selected)
    _durable_pool(os.path.join(cdir, "pool.json"), lambda: new, len(labeled))
    return new


def reference_metrics(config, setup: Setup, workdir: str, *, progress: bool = True) -> dict:
    """Full-data reference (mAP, mIoU) for mDSQ: from the config, or a trained reference run."""
    if config.al.reference_map > 0 and config.al.reference_miou > 0:
        return {"map": float(config.al.reference_map), "miou": float(config.al.reference_miou)}
    if not config.al.full_reference:
        raise ValueError("set al.reference_map and al.reference_miou, or al.full_reference=True")
    src = setup.dataset.sources
    result = loop.train(
        setup.model, train_config(config, num_steps=schedule_lib.from_config(config.train, setup.pool_size).reference_steps), workdir=os.path.join(workdir, "reference"),
        spec=setup.spec, train_source=src[config.data.train_split], train_indices=np.arange(setup.pool_size),
        eval_source=src[config.data.eval_split], eval_indices=setup.eval_indices, mesh=setup.mesh, progress=progress,
    )  # fmt: skip
    log.info(
        "reference (100%% of the pool): mAP %.4f AP50 %.4f mIoU %.4f",
        result["map"],
        result["ap50"],
        result["miou"],
    )
    if not (result["map"] > 0 and result["miou"] > 0):
        log.warning(
            "the reference run reached mAP %.4f / mIoU %.4f: mDSQ is undefined (NaN); train longer "
            "(train.reference_epochs) or set al.reference_map / al.reference_miou", result["map"], result["miou"],
        )  # fmt: skip
    return {"map": result["map"], "miou": result["miou"]}


def _check_config_file(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Writes ``workdir/config.json``, or checks that a resumed run uses the same config."""
    path = os.path.join(workdir, "config.json")
    current = jsonio.normalize(config.to_dict())
    if os.path.exists(path):
        saved = jsonio.read(path)
        if saved != current:
            diff = sorted(_diff(saved, current))
            raise ValueError(
                f"{workdir} holds an experiment with another config (differs at {diff[:8]}); "
                "use a new --workdir or the same config to resume"
            )
    elif jax.process_index() == 0:
        jsonio.write_atomic(path, current)


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        return out
    return [] if a == b else [prefix]
