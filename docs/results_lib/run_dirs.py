"""The run directories docs/results.md is built from: each dataset's default runs (main
comparison, Table I, ``trials10``, ``balanced``, ``native``, the GPU runs), a live run or
its archive in ``experiments/``, its records, config and wall times, and the runs it
copied from another experiment (``al.share_from``).
"""

from __future__ import annotations

import glob
import math
import os
import sys

import numpy as np

from docs.results_lib import page_files
from mtal_jax import jsonio

M = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

DATASETS = {  # name: (title, config file, default main run, default Table I run)
    "synthetic": ("Synthetic default", "configs/default.py", "runs/repro_synthetic",
                  "runs/table1_synthetic"),
    "camvid": ("CamVid", "configs/camvid.py", "runs/repro_camvid", "runs/table1_camvid"),
}  # fmt: skip
# The ``trials10`` experiment (ours against random over 10 trials) where it is planned: on
# CamVid the main comparison's 5 trials leave that gain at the noise floor; on the synthetic
# default they separate it (``--synthetic_trials10`` reports one made there too).
TRIALS10 = {"camvid": "runs/trials10_camvid"}
# Beyond the paper: the ``balanced`` preset (ours with weights that give its three terms one
# spread, beside random and ours in the same trials), where it is planned.
BALANCED = {"synthetic": "runs/balanced_synthetic", "camvid": "runs/balanced_camvid"}
# Beyond the paper too: the ``native`` preset, where it is planned.
NATIVE = {"synthetic": "runs/native_synthetic", "camvid": "runs/native_camvid"}
# Runs of the main comparison made on a GPU, beside the CPU runs: ``bench/gpu_check.sh`` with
# ``EXPERIMENT=configs/<name>.py:repro``, its records and wall times, and its device facts in
# ``device/`` (an archive once a lease has archived it, continued with ``RESUME``).
GPU_RUNS = {"synthetic": "experiments/gpu_h200_synthetic"}
# The main comparison's strategies run on a GPU as one process per (strategy, trial)
# (``PARALLEL_JOBS`` of ``bench/gpu_check.sh``, ``mtal_jax.al.parallel_cli``), from the CPU
# run's reference and cycle-0 models (``bench/gpu_base.sh``); the device facts and each
# lease's ``parallel.json`` are in ``device/``.
GPU_PARALLEL_RUNS = {"synthetic": "experiments/gpu_h200_parallel"}

# The page's caveat on every wall time it sums from ``wall.json``.
WALL_NOTE = (
    "a lower bound: work redone after an interruption is not counted, and runs finished "
    "before 2026-12-03 04:10 UTC count only the session that finished them"
)


def default_run(path):
    """``path`` (``runs/<name>``, relative to the repository root), or the archive
    ``experiments/<name>`` when only it exists, or when ``path`` lacks records the archive
    holds (a run directory behind its archive: said on stderr)."""
    archived = os.path.join(M, "experiments", os.path.basename(path))
    if not os.path.exists(os.path.join(archived, "archive.json")):
        return path
    if not os.path.exists(os.path.join(M, path)):
        return archived
    from mtal_jax.al.experiment import archive

    lost = archive.missing_records(archived, os.path.join(M, path))
    if lost:
        print(
            f"{path} lacks {len(lost)} records of its archive {shown_path(archived)} (e.g. "
            f"{lost[0]}): the page reads the archive instead (to continue from the archive, "
            f"move {path} aside and run `python -m mtal_jax.al.archive_cli restore "
            f"{shown_path(archived)} {path}`)",
            file=sys.stderr,
        )
        return archived
    return path


def shown_path(path):
    """``path`` relative to the repository root when inside it (as the page names files)."""
    rel = os.path.relpath(os.path.abspath(path), M)
    return path if rel.startswith("..") else rel


def shown(run):
    """``run`` as the page's commands name it: an archive is continued in ``runs/<name>``."""
    if run and os.path.exists(os.path.join(run, "archive.json")):
        return os.path.join("runs", os.path.basename(os.path.normpath(run)))
    return run


def is_copied(path, run):
    """Whether ``path`` (inside run directory ``run``) lies in a run copied from another
    experiment (its ``shared_from.json``)."""
    from mtal_jax.al.experiment import share

    while os.path.normpath(path) != os.path.normpath(run) and len(path) > len(run):
        if os.path.exists(os.path.join(path, share.MARKER)):
            return True
        path = os.path.dirname(path)
    return False


def names_of(run):
    """The normalized paths a run directory stands for: itself and, for an archive
    (``experiments/<name>``), the run directory it was saved from."""
    names = {os.path.normpath(run)} if run else set()
    archived = page_files.read_json(os.path.join(run, "archive.json")) if run else None
    if archived and archived.get("source"):
        names.add(os.path.normpath(archived["source"]))
    return names


def with_copied_runs(records, run, source, source_records):
    """``records`` of run directory ``run`` plus those of the strategy-trials copied from
    ``source`` (``al.share_from``; its records ``source_records``) that ``run``'s protocol has
    not replayed yet (it replays them, in seconds, only when its order reaches them): the
    same runs, so the same records under this experiment's strategy name. Only the cycles
    whose run was copied (their ``metrics.json``) and cycle 0 (shared by the trial)."""
    from mtal_jax.al.experiment import share

    if not source or not run or not os.path.isdir(run):
        return records
    have = {(r["trial"], r["strategy"]) for r in records}
    added = []
    for marker in sorted(glob.glob(os.path.join(run, "trial_*", "*", share.MARKER))):
        strategy_dir = os.path.dirname(marker)
        strategy = os.path.basename(strategy_dir)
        trial = int(os.path.basename(os.path.dirname(strategy_dir)).split("_")[1])
        copied = share.copied_from(strategy_dir, source)  # "trial_<t>/<strategy>"
        if (trial, strategy) in have or copied is None:
            continue
        src_trial, src_strategy = copied.split("/")
        cycles = {0} | {
            int(c.split("_")[1])
            for c in os.listdir(strategy_dir)
            if c.startswith("cycle_")
            and os.path.exists(os.path.join(strategy_dir, c, "metrics.json"))
        }
        added += [
            dict(r, trial=trial, strategy=strategy)
            for r in source_records
            if f"trial_{r['trial']}" == src_trial
            and r["strategy"] == src_strategy
            and r["cycle"] in cycles
        ]
    return records + added


def load_run(run):
    """(records, config dict or None, summed wall seconds of its runs) of a run directory;
    runs copied from another experiment (``al.share_from``) count there, not here."""
    if not run or not os.path.exists(os.path.join(run, "results.json")):
        return [], None, 0.0
    walls = [
        p
        for p in glob.glob(os.path.join(run, "**", "wall.json"), recursive=True)
        if not is_copied(os.path.dirname(p), run)
    ]
    seconds = sum(float(jsonio.read(p)["seconds"]) for p in walls)
    return (
        jsonio.read(os.path.join(run, "results.json")),
        page_files.read_json(f"{run}/config.json"),
        seconds,
    )


def last_cycle(config):
    """A run's planned last cycle (``al.num_cycles`` - 1; None without a config): label
    efficiency reads a curve without it as still running (``reporting.summarize``)."""
    num_cycles = ((config or {}).get("al") or {}).get("num_cycles")
    return None if num_cycles is None else int(num_cycles) - 1


def walls_under(run, pattern):
    """{path relative to ``run``: wall seconds} of the ``wall.json`` files under ``pattern``."""
    paths = glob.glob(os.path.join(run, pattern, "wall.json")) if run else []
    return {
        os.path.relpath(os.path.dirname(p), run): float(jsonio.read(p)["seconds"]) for p in paths
    }


def cycle_seconds(run):
    """Median wall seconds of the run's finished AL cycles trained here
    (``trial_*/<strategy>/cycle_*``, selection included; ``pace``); NaN when none has
    finished."""
    return pace(run, cycle_0=False)["cycle"][0]


def pace(run, *, cycle_0=True):
    """How long the run's finished runs took here: ``{"cycle": (median, 90th percentile)}``
    of its AL cycle runs' wall seconds, and ``"cycle_0"`` the same of its trials' cycle-0
    models (left out with ``cycle_0=False``: a run that copies them); runs copied from
    another experiment (``is_copied``: their ``wall.json`` is the source's) do not count;
    NaN where none has finished. The percentile shows how much the pace varied (the
    machine differs between sessions)."""

    def stats(pattern):
        walls = walls_under(run, pattern)
        seconds = [s for rel, s in walls.items() if not is_copied(os.path.join(run, rel), run)]
        if not seconds:
            return (math.nan, math.nan)
        return tuple(float(x) for x in np.percentile(seconds, [50, 90]))

    out = {"cycle": stats(os.path.join("trial_*", "*", "cycle_*"))}
    if cycle_0:
        out["cycle_0"] = stats(os.path.join("trial_*", "cycle_0"))
    return out


def planned_trials(al):
    """{strategy: planned trials} of a run's ``al`` config (``al.trials_per_strategy``, else
    ``al.num_trials`` each); {} when the config does not say."""
    if "strategies" not in al or "num_trials" not in al:
        return {}
    per = al.get("trials_per_strategy") or {}
    names = [s.strip() for s in str(al["strategies"]).split(",") if s.strip()]
    return {s: int(per.get(s, al["num_trials"])) for s in names}


CONTINUE_SH = os.path.join(M, "experiments", "continue.sh")


def queued_num_trials(run, script=None):
    """The trial count ``experiments/continue.sh`` continues ``run`` with when its entry
    raises it (``--config.al.num_trials=N``), else None: an extension queued but not started
    yet, which the page reports beside the finished look."""
    name = os.path.basename(os.path.normpath(run))
    try:
        with open(script or CONTINUE_SH, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.strip().strip('"').split()
        if words and words[0] == name:
            for w in words:
                if w.startswith("--config.al.num_trials="):
                    value = w.partition("=")[2]
                    return int(value) if value.isdigit() else None  # a shell expansion: unknown
    return None


def preset_plan(cfg_path, variant, pool, num_trials=None):
    """The experiment plan of ``<cfg_path>:<variant>`` on a pool of ``pool`` images (with
    ``num_trials`` trials instead of the preset's, given one)."""
    from mtal_jax import config_file
    from mtal_jax.al import experiment

    config = config_file.load(f"{os.path.join(M, cfg_path)}:{variant}")
    if num_trials:
        config.al.num_trials = int(num_trials)
    return experiment.plan_from_config(config, pool_size=pool)


def command_not_run(command, run):
    """The command line of an experiment without a finished cycle, with its state."""
    started = run and os.path.exists(os.path.join(run, "config.json"))
    state = "(started; no cycle finished yet)" if started else "(not started)"
    return f"Command: {command} {state}.\n"
