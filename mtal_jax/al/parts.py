"""One experiment as parts: one ``train.py`` process per (strategy, trial), each in its own
run directory, run side by side and merged (docs/design.md, "One experiment over many
processes"; the command is ``mtal_jax.al.parallel_cli``).

A part ``<strategy>.trial_<k>`` is the experiment's config narrowed to one strategy
(``al.strategies``) and one trial (``al.run_trials``) in ``<workdir>/parts/<part>``; with
``al.share_from`` it copies the reference and its trial's cycle-0 model. Its records equal
those the same run has in one process (``tests/test_repro.py``). This module plans the
parts (``plan_parts``, ``command``), runs them a few at a time with a deadline, interrupts,
a warm-up and devices (``run_parts``), merges their records (``merge``) and archives or
restores them (``save``, ``restore``: a folder of ``al.experiment.archive`` archives).
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

from mtal_jax import jsonio, reporting
from mtal_jax.al.experiment import archive
from mtal_jax.al.experiment import setup as setup_lib

log = logging.getLogger(__name__)

PARTS = "parts"
STATE = "parallel.json"
# The merged files copied into an archive beside its parts.
_MERGED = ("config.json", "results.json", STATE, "summary.md", "summary.json", "paired.json")
_TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "train.py")
_KILL_AFTER_S = 60.0
# Runs a part's command (argv[2:]) after asking the kernel (Linux prctl PR_SET_PDEATHSIG)
# to send it SIGINT, the exact resume's stop, when the launcher (pid argv[1]) dies, even by
# SIGKILL; a launcher already gone means no start. It execs, so the part keeps this pid.
# Elsewhere (no prctl) it only execs. A wrapper rather than a preexec_fn, which is unsafe in
# a process with threads.
_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(130)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def stopping_with_parent(cmd: list[str], parent: int | None = None) -> list[str]:
    """``cmd`` wrapped so that the part gets SIGINT when the launcher ``parent`` (default
    this process) dies without stopping it, and runs on as no orphan holding its run
    directory."""
    parent = os.getpid() if parent is None else parent
    return [sys.executable, "-c", _WITH_PARENT, str(parent), *cmd]


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
    compilation cache instead of all compiling at once. If this process dies without the
    stop (SIGKILL), the kernel sends each running part SIGINT (Linux,
    ``stopping_with_parent``). ``devices``: accelerator ids; each
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
                    stopping_with_parent(commands[p.name]), stdout=logf,
                    stderr=subprocess.STDOUT, env=part_env, start_new_session=True,
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
