"""Runs shared with another experiment (``al.share_from``): finished runs that this
experiment would train again exactly are copied from the other one instead.

Two experiments that differ only in their strategies and trial counts (e.g. Table I's
``table1`` preset and the main comparison's ``repro``: ``SHARED_EXEMPT`` lists what may
differ) train the same reference and, for each trial, the same cycle-0 model (seeded by the
trial, on the same network); a strategy that builds the same selector (same registry
strategy, same hyperparameters once defaults are filled in: ``ours_js_all`` is ``ours``)
then selects and trains the same cycles from that cycle-0 model. Such runs are copied:

- ``reference``: when this experiment trains one and has none yet;
- ``trial_<t>/cycle_0``: when this experiment runs trial t and has none yet, the source's
  has finished and its weights are there (the strategies start from them);
- ``trial_<t>/<strategy>``: when the same trial's ``cycle_0`` here was itself copied from the
  source, and an equivalent source strategy has finished every cycle of trial t (its
  ``selection.json`` records are renamed to this experiment's strategy name).

A copied run directory holds ``shared_from.json`` (the source experiment and run); it is
then an ordinary finished run of this experiment (resumed, archived and reported like one;
its ``wall.json`` is the source's). Copies are written beside their target and renamed
into place, so a crash leaves either no copy or a whole one. What is not copied is trained
here as usual; the records end as those of a run that trained everything, on the machine
that trained the source.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import shutil
from typing import Any

import jax
import ml_collections

from mtal_jax import jsonio, strategy_identity
from mtal_jax.al.experiment import durable
from mtal_jax.al.experiment import setup as setup_lib
from mtal_jax.train import run_files, weights_file

log = logging.getLogger(__name__)

MARKER = "shared_from.json"

# Config keys in which a sharing experiment may differ from its source: which strategies
# run, how many trials, their order, where to share from. Everything else (data, model,
# training, schedules, cycles, seed, evaluation) must be equal.
SHARED_EXEMPT: tuple[str, ...] = (
    "al.strategies",
    "al.num_trials",
    "al.trials_per_strategy",
    "al.strategy",
    "al.order",
    "al.run_trials",
    "al.share_from",
)


@dataclasses.dataclass(frozen=True)
class Share:
    """One run directory to copy: ``source_run`` of the source experiment to ``run`` here
    (both relative to their experiment's directory)."""

    run: str
    source_run: str


def check_source(source: str, config_dict: dict) -> dict:
    """The config of the experiment in ``source``, checked against this experiment's.

    Args:
      source: the source experiment's run directory (``al.share_from``).
      config_dict: this experiment's resolved config (``config.to_dict()``).

    Returns:
      The source's config dict (``config.json``, with ``durable.ADDED_KEYS`` filled in).

    Raises:
      ValueError: ``source`` holds no experiment, or one whose config differs outside
        ``SHARED_EXEMPT`` (naming the keys).
    """
    path = os.path.join(source, "config.json")
    if not os.path.exists(path):
        raise ValueError(
            f"al.share_from={source!r}: no experiment there (no {path}); restore or run it "
            "first (experiments/README.md), or set al.share_from='' to train every run here"
        )
    saved = durable.with_added_keys(jsonio.read(path))
    diff = sorted(
        durable.config_diff(
            durable.without_keys(saved, SHARED_EXEMPT),
            durable.without_keys(jsonio.normalize(config_dict), SHARED_EXEMPT),
        )
    )
    if diff:
        raise ValueError(
            f"al.share_from={source!r}: its experiment differs from this one at {diff[:8]}; "
            f"runs are shared only between experiments that differ in {list(SHARED_EXEMPT)}"
        )
    mine, theirs = has_loss_modules(config_dict), has_loss_modules(saved)
    if mine != theirs:  # the strategy list is exempt, but it can decide the network
        raise ValueError(
            f"al.share_from={source!r}: its network {'has' if theirs else 'lacks'} the LL4AL "
            f"loss modules and this one's {'has' if mine else 'lacks'} them "
            "(model.loss_prediction false, and an ll4al strategy in one list only): its "
            "checkpoints do not fit; set model.loss_prediction=True in both, or share nothing"
        )
    return saved


def has_loss_modules(config_dict: dict) -> bool:
    """Whether the experiment of ``config_dict`` builds the network with the LL4AL loss
    modules: ``model.loss_prediction``, or a strategy whose base is ``ll4al``
    (``setup.build_setup``'s ``needs_loss_prediction``)."""
    if (config_dict.get("model") or {}).get("loss_prediction"):
        return True
    al = config_dict.get("al") or {}
    names = al.get("strategies") or ""
    names = names.split(",") if isinstance(names, str) else list(names)
    kwargs = (al.get("strategy") or {}).get("kwargs") or {}
    return any(
        (kwargs.get(n.strip()) or {}).get("base", n.strip()) == "ll4al" for n in names if n.strip()
    )


def _builds(spec: setup_lib.StrategySpec) -> tuple[str, Any]:
    """What a strategy selects with: its registry name and every hyperparameter that can
    change a selection (``strategy_identity.selection_identity``; JSON values compared with ``==``,
    so ``(1, 1, 1)`` and ``(1.0, 1.0, 1.0)`` are the same weights)."""
    return spec.base, jsonio.normalize(strategy_identity.selection_identity(spec.base, spec.kwargs))


def _finished_with_weights(run_dir: str) -> bool:
    if not run_files.is_finished(run_dir):
        return False
    return os.path.exists(os.path.join(run_dir, weights_file.FILENAME)) or run_files.has_checkpoint(
        run_dir, "best"
    )


def copied_from(run_dir: str, source: str) -> str | None:
    """The source run ``run_dir`` was copied from (``MARKER``), when from ``source``."""
    path = os.path.join(run_dir, MARKER)
    if not os.path.exists(path):
        return None
    marker = jsonio.read(path)
    same = os.path.normpath(marker.get("source", "")) == os.path.normpath(source)
    return marker.get("run") if same else None


def _trains_reference(plan: setup_lib.Plan) -> bool:
    return plan.full_reference and not (plan.reference_map > 0 and plan.reference_miou > 0)


def steps_shared(plan: setup_lib.Plan, source_plan: setup_lib.Plan) -> int:
    """Training steps of ``plan`` that sharing saves once an experiment of ``source_plan``
    has finished every run (the two configs agree outside ``SHARED_EXEMPT``, so their
    schedules are equal; ``plan.schedule`` must be set): its reference, the cycle-0 models of
    the trials both run and, in those trials, the cycles of the strategies the source runs
    equivalently (``plan.planned_steps() - steps_shared(...)`` is what is left to train).
    """
    s = plan.schedule
    if s is None:
        raise ValueError("steps_shared: the plan has no schedule (pool size unknown)")
    saved = s.reference_steps if _trains_reference(plan) and _trains_reference(source_plan) else 0
    for t in range(min(plan.num_trials, source_plan.num_trials)):
        source_builds = [_builds(spec) for spec in source_plan.strategies_of_trial(t)]
        if not source_builds or not plan.strategies_of_trial(t):
            continue  # a side that runs no strategy in trial t trains no cycle-0 model
        saved += s.initial_steps
        equivalent = sum(_builds(spec) in source_builds for spec in plan.strategies_of_trial(t))
        saved += equivalent * (plan.num_cycles - 1) * s.cycle_steps
    return saved


def steps_within(plan: setup_lib.Plan, source_plan: setup_lib.Plan | None = None) -> int:
    """Training steps of ``plan`` that ``share_within`` saves: in each trial, every strategy
    that selects like another one of the trial (``_builds``) trains once; the others are
    copies. With ``source_plan`` (``al.share_from``), strategies that ``steps_shared`` counts
    as copied from the source are left out, so the two counts add up."""
    s = plan.schedule
    if s is None:
        raise ValueError("steps_within: the plan has no schedule (pool size unknown)")
    saved = 0
    for t in range(plan.num_trials):
        builds = [_builds(spec) for spec in plan.strategies_of_trial(t)]
        if source_plan is not None and t < source_plan.num_trials:
            source_builds = [_builds(spec) for spec in source_plan.strategies_of_trial(t)]
            if source_builds:  # the trial's cycle-0 model is the source's
                builds = [b for b in builds if b not in source_builds]
        distinct = {json.dumps(b, sort_keys=True) for b in builds}
        saved += (len(builds) - len(distinct)) * (plan.num_cycles - 1) * s.cycle_steps
    return saved


def plan_shares(
    source: str, source_config: dict, workdir: str, plan: setup_lib.Plan
) -> list[Share]:
    """The runs of ``plan`` (in ``workdir``) to copy from experiment ``source`` now (see the
    module docstring), in the order they are copied (a trial's ``cycle_0`` before its
    strategies)."""
    src_specs = setup_lib.strategy_specs(ml_collections.ConfigDict(source_config))
    src_builds = [(_builds(spec), spec.name) for spec in src_specs]
    last = plan.num_cycles - 1
    out: list[Share] = []
    if (
        _trains_reference(plan)
        and not os.path.exists(os.path.join(workdir, "reference"))
        and run_files.is_finished(os.path.join(source, "reference"))
    ):
        out.append(Share("reference", "reference"))
    for t in range(plan.num_trials):
        if not plan.strategies_of_trial(t):
            continue  # not run by this process (al.run_trials)
        cycle0 = os.path.join(f"trial_{t}", "cycle_0")
        here = os.path.join(workdir, cycle0)
        if not os.path.exists(here):
            if not _finished_with_weights(os.path.join(source, cycle0)):
                continue
            out.append(Share(cycle0, cycle0))
        elif copied_from(here, source) != cycle0:
            continue  # trained here: the source's strategy runs started from another model
        for spec in plan.strategies_of_trial(t):
            run = os.path.join(f"trial_{t}", spec.name)
            builds = _builds(spec)
            src_name = next((name for b, name in src_builds if b == builds), None)
            if src_name is None or os.path.exists(os.path.join(workdir, run)):
                continue
            src_run = os.path.join(f"trial_{t}", src_name)
            cycles = [os.path.join(source, src_run, f"cycle_{k}") for k in range(1, last + 1)]
            if all(run_files.is_finished(c) for c in cycles):
                out.append(Share(run, src_run))
    return out


def copy_run(source: str, share: Share, workdir: str, *, strategy: str | None = None) -> None:
    """Copies ``source/share.source_run`` to ``workdir/share.run`` (beside, then renamed), with
    ``MARKER``; ``strategy``: the name written into the copied ``selection.json`` records.
    Checkpoints are copied as they are (a finished run is read back from its best one)."""
    target = os.path.join(workdir, share.run)
    tmp = f"{target.rstrip(os.sep)}.tmp{os.getpid()}"
    # Copies killed half way (any process: the experiment's workdir lock makes this one the
    # only writer) left these behind; they would read as runs of a strategy "<name>.tmp<pid>".
    for stale in glob.glob(f"{glob.escape(target.rstrip(os.sep))}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    shutil.copytree(
        os.path.join(source, share.source_run),
        tmp,
        ignore=shutil.ignore_patterns(".lock", "*.tmp*"),
    )
    try:
        if strategy is not None:
            for root, _, names in os.walk(tmp):
                if "selection.json" in names:
                    path = os.path.join(root, "selection.json")
                    record: dict[str, Any] = jsonio.read(path)
                    record["strategy"] = strategy
                    jsonio.write_atomic(path, record)
        jsonio.write_atomic(os.path.join(tmp, MARKER), {"source": source, "run": share.source_run})
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        jsonio.fsync_tree(tmp)  # complete on disk before it reads as a finished run
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def equivalent_finished_run(
    workdir: str, plan: setup_lib.Plan, trial: int, spec: setup_lib.StrategySpec
) -> Share | None:
    """A finished run of this experiment that ``spec`` would train again exactly in
    ``trial``: the run of another strategy of the same trial (same cycle-0 model) that
    selects with the same identity (``_builds``: e.g. Table I's ``ours_kl_loc`` and
    ``ours_js_loc``) and has finished every cycle. None when ``spec`` has a run directory in
    ``trial`` already (started runs continue as they are) or no such run exists."""
    run = os.path.join(f"trial_{trial}", spec.name)
    if os.path.exists(os.path.join(workdir, run)):
        return None
    builds = _builds(spec)
    for other in plan.strategies_of_trial(trial):
        if other.name == spec.name or _builds(other) != builds:
            continue
        src_run = os.path.join(f"trial_{trial}", other.name)
        cycles = [os.path.join(workdir, src_run, f"cycle_{k}") for k in range(1, plan.num_cycles)]
        if cycles and all(run_files.is_finished(c) for c in cycles):
            return Share(run, src_run)
    return None


def share_within(
    workdir: str, plan: setup_lib.Plan, trial: int, spec: setup_lib.StrategySpec
) -> Share | None:
    """Copies ``equivalent_finished_run`` into ``spec``'s run of ``trial`` (process 0; the
    others wait), so the protocol replays it in seconds instead of training it again. The
    copy's ``selection.json`` records carry ``spec.name``; its stored score components are
    the source's (for ``ours_kl_*`` copied from ``ours_js_*``: the JS values of S_cls, which
    the selection did not use). Returns the copy made, or None."""
    share = equivalent_finished_run(workdir, plan, trial, spec)
    if share is not None and jax.process_index() == 0:
        copy_run(workdir, share, workdir, strategy=spec.name)
        log.info(
            "%s: copied from %s (the same selections: %s selects like %s)",
            os.path.join(workdir, share.run), os.path.join(workdir, share.source_run),
            spec.name, os.path.basename(share.source_run),
        )  # fmt: skip
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"mtal_jax.share_within.{trial}.{spec.name}")
    return share


def share_runs(source: str, source_config: dict, workdir: str, plan: setup_lib.Plan) -> list[Share]:
    """Copies every run ``plan_shares`` finds (process 0 only; the others wait for it).

    Returns:
      The copies made.
    """
    shares = plan_shares(source, source_config, workdir, plan)
    if jax.process_index() == 0:
        for share in shares:
            strategy = None
            parts = share.run.split(os.sep)
            if len(parts) == 2 and parts[1] != "cycle_0" and parts[0].startswith("trial_"):
                strategy = parts[1]
            copy_run(source, share, workdir, strategy=strategy)
            log.info(
                "%s: copied from %s (al.share_from)",
                os.path.join(workdir, share.run),
                os.path.join(source, share.source_run),
            )
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("mtal_jax.share_runs")
    return shares
