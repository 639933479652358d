"""The experiment's boundary with the config: everything is unpacked here, once.

``plan_from_config`` turns the ``ConfigDict`` into a ``Plan`` (plain values: strategies,
trials, cycles, schedules, splits) and ``build_setup`` into a ``Setup`` (the built objects:
dataset, model, mesh, training settings); ``run_config`` is the ``TrainConfig`` of one run
of them. Every other module of the experiment works on these two, never on the config
(``training`` unpacks the training settings for them).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import ml_collections

from mtal_jax import sharding, strategies, strategy_identity
from mtal_jax.al import progress as progress_lib
from mtal_jax.al import schedule as schedule_lib
from mtal_jax.al.experiment import training
from mtal_jax.data import catalog, pipeline
from mtal_jax.models import multitask, pretrained
from mtal_jax.train import config as config_lib


@dataclasses.dataclass(frozen=True)
class StrategySpec:
    """One strategy of the experiment.

    Attributes:
      name: the name in results and run directories (a registry name or an alias).
      base: the registry name (``strategies.STRATEGIES``) it builds.
      kwargs: the factory's keyword hyperparameters.
    """

    name: str
    base: str
    kwargs: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The experiment's settings as plain values (from ``config.al``, ``train``, ``data``).

    Attributes:
      strategies: the strategies, in config order.
      num_trials: trials (each with its own initial pool and cycle-0 model).
      num_cycles: cycles per strategy, cycle 0 included.
      initial_fraction: labeled fraction of cycle 0.
      budget_fraction: fraction of the pool added per cycle.
      seed: base seed (trial t uses seed + 1000 t).
      train_split: the pool's split.
      eval_split: the evaluation split.
      score_batch_size: images per pool-scoring batch.
      decode_kwargs: detection decoding for scoring (``max_detections``,
        ``score_threshold``).
      schedule: training steps of cycles k >= 1, of cycle 0 and of the reference, from
        passes over the pool (``al.schedule``); None until the pool size is known.
      lr_warmup_steps: the configured warm-up (capped at a quarter of each run).
      ll4al_detach_fraction: share of an LL4AL cycle during which the loss modules'
        gradient reaches the backbone (``training.train_config``).
      reference_map: given reference mAP (> 0 skips the reference run).
      reference_miou: given reference mIoU.
      full_reference: train the reference when none is given.
      init_from: a run directory whose best weights start the cycle-0 models and the
        reference ("" = scratch, or the configured pretrained backbone).
      trials_per_strategy: trials each strategy runs (its first n trials, n <= num_trials;
        ``al.trials_per_strategy``); a strategy missing here runs every trial.
      order: the order of the (trial, strategy) runs (``al.order``, one of ``ORDERS``):
        ``"trial"`` runs every strategy of a trial before the next trial, ``"strategy"``
        every trial of a strategy before the next strategy (in config order), so the first
        strategies' comparisons are complete first. Results do not depend on it.
      run_trials: the trials this process runs (``al.run_trials``; empty = all): the other
        trials have no strategy here (``strategies_of_trial``), so they are neither trained,
        copied nor archived. Results do not depend on it.
    """

    strategies: tuple[StrategySpec, ...]
    num_trials: int
    num_cycles: int
    initial_fraction: float
    budget_fraction: float
    seed: int
    train_split: str
    eval_split: str
    score_batch_size: int
    decode_kwargs: dict[str, Any]
    schedule: schedule_lib.Schedule | None
    lr_warmup_steps: int
    ll4al_detach_fraction: float
    reference_map: float
    reference_miou: float
    full_reference: bool
    init_from: str = ""
    trials_per_strategy: dict[str, int] = dataclasses.field(default_factory=dict)
    order: str = "trial"
    run_trials: tuple[int, ...] = ()

    def trials_of(self, name: str) -> int:
        """Trials that strategy ``name`` runs: trials 0 .. n - 1 (``num_trials`` by default)."""
        return int(self.trials_per_strategy.get(name, self.num_trials))

    def strategies_of_trial(self, trial: int) -> tuple[StrategySpec, ...]:
        """The strategies that run in ``trial``, in config order (all share its cycle 0);
        none for a trial outside ``run_trials``."""
        if self.run_trials and trial not in self.run_trials:
            return ()
        return tuple(s for s in self.strategies if trial < self.trials_of(s.name))

    def run_order(self) -> tuple[tuple[int, StrategySpec], ...]:
        """The (trial, strategy) runs of the experiment in the order they run (``order``)."""
        pairs = [(t, s) for t in range(self.num_trials) for s in self.strategies_of_trial(t)]
        if self.order == "strategy":
            rank = {s.name: i for i, s in enumerate(self.strategies)}
            pairs.sort(key=lambda p: (rank[p[1].name], p[0]))
        return tuple(pairs)

    def planned_steps(self, *, train_reference: bool = True) -> int:
        """Training steps of the whole experiment (``schedule`` must be set): the reference
        (when trained), each trial's cycle 0, every strategy's later cycles."""
        s = self.schedule
        return progress_lib.planned_steps(
            reference_steps=s.reference_steps if train_reference else 0,
            initial_steps=s.initial_steps,
            strategies_per_trial=[len(self.strategies_of_trial(t)) for t in range(self.num_trials)],
            num_cycles=self.num_cycles,
            cycle_steps=s.cycle_steps,
        )

    def strategy(self, name: str) -> StrategySpec:
        """The ``StrategySpec`` called ``name``.

        Raises:
          ValueError: no such strategy in the plan.
        """
        for spec in self.strategies:
            if spec.name == name:
                return spec
        raise ValueError(f"strategy {name!r} is not in {[s.name for s in self.strategies]}")


@dataclasses.dataclass
class Setup:
    """Everything built once per experiment from the config."""

    dataset: catalog.Dataset
    spec: pipeline.Spec
    model: multitask.Model
    mesh: jax.sharding.Mesh
    train_cfg: config_lib.TrainConfig
    pool_size: int
    eval_indices: list[int]


def strategy_specs(
    config: ml_collections.ConfigDict, names: list[str] | None = None
) -> tuple[StrategySpec, ...]:
    """The ``StrategySpec`` of each name (default: ``config.al.strategies``), validated.

    A name is a registry name or an alias defined in ``config.al.strategy.kwargs`` with a
    ``base`` (e.g. ``{"ours_seg": {"base": "ours", "weights": (0, 0, 1)}}`` for the Table I
    ablations); the rest of its entry are the factory's keywords.

    Raises:
      ValueError: empty, duplicate or unknown names, hyperparameters the strategy does not
        take (listing the valid ones) or values its factory refuses (``ours`` weights, a
        ``det_score_threshold`` outside [0, 1], ...), before anything is trained.
    """
    if names is None:
        names = [s.strip() for s in str(config.al.strategies).split(",") if s.strip()]
    if not names:
        raise ValueError("config.al.strategies is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"config.al.strategies has duplicates: {names}")
    all_kwargs = config.al.strategy.kwargs
    specs = []
    for name in names:
        kwargs = dict(all_kwargs.get(name, {})) if all_kwargs else {}
        base = kwargs.pop("base", name)
        if base not in strategies.STRATEGIES:
            raise ValueError(
                f"unknown strategy {base!r}; valid names: {', '.join(sorted(strategies.STRATEGIES))}"
            )
        unknown = sorted(set(kwargs) - set(strategies.hyperparameters(base)))
        if unknown:
            raise ValueError(
                f"config.al.strategy.kwargs[{name!r}]: strategy {base!r} takes no keyword(s) "
                f"{unknown}; valid: {strategies.hyperparameters(base)}"
            )
        try:
            strategy_identity.selection_identity(base, kwargs)  # values too (ours: its weights)
            strategies.STRATEGIES[base](**kwargs)  # every value the factory checks, e.g. ranges
        except (ValueError, TypeError) as e:
            raise ValueError(f"config.al.strategy.kwargs[{name!r}]: {e}") from None
        specs.append(StrategySpec(name=name, base=base, kwargs=kwargs))
    return tuple(specs)


def trials_per_strategy(
    config: ml_collections.ConfigDict, specs: tuple[StrategySpec, ...]
) -> dict[str, int]:
    """Trials per strategy of the run: ``config.al.trials_per_strategy`` (optional; e.g.
    ``{"random": 5, "ours": 5, "entropy": 3}``) for the strategies of ``specs``,
    ``config.al.num_trials`` for the others.

    A strategy with n trials runs trials 0 .. n - 1 and skips the later ones; every trial
    trains its one cycle-0 model, shared by the strategies that run in it. Names that are
    valid strategies (registry names or aliases in ``config.al.strategy.kwargs``) but not
    in this run are ignored, so that ``--config.al.strategies`` may narrow a preset.

    Raises:
      ValueError: an unknown name (a typo), or a count that is not an integer in
        [1, ``al.num_trials``].
    """
    num_trials = int(config.al.num_trials)
    if num_trials < 1:
        raise ValueError(f"config.al.num_trials must be >= 1, got {num_trials}")
    given = config.al.get("trials_per_strategy", None) or {}
    given = dict(given.items())
    aliases = set(config.al.strategy.kwargs or {})
    out = {s.name: num_trials for s in specs}
    for name, count in given.items():
        if name not in strategies.STRATEGIES and name not in aliases:
            raise ValueError(
                f"config.al.trials_per_strategy: unknown strategy {name!r}; valid names: "
                f"{', '.join(sorted(set(strategies.STRATEGIES) | aliases))}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= num_trials:
            raise ValueError(
                f"config.al.trials_per_strategy[{name!r}] = {count!r}: must be an integer in "
                f"[1, config.al.num_trials = {num_trials}]"
            )
        if name in out:
            out[name] = count
    return out


ORDERS = ("trial", "strategy")


def run_trials(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """``config.al.run_trials`` ("3,4"; "" = every trial; a list or an int also do) as
    sorted trial indices (``Plan.run_trials``; empty = all).

    Raises:
      ValueError: an entry that is not an integer in [0, ``al.num_trials``).
    """
    given = config.al.get("run_trials", "")
    if isinstance(given, str):
        parts = [p.strip() for p in given.split(",") if p.strip()]
    elif isinstance(given, int) and not isinstance(given, bool):
        parts = [given]
    else:
        parts = list(given or ())
    num_trials = int(config.al.num_trials)
    out = set()
    for p in parts:
        t = int(p) if isinstance(p, int) or str(p).lstrip("-").isdigit() else None
        if isinstance(p, bool) or t is None or not 0 <= t < num_trials:
            raise ValueError(
                f"config.al.run_trials = {given!r}: {p!r} is not a trial index in "
                f"[0, {num_trials}) (al.num_trials = {num_trials})"
            )
        out.add(t)
    return tuple(sorted(out))


def run_order_name(config: ml_collections.ConfigDict) -> str:
    """``config.al.order`` (``Plan.order``; "trial" when the config has no such key).

    Raises:
      ValueError: not one of ``ORDERS``.
    """
    order = str(config.al.get("order", "trial"))
    if order not in ORDERS:
        raise ValueError(f"config.al.order = {order!r}: must be one of {list(ORDERS)}")
    return order


def plan_from_config(
    config: ml_collections.ConfigDict, names: list[str] | None = None, *, pool_size: int = 0
) -> Plan:
    """Unpacks the config into a ``Plan`` (``names`` overrides ``config.al.strategies``).

    With ``pool_size`` > 0 the schedule's passes over the pool become steps
    (``al.schedule``); without it ``Plan.schedule`` is None (``select.py``, validation).
    """
    a, t = config.al, config.train
    specs = strategy_specs(config, names)
    return Plan(
        strategies=specs,
        num_trials=int(a.num_trials),
        num_cycles=int(a.num_cycles),
        initial_fraction=float(a.initial_fraction),
        budget_fraction=float(a.budget_fraction),
        seed=int(config.seed),
        train_split=config.data.train_split,
        eval_split=config.data.eval_split,
        score_batch_size=int(a.score_batch_size),
        decode_kwargs=training.decode_kwargs(config),
        schedule=schedule_lib.from_config(t, pool_size) if pool_size > 0 else None,
        lr_warmup_steps=int(t.lr_warmup_steps),
        ll4al_detach_fraction=training.detach_fraction(config),
        reference_map=float(a.reference_map),
        reference_miou=float(a.reference_miou),
        full_reference=bool(a.full_reference),
        init_from=os.path.expanduser(str(config.checkpoint.get("init_from", "") or "")),
        trials_per_strategy=trials_per_strategy(config, specs),
        order=run_order_name(config),
        run_trials=run_trials(config),
    )


def build_setup(config: ml_collections.ConfigDict, *, needs_loss_prediction: bool = False) -> Setup:
    """Loads the dataset and builds spec, model, mesh and the training settings.

    Raises:
      pretrained.WeightsNotFoundError: ``config.model.pretrained_backbone`` is set to a file
        that does not exist (checked before the dataset is prepared).
      ValueError: an unknown ``model.backbone``, or ``loss.seg_class_weights`` does not fit
        the dataset's classes.
    """
    d = config.data
    multitask.check_backbone(config.model.backbone)
    if config.model.pretrained_backbone:
        pretrained.check_exists(config.model.pretrained_backbone)
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
    train_cfg = training.train_config(config)
    config_lib.check_config(train_cfg, mesh, spec.num_seg_classes)  # the weights need the classes
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


def run_config(
    setup: Setup, plan: Plan, *, num_steps: int, seed: int, ll4al: bool = False
) -> config_lib.TrainConfig:
    """The ``TrainConfig`` of one run of the experiment (length and seed of that run; an
    LL4AL cycle lets the loss modules' gradient reach the backbone, see
    ``training.train_config``)."""
    return dataclasses.replace(
        setup.train_cfg,
        num_steps=num_steps,
        seed=seed,
        lr_warmup_steps=training.warmup_steps(plan.lr_warmup_steps, num_steps),
        ll4al_detach_step=(
            training.ll4al_detach_step(plan.ll4al_detach_fraction, num_steps) if ll4al else 0
        ),
    )
