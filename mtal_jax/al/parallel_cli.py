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
  until it has recorded its first AL cycle, so that the others read its compiled programs
  from XLA's persistent cache (``~/.cache/mtal_jax/xla``) instead of all compiling at once
  (docs/benchmarks.md, "Many processes on one GPU": 20 % less wall time on the CPU);
- a part whose records are complete is not started again; any other part resumes exactly
  (the same command again continues all of them);
- ``--deadline_s``: when it has passed no part starts, and the running ones are stopped
  with SIGINT (the exact resume's stop; SIGKILL 60 s later);
- at the end the parts' records are merged into ``<workdir>/results.json`` with the
  summary, ``paired.json`` and the figures (``reporting.write_summary``) and
  ``<workdir>/parallel.json`` (each part's state and wall time); ``config.json`` there is
  the launched config, for readers (``train.py`` does not run on this folder: rerun this
  command);
- a part that fails on its own (not stopped) does not stop the others; at the end the
  launcher exits 1 naming the failed parts and their logs (Ctrl-C or SIGTERM: it stops the
  parts as at the deadline, merges, archives and exits 130);
- ``--merge_only``: no part starts; the records the parts have are merged (parts gathered
  from several machines or archives, e.g. a folder of ``--archive_to`` archives);
- ``--archive_to``: then every part is archived (``al.experiment.archive``) into
  ``<archive_to>/parts/<part>`` beside the merged files; ``--restore_from`` restores such
  an archive's parts before anything starts (parts already here are kept).

Each process sees ``XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 / n`` (capped at 0.75; n: the
parts that can share one device) unless the environment sets it, so that the processes
share a GPU's memory. ``--devices 0,1,2,3`` spreads the parts over several GPUs: each starts
on the one with the fewest running parts (``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Collection

from absl import app, flags

from mtal_jax import runtime

if __name__ == "__main__":
    runtime.configure_host_devices()  # archiving loads weights saved over the parts' devices

from mtal_jax import config_file, jsonio, reporting, workdir_lock
from mtal_jax.al.experiment import archive, share
from mtal_jax.al.experiment import setup as setup_lib

log = logging.getLogger("mtal_jax.al.parallel_cli")

PARTS = "parts"
STATE = "parallel.json"
# The merged files copied into an archive beside its parts.
_MERGED = ("config.json", "results.json", STATE, "summary.md", "summary.json", "paired.json")
_TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "train.py")
_KILL_AFTER_S = 60.0


@dataclasses.dataclass(frozen=True)
class Part:
    """One process: ``strategy`` (registry strategy ``base``) in ``trial``, in run directory
    ``workdir``."""

    strategy: str
    trial: int
    workdir: str
    base: str = ""

    @property
    def name(self) -> str:
        return f"{self.strategy}.trial_{self.trial}"


def plan_parts(plan: setup_lib.Plan, workdir: str) -> list[Part]:
    """The parts of ``plan`` in its run order (``Plan.run_order``, i.e. ``al.order``)."""
    return [
        Part(spec.name, t, os.path.join(workdir, PARTS, f"{spec.name}.trial_{t}"), spec.base)
        for t, spec in plan.run_order()
    ]


def command(
    part: Part, config: str, overrides: list[str], *, share_from: str = "", python: str = ""
) -> list[str]:
    """The ``train.py`` command of ``part`` (``overrides``: more ``--config.*`` flags, which
    come first: the part's own strategy, trial and share source win over them)."""
    cmd = [python or sys.executable, _TRAIN_PY, "--config", config, "--workdir", part.workdir]
    cmd += list(overrides) + ["--noprogress"]
    cmd += [f"--config.al.strategies={part.strategy}", f"--config.al.run_trials={part.trial}"]
    return cmd + ([f"--config.al.share_from={share_from}"] if share_from else [])


def records_of(part: Part) -> list[dict]:
    """The records ``part`` has written (none before it starts)."""
    path = os.path.join(part.workdir, "results.json")
    return jsonio.read(path) if os.path.exists(path) else []


def is_complete(part: Part, num_cycles: int) -> bool:
    """Whether ``part`` has a record of every cycle 0 .. ``num_cycles`` - 1."""
    cycles = {r["cycle"] for r in records_of(part) if r["strategy"] == part.strategy}
    return cycles >= set(range(num_cycles))


def merge(parts: list[Part], workdir: str, config_dict: dict, state: dict) -> list[dict]:
    """Writes the parts' records, merged, into ``workdir`` (``results.json``, the summary,
    ``paired.json``, the figures), ``config.json`` and ``parallel.json`` (``state``).

    Returns:
      The merged records, sorted by (trial, strategy, cycle).
    """
    records = sorted(
        (r for p in parts for r in records_of(p) if r["strategy"] == p.strategy),
        key=lambda r: (r["trial"], r["strategy"], r["cycle"]),
    )
    os.makedirs(workdir, exist_ok=True)
    jsonio.write_atomic(os.path.join(workdir, "config.json"), jsonio.normalize(config_dict))
    jsonio.write_atomic(os.path.join(workdir, "results.json"), records)
    jsonio.write_atomic(os.path.join(workdir, STATE), state)
    if records:
        reporting.write_summary(records, workdir)
    return records


def restore(archive_dir: str, workdir: str, names: Collection[str] | None = None) -> list[str]:
    """Restores every part archived in ``archive_dir`` (``save``) that ``workdir`` lacks;
    with ``names``, only those parts (the ones this launch runs: an archive carried to
    another machine may hold only them).

    Returns:
      The parts restored.
    """
    root = os.path.join(archive_dir, PARTS)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"{archive_dir} holds no {PARTS}/ folder: not an archive of parallel_cli"
        )
    done = []
    for name in sorted(os.listdir(root)):
        target = os.path.join(workdir, PARTS, name)
        if names is not None and name not in names:
            continue
        if os.path.exists(os.path.join(root, name, archive.MANIFEST)) and not os.path.exists(
            target
        ):
            archive.restore(os.path.join(root, name), target)
            done.append(name)
    return done


def save(parts: list[Part], workdir: str, out: str) -> None:
    """Archives every started part into ``out/parts/<part>`` and copies the merged files.

    The model that reads the kept weights is built once per kind (with or without LL4AL's
    loss-prediction module), not once per part."""
    loaders = {}
    for p in parts:
        if os.path.exists(os.path.join(p.workdir, "config.json")):
            kind = p.base == "ll4al"
            load = loaders.get(kind) or loaders.setdefault(kind, _lazy(p.workdir))
            archive.save(p.workdir, os.path.join(out, PARTS, p.name), load_variables=load)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(workdir):
        if name in _MERGED or name.endswith(".png"):
            shutil.copy2(os.path.join(workdir, name), os.path.join(out, name))


def _lazy(workdir: str):
    """``archive.variables_loader(workdir)``, built at its first call (a part whose runs all
    finished keeps no weights and needs no model)."""
    built = []

    def load(run_dir):
        if not built:
            built.append(archive.variables_loader(workdir))
        return built[0](run_dir)

    return load


def al_cycles(part: Part) -> int:
    """The AL cycles (cycle >= 1) ``part`` has recorded. One more than at its start means
    that its programs (training, evaluation, its strategy's scoring) are compiled and in
    XLA's persistent cache."""
    return sum(r["cycle"] >= 1 for r in records_of(part))


def run_parts(
    parts: list[Part], commands: dict[str, list[str]], *, jobs: int, deadline_s: float,
    env: dict[str, str], poll_s: float = 1.0, warmup: bool = False,
    devices: tuple[str, ...] = (),
) -> tuple[dict[str, dict], bool]:  # fmt: skip
    """Runs ``commands`` (by part name) ``jobs`` at a time, in ``parts`` order, until all
    have ended, ``deadline_s`` (0: none) has passed or this process is interrupted
    (KeyboardInterrupt: Ctrl-C, or SIGTERM as ``main`` installs it). Then no part starts,
    the running ones get SIGINT (the exact resume's stop) and SIGKILL 60 s later, and this
    returns once they have ended. The parts run in their own sessions: a Ctrl-C at the
    terminal reaches them once, through this process. ``warmup``: the first part runs alone
    until it has recorded an AL cycle more than it had (``al_cycles``; a restored part may
    have some) or ended, so that the others find its compiled programs in the persistent
    compilation cache instead of all compiling at once. ``devices``: accelerator ids; each
    part starts on the one with the fewest running parts (``CUDA_VISIBLE_DEVICES``).

    Returns:
      ``({part: {"rc": exit status or None (never started), "seconds": wall time,
      "stopped": whether it ended after the stop}}, interrupted)``.
    """
    t0 = time.time()
    waiting = list(parts)
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    state = {p.name: {"rc": None, "seconds": 0.0} for p in parts}
    stopped_at = None
    interrupted = False
    had = al_cycles(parts[0]) if warmup and parts else 0
    device_of: dict[str, str] = {}  # running part -> its device (``devices``)
    while waiting or running:
        try:
            if stopped_at is None and (
                interrupted or (deadline_s > 0 and time.time() - t0 >= deadline_s)
            ):
                stopped_at = time.time()
                log.info(
                    "%s: stopping %d running parts; %d not started",
                    "interrupted" if interrupted else "deadline", len(running), len(waiting),
                )  # fmt: skip
                waiting = []
                for proc, _, _ in running.values():
                    proc.send_signal(signal.SIGINT)
            if stopped_at is not None and time.time() - stopped_at > _KILL_AFTER_S:
                for proc, _, _ in running.values():
                    proc.kill()
            # warm-up: the first part alone until it has recorded an AL cycle or ended
            holding = (
                warmup and bool(parts) and state[parts[0].name]["rc"] is None
                and al_cycles(parts[0]) <= had
            )  # fmt: skip
            while waiting and len(running) < (1 if holding else jobs):
                p = waiting.pop(0)
                os.makedirs(os.path.dirname(p.workdir), exist_ok=True)
                logf = open(f"{p.workdir}.log", "a")  # noqa: SIM115 (closed when it ends)
                part_env, on = env, ""
                if devices:
                    busy = list(device_of.values())
                    on = min(devices, key=busy.count)  # the least loaded, the first on ties
                    part_env = {**env, "CUDA_VISIBLE_DEVICES": on}
                    device_of[p.name] = on
                proc = subprocess.Popen(
                    commands[p.name], stdout=logf, stderr=subprocess.STDOUT, env=part_env,
                    start_new_session=True,
                )  # fmt: skip
                running[p.name] = (proc, time.time(), logf)
                log.info("started %s (pid %d%s; log %s.log)", p.name, proc.pid,
                         f", device {on}" if on else "", p.workdir)  # fmt: skip
            for name, (proc, start, logf) in list(running.items()):
                if proc.poll() is None:
                    continue
                logf.close()
                del running[name]
                device_of.pop(name, None)
                state[name] = {
                    "rc": proc.returncode, "seconds": round(time.time() - start, 1),
                    "stopped": stopped_at is not None,  # by the deadline or an interrupt
                }  # fmt: skip
                level = logging.INFO if proc.returncode == 0 else logging.WARNING
                log.log(
                    level, "%s ended: rc %d after %.0f s", name, proc.returncode,
                    time.time() - start,
                )  # fmt: skip
            time.sleep(poll_s)
        except KeyboardInterrupt:
            interrupted = True  # the next pass stops the parts; a second one waits on
    return state, interrupted


def failed_parts(state: dict[str, dict]) -> list[str]:
    """The parts of ``run_parts``' state that ended with an error on their own (not those
    the deadline or an interrupt stopped, nor those never started)."""
    return [n for n, s in state.items() if s["rc"] not in (None, 0) and not s.get("stopped")]


def _interrupt(signum, frame):
    """SIGTERM handler: stop as on Ctrl-C (``run_parts``)."""
    raise KeyboardInterrupt


def main(argv: list[str]) -> None:
    overrides = argv[1:]
    if any(not a.startswith("--config.") for a in overrides):
        raise app.UsageError(f"after --, only --config.* flags pass to train.py: {overrides}")
    runtime.setup()
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
        parts = plan_parts(plan, workdir)
        if _RESTORE.value:
            with runtime.input_checks():
                done = restore(_RESTORE.value, workdir, {p.name for p in parts})
            log.info("restored parts %s from %s", done, _RESTORE.value)
        ran, interrupted = _launch(config, plan, parts, workdir, overrides)
    if interrupted:  # the parts have stopped and everything is merged: exit 130
        raise KeyboardInterrupt
    if failed := failed_parts(ran):
        logs = ", ".join(os.path.join(workdir, PARTS, f"{name}.log") for name in failed[:3])
        sys.exit(f"error: {len(failed)} parts failed ({', '.join(failed)}); see {logs}")


def _launch(config, plan, parts: list[Part], workdir: str, overrides: list[str]):
    """Runs the parts not complete yet (unless ``--merge_only``), then merges every part's
    records and archives (``--archive_to``) whatever happened; returns ``run_parts``'
    ``(state, interrupted)``."""
    todo = [p for p in parts if not is_complete(p, plan.num_cycles)]
    log.info("%d parts, %d complete, %d to run, %s", len(parts), len(parts) - len(todo),
             len(todo), "none started (--merge_only)" if _MERGE_ONLY.value
             else f"{_JOBS.value} at a time")  # fmt: skip
    devices = tuple(d.strip() for d in _DEVICES.value if d.strip())
    per_device = -(-_JOBS.value // max(len(devices), 1))  # parts sharing one device at most
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{min(0.75, 0.9 / per_device):.3f}")
    commands = {
        p.name: command(p, _CONFIG.value, overrides, share_from=_SHARE_FROM.value, python=_PYTHON.value)
        for p in todo
    }  # fmt: skip
    t0 = time.time()
    ran: dict[str, dict] = {}
    interrupted = False
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not _MERGE_ONLY.value:
            ran, interrupted = run_parts(
                todo, commands, jobs=_JOBS.value, deadline_s=_DEADLINE.value, env=env,
                warmup=_WARMUP.value, devices=devices,
            )  # fmt: skip
    finally:
        state = {
            "config": _CONFIG.value, "overrides": overrides, "share_from": _SHARE_FROM.value,
            "jobs": 0 if _MERGE_ONLY.value else _JOBS.value,
            "seconds": round(time.time() - t0, 1),
            "parts": {
                p.name: {"complete": is_complete(p, plan.num_cycles), "records": len(records_of(p)),
                         **ran.get(p.name, {})}
                for p in parts
            },
        }  # fmt: skip
        records = merge(parts, workdir, config.to_dict(), state)
        done = sum(s["complete"] for s in state["parts"].values())
        log.info("merged %d records of %d parts into %s (%d of %d parts complete)",
                 len(records), len(parts), workdir, done, len(parts))  # fmt: skip
        if _ARCHIVE.value:
            save(parts, workdir, _ARCHIVE.value)
            log.info("archived into %s", _ARCHIVE.value)
    return ran, interrupted


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
        "the others then read; --nowarmup: all at once).",
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
