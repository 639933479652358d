r"""Run one experiment as many processes side by side, one per (strategy, trial), and merge
their records (docs/design.md, "One experiment over many processes").

  python -m mtal_jax.al.parallel_cli --config configs/default.py:repro --workdir runs/par \
      --jobs 8 [--share_from runs/base] [--deadline_s 480] [--restore_from A] [--archive_to B] \
      [-- --config.train.steps=100 ...]

A small network leaves a large accelerator mostly idle: one NVIDIA H200 trains the default
network's step in 5 ms, and a cycle of the protocol spends more time on the host than on
the GPU (docs/benchmarks.md, "GPU check"). The (trial, strategy) runs of the protocol are
independent once a trial's cycle-0 model exists, so this launcher runs them as separate
``train.py`` processes, ``--jobs`` at a time, in the experiment's own order
(``al.order``):

- part ``<strategy>.trial_<k>`` is ``train.py --config ... --workdir
  <workdir>/parts/<strategy>.trial_<k> --config.al.strategies=<strategy>
  --config.al.run_trials=<k>`` (its log beside it, ``<part>.log``); ``--share_from`` (an
  experiment with the same config that has trained the reference and the cycle-0 models,
  e.g. a restored archive of the main comparison) is passed on as ``al.share_from``, so
  each part copies the reference and its trial's cycle-0 model instead of training them;
  without it every part trains them itself;
- ``--warmup`` (the default; ``--nowarmup`` starts all at once): the first part runs alone
  until it has recorded one AL cycle more than it had, so that the others read its
  compiled programs from XLA's persistent cache (``~/.cache/mtal_jax/xla``) instead of all
  compiling at once (docs/benchmarks.md, "Many processes on one GPU": 20 % less wall time
  on the CPU); if that part fails before its first AL cycle, the others do not start
  (``--nowarmup`` starts them regardless);
- a part whose records are complete is not started again; any other part resumes exactly
  (the same command again continues all of them);
- ``--deadline_s`` (counted from the launcher's start): when it has passed no part starts,
  and the running ones are stopped with SIGINT (the exact resume's stop; SIGKILL 60 s
  later); the launcher then exits 0 (rerun to continue); a launcher killed outright takes
  its parts with it the same way (Linux's parent-death signal);
- at the end the parts' records are merged into ``<workdir>/results.json`` with the
  summary, ``paired.json`` and the figures (``reporting.write_summary``) and
  ``<workdir>/parallel.json`` (each part's state and wall time); ``config.json`` there is
  the launched config, for readers (``train.py`` does not run on this folder: rerun this
  command);
- a part that fails on its own (not stopped) does not stop the others; at the end the
  launcher exits 1 naming the failed parts and their logs, and the parts it could not
  merge (unreadable records) or archive, which do not stop the others' merge and archive
  either (Ctrl-C or SIGTERM: it stops the parts as at the deadline, merges, archives with
  further signals deferred, names any failed part and exits 130);
- ``--merge_only``: no part starts; the records the parts have are merged (parts gathered
  from several machines or archives, e.g. a folder of ``--archive_to`` archives);
- ``--archive_to``: then every part is archived (``al.experiment.archive``) into
  ``<archive_to>/parts/<part>`` beside the merged files; ``--restore_from`` restores such
  an archive's parts before anything starts (a part folder already here is kept when it
  has every record of its archive, and refused, by name, when it lacks some).

One launcher runs on a ``--workdir`` at a time (its lock; each part's run directory has its
own). Each process sees ``XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 / n`` (capped at 0.75; n: the
parts that can share one device) unless the environment sets it, so that the processes
share a GPU's memory. ``--devices 0,1,2,3`` spreads the parts over several GPUs: each starts
on the one with the fewest running parts (``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING

from absl import app, flags

from mtal_jax import runtime

if __name__ == "__main__":
    runtime.configure_host_devices()  # archiving loads weights saved over the parts' devices

from mtal_jax import config_file, workdir_lock

if TYPE_CHECKING:
    from mtal_jax.al import parts as parts_lib

# parts, setup and share (JAX, the data pipeline) are imported where used, once absl has
# read the command line, so that --help and a usage error answer at once.

log = logging.getLogger("mtal_jax.al.parallel_cli")


def main(argv: list[str]) -> None:
    started_at = time.time()  # the deadline counts from here, restore included
    overrides = argv[1:]
    if any(not a.startswith("--config.") for a in overrides):
        raise app.UsageError(f"after --, only --config.* flags pass to train.py: {overrides}")
    runtime.setup()
    from mtal_jax.al import parts as parts_lib
    from mtal_jax.al.experiment import setup as setup_lib
    from mtal_jax.al.experiment import share

    with runtime.input_checks():
        config = config_file.load(_CONFIG.value, [a[len("--config.") :] for a in overrides])
        plan = setup_lib.plan_from_config(config)
        if plan.run_trials:
            raise ValueError("al.run_trials is set per part by parallel_cli: leave it empty")
        if _JOBS.value < 1:
            raise ValueError(f"--jobs must be >= 1, got {_JOBS.value}")
        if _SHARE_FROM.value:  # checked once here rather than failing in every part
            share.check_source(_SHARE_FROM.value, config.to_dict())
    workdir = _WORKDIR.value
    # one launcher per folder (each part's own run directory is locked by its train.py)
    with workdir_lock.hold(workdir):
        parts = parts_lib.plan_parts(plan, workdir)
        if _RESTORE.value:
            with runtime.input_checks():
                done = parts_lib.restore(_RESTORE.value, workdir, {p.name for p in parts})
            log.info("restored parts %s from %s", done, _RESTORE.value)
        ran, interrupted, problems = _launch(config, plan, parts, workdir, overrides, started_at)
    failed = parts_lib.failed_parts(ran)
    if failed:
        logs = ", ".join(
            os.path.join(workdir, parts_lib.PARTS, f"{name}.log") for name in failed[:3]
        )
        log.error("%d parts failed (%s); see %s", len(failed), ", ".join(failed), logs)
    for name, error in problems.items():
        log.error("part %s: %s", name, error)
    if interrupted:  # the parts have stopped and everything is merged: exit 130
        raise KeyboardInterrupt
    if failed or problems:
        sys.exit(
            f"error: {len(failed)} parts failed, {len(problems)} not merged or archived "
            "(the log above names them)"
        )


def _launch(config, plan, parts: list[parts_lib.Part], workdir: str, overrides: list[str],
            started_at: float):  # fmt: skip
    """Runs the parts not complete yet (unless ``--merge_only``), then merges every part's
    records and archives (``--archive_to``) whatever happened, with SIGINT and SIGTERM
    deferred meanwhile (a second Ctrl-C, or ``timeout``'s signal, cannot cut the archive);
    returns ``run_parts``' ``(state, interrupted)`` and ``{part: error}`` of the parts not
    merged or not archived."""
    from mtal_jax.al import parts as parts_lib

    todo = [p for p in parts if not _complete(p, plan.num_cycles)]
    log.info("%d parts, %d complete, %d to run, %s", len(parts), len(parts) - len(todo),
             len(todo), "none started (--merge_only)" if _MERGE_ONLY.value
             else f"{_JOBS.value} at a time")  # fmt: skip
    devices = tuple(d.strip() for d in _DEVICES.value if d.strip())
    at_once = max(1, min(_JOBS.value, len(todo)))
    per_device = -(-at_once // max(len(devices), 1))  # parts sharing one device at most
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{min(0.75, 0.9 / per_device):.3f}")
    commands = {
        p.name: parts_lib.command(
            p, _CONFIG.value, overrides, share_from=_SHARE_FROM.value, python=_PYTHON.value
        )
        for p in todo
    }  # fmt: skip
    t0 = time.time()
    ran: dict[str, dict] = {}
    interrupted = False
    try:
        if not _MERGE_ONLY.value:
            ran, interrupted = parts_lib.run_parts(
                todo, commands, jobs=_JOBS.value, deadline_s=_DEADLINE.value, env=env,
                warmup=_WARMUP.value, devices=devices, started_at=started_at,
            )  # fmt: skip
    finally:
        with parts_lib.DeferredSignals() as signals:
            state = {
                "config": _CONFIG.value, "overrides": overrides,
                "share_from": _SHARE_FROM.value,
                "jobs": 0 if _MERGE_ONLY.value else _JOBS.value,
                "seconds": round(time.time() - t0, 1),
                "parts": {
                    p.name: {"complete": _complete(p, plan.num_cycles),
                             "records": _count(p), **ran.get(p.name, {})}
                    for p in parts
                },
            }  # fmt: skip
            records, problems = parts_lib.merge(
                parts, workdir, config.to_dict(), state, last_cycle=plan.num_cycles - 1
            )
            done = sum(s["complete"] for s in state["parts"].values())
            log.info("merged %d records of %d parts into %s (%d of %d parts complete)",
                     len(records), len(parts), workdir, done, len(parts))  # fmt: skip
            if _ARCHIVE.value:
                for name, error in parts_lib.save(parts, workdir, _ARCHIVE.value).items():
                    problems[name] = f"not archived: {error}"
                log.info("archived into %s", _ARCHIVE.value)
        interrupted = interrupted or bool(signals.received)
    return ran, interrupted, problems


def _complete(part: parts_lib.Part, num_cycles: int) -> bool:
    """``parts_lib.is_complete``, False for a part whose records cannot be read (the
    merge names it)."""
    from mtal_jax.al import parts as parts_lib

    try:
        return parts_lib.is_complete(part, num_cycles)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _count(part: parts_lib.Part) -> int:
    """The records of ``part`` (0 when they cannot be read)."""
    from mtal_jax.al import parts as parts_lib

    try:
        return len(parts_lib.records_of(part))
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":  # flags here: importing the module defines none
    sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    _CONFIG = flags.DEFINE_string("config", "configs/default.py", "Config file[:preset].")
    _WORKDIR = flags.DEFINE_string(
        "workdir", None, "Folder of the parts and the merged records.", required=True
    )
    _JOBS = flags.DEFINE_integer("jobs", 4, "Parts that run at once.")
    _SHARE_FROM = flags.DEFINE_string("share_from", "", "al.share_from of every part.")
    _DEADLINE = flags.DEFINE_float("deadline_s", 0.0, "Stop the parts after this long (0: never).")
    _RESTORE = flags.DEFINE_string("restore_from", "", "An archive of this launcher to restore.")
    _ARCHIVE = flags.DEFINE_string("archive_to", "", "Archive the parts and merged files here.")
    _PYTHON = flags.DEFINE_string("python", sys.executable, "The Python that runs train.py.")
    _WARMUP = flags.DEFINE_bool(
        "warmup",
        True,
        "Run the first part alone until its first AL cycle (fills the compilation cache "
        "the others then read; if it fails first, the others do not start; --nowarmup: "
        "all at once).",
    )
    _DEVICES = flags.DEFINE_list(
        "devices",
        [],
        "Accelerator ids (e.g. 0,1,2,3): each part runs on the least loaded one "
        "(CUDA_VISIBLE_DEVICES); empty: every part sees every device.",
    )
    _MERGE_ONLY = flags.DEFINE_bool(
        "merge_only", False, "Start no part: merge (and archive) the records the parts have."
    )
    runtime.run_main(main)
