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
import threading
import time
from collections.abc import Collection

from mtal_jax import jsonio, reporting, workdir_lock
from mtal_jax.al.experiment import archive
from mtal_jax.al.experiment import setup as setup_lib

log = logging.getLogger(__name__)

PARTS = "parts"
STATE = "parallel.json"
# The merged files copied into an archive beside its parts.
_MERGED = ("config.json", "results.json", STATE, "summary.md", "summary.json", "paired.json")
_TRAIN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "train.py")
_KILL_AFTER_S = 60.0
_HELD_WAIT_S = 90.0  # a part stopping after its launcher died has ended by then
# Runs a part's command (argv[2:]) after asking the kernel (Linux prctl PR_SET_PDEATHSIG)
# to send it SIGINT, the exact resume's stop, when the launcher (pid argv[1]) dies, even by
# SIGKILL; a launcher already gone means no start. It execs, so the part keeps this pid.
# Elsewhere (no prctl) it only execs. SIGINT gets its default action back first: a launcher
# started in the background by a shell (``cmd &``) has it ignored, which the part would
# inherit, so that neither this stop nor the deadline's could reach it. A wrapper rather
# than a preexec_fn, which is unsafe in a process with threads.
_WITH_PARENT = """
import ctypes, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
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


def merge(
    parts: list[Part],
    workdir: str,
    config_dict: dict,
    state: dict,
    *,
    last_cycle: int | None = None,
) -> tuple[list[dict], dict[str, str]]:
    """Writes the parts' records, merged, into ``workdir`` (``results.json``, the summary,
    ``paired.json``, the figures), ``config.json`` and ``parallel.json`` (``state``). A
    part whose records cannot be read is left out and named, not fatal: the others merge.
    ``last_cycle`` (``al.num_cycles`` - 1) tells the summary which curves are still running
    (``reporting.write_summary``).

    Returns:
      The merged records, sorted by (trial, strategy, cycle), and ``{part: error}`` of the
      parts left out.
    """
    records, errors = [], {}
    for p in parts:
        try:
            records += [r for r in records_of(p) if r["strategy"] == p.strategy]
        except (OSError, ValueError, KeyError, TypeError) as e:
            errors[p.name] = f"{type(e).__name__}: {e}"
            log.error("part %s left out of the merge: %s", p.name, errors[p.name])
    records.sort(key=lambda r: (r["trial"], r["strategy"], r["cycle"]))
    os.makedirs(workdir, exist_ok=True)
    jsonio.write_atomic(os.path.join(workdir, "config.json"), jsonio.normalize(config_dict))
    jsonio.write_atomic(os.path.join(workdir, "results.json"), records)
    jsonio.write_atomic(os.path.join(workdir, STATE), state)
    if records:
        reporting.write_summary(records, workdir, last_cycle=last_cycle)
    return records, errors


def restore(archive_dir: str, workdir: str, names: Collection[str] | None = None) -> list[str]:
    """Restores every part archived in ``archive_dir`` (``save``) whose folder ``workdir``
    does not have; with ``names``, only those parts (the ones this launch runs: an archive
    carried to another machine may hold only them). Each part is copied beside its place
    and renamed into it, so that a restore cut short leaves no half-copied part (its
    leftover is replaced by the next restore). A part folder that exists is kept when it
    has every record its archive has (it went as far or further here).

    Returns:
      The parts restored.

    Raises:
      FileNotFoundError: ``archive_dir`` is not an archive of this launcher.
      ValueError: a part folder here lacks records its archive has (started here before
        the restore, or from another archive): naming the part and what to do.
    """
    root = os.path.join(archive_dir, PARTS)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"{archive_dir} holds no {PARTS}/ folder: not an archive of parallel_cli"
        )
    done = []
    for name in sorted(os.listdir(root)):
        source, target = os.path.join(root, name), os.path.join(workdir, PARTS, name)
        if (names is not None and name not in names) or not os.path.exists(
            os.path.join(source, archive.MANIFEST)
        ):
            continue
        if os.path.exists(target):
            try:
                lacking = archive.missing_records(source, target)
            except ValueError as e:  # a results.json that does not parse
                raise ValueError(f"part {name} in {workdir}: {e}") from None
            if lacking:
                raise ValueError(
                    f"part {name}: {target} lacks {len(lacking)} records that {source} has "
                    f"(e.g. {lacking[0]}): it was started here before this restore; remove "
                    "it to restore the archive's, or launch without --restore_from to keep it"
                )
            log.info("kept part %s: as far as its archive or further", name)
            continue
        partial = f"{target}.restoring"
        shutil.rmtree(partial, ignore_errors=True)  # a restore cut short (the launcher's lock)
        archive.restore(source, partial)
        jsonio.fsync_tree(partial)
        os.rename(partial, target)
        done.append(name)
    return done


def save(parts: list[Part], workdir: str, out: str) -> dict[str, str]:
    """Archives every started part into ``out/parts/<part>`` and copies the merged files;
    returns ``{part: error}`` of the parts that could not be archived (the others are; an
    archive refuses, e.g., a run directory that lacks records the archive holds).

    The model that reads the kept weights is built once per kind (with or without LL4AL's
    loss-prediction module), not once per part."""
    loaders, errors = {}, {}
    for p in parts:
        if os.path.exists(os.path.join(p.workdir, "config.json")):
            kind = p.base == "ll4al"
            load = loaders.get(kind) or loaders.setdefault(kind, _lazy(p.workdir))
            try:
                archive.save(p.workdir, os.path.join(out, PARTS, p.name), load_variables=load)
            except Exception as e:  # noqa: BLE001 (any failure of one part: the others go on)
                errors[p.name] = f"{type(e).__name__}: {e}"
                log.error("part %s not archived: %s", p.name, errors[p.name])
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(workdir):
        if name in _MERGED or name.endswith(".png"):
            shutil.copy2(os.path.join(workdir, name), os.path.join(out, name))
    return errors


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


class DeferredSignals:
    """Within it, SIGINT and SIGTERM set ``self.received`` instead of raising, so that what
    runs inside (starting a part and recording it; merging and archiving) is never cut
    halfway; the previous handlers come back on exit. Outside the main thread (where
    handlers cannot be set) it only counts what it is told by ``stop``."""

    def __init__(self):
        self.received = 0
        self._previous = {}

    def stop(self, *_):
        self.received += 1

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self.stop)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def run_parts(
    parts: list[Part], commands: dict[str, list[str]], *, jobs: int, deadline_s: float,
    env: dict[str, str], poll_s: float = 1.0, warmup: bool = False,
    devices: tuple[str, ...] = (), started_at: float | None = None,
) -> tuple[dict[str, dict], bool]:  # fmt: skip
    """Runs ``commands`` (by part name) ``jobs`` at a time, in ``parts`` order, until all
    have ended, ``deadline_s`` (0: none; counted from ``started_at``, default now) has
    passed or this process is interrupted (SIGINT: Ctrl-C, or SIGTERM). Then no part
    starts, the running ones get SIGINT (the exact resume's stop) and SIGKILL 60 s later,
    and this returns once they have ended; an error here stops them the same way before it
    is raised. The parts run in their own sessions: a Ctrl-C at the terminal reaches them
    once, through this process. A part whose run directory another process still holds
    (one stopping after a launcher died) waits for it, up to 90 s, and then starts (and
    fails naming the holder: ``train.py``'s own lock error). ``warmup``: the first part
    runs alone until it has recorded an AL cycle more than it had (``al_cycles``; a
    restored part may have some) or ended, so that the others find its compiled programs
    in the persistent compilation cache instead of all compiling at once; if it fails
    before that (a compiler crash, a broken install: what the others would meet too), no
    other part starts (GPU lease 3 in docs/benchmarks.md: nine parts crashed alike). If
    this process dies without the stop (SIGKILL), the kernel sends each running part
    SIGINT (Linux, ``stopping_with_parent``). ``devices``: accelerator ids; each part
    starts on the one with the fewest running parts (``CUDA_VISIBLE_DEVICES``).

    Returns:
      ``({part: {"rc": exit status or None (never started), "seconds": wall time,
      "stopped": whether it ended after the stop}}, interrupted)``.
    """
    t0 = time.time() if started_at is None else started_at
    waiting = list(parts)
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    state = {p.name: {"rc": None, "seconds": 0.0} for p in parts}
    stopped_at = None
    had = al_cycles(parts[0]) if warmup and parts else 0
    device_of: dict[str, str] = {}  # running part -> its device (``devices``)
    held_since: dict[str, float] = {}  # part -> when its run directory was first found held

    def stop(reason: str):
        nonlocal stopped_at, waiting
        stopped_at = time.time()
        log.info("%s: stopping %d running parts; %d not started", reason, len(running),
                 len(waiting))  # fmt: skip
        waiting = []
        for proc, _, _ in running.values():
            proc.send_signal(signal.SIGINT)

    def reap(name: str, proc: subprocess.Popen, start: float, logf) -> None:
        logf.close()
        del running[name]
        device_of.pop(name, None)
        state[name] = {
            "rc": proc.returncode, "seconds": round(time.time() - start, 1),
            "stopped": stopped_at is not None,  # by the deadline or an interrupt
        }  # fmt: skip
        level = logging.INFO if proc.returncode == 0 else logging.WARNING
        log.log(level, "%s ended: rc %d after %.0f s", name, proc.returncode,
                time.time() - start)  # fmt: skip

    with DeferredSignals() as signals:
        try:
            while waiting or running:
                if stopped_at is None and signals.received:
                    stop("interrupted")
                elif stopped_at is None and deadline_s > 0 and time.time() - t0 >= deadline_s:
                    stop("deadline")
                if stopped_at is not None and time.time() - stopped_at > _KILL_AFTER_S:
                    for proc, _, _ in running.values():
                        proc.kill()
                # warm-up: the first part alone until it has recorded an AL cycle or ended;
                # if it fails before that, the others would fail alike: none starts
                first_rc = state[parts[0].name]["rc"] if warmup and parts else 0
                warming = first_rc != 0 and al_cycles(parts[0]) <= had  # running or failed
                if stopped_at is None and warming and first_rc is not None:
                    stop(f"{parts[0].name} failed before its first AL cycle (the warm-up)")
                holding = warming and first_rc is None
                for p in list(waiting):
                    if len(running) >= (1 if holding else jobs):
                        break
                    holder = workdir_lock.holder(p.workdir)
                    if holder and p.name not in held_since:
                        held_since[p.name] = time.time()
                        log.info("%s waits: its run directory is held (%s)", p.name, holder)
                    if holder and time.time() - held_since[p.name] < _HELD_WAIT_S:
                        break  # the order stays: the next pass looks again
                    waiting.remove(p)
                    _start(p, commands[p.name], env, devices, running, device_of)
                for name, (proc, start, logf) in list(running.items()):
                    if proc.poll() is not None:
                        reap(name, proc, start, logf)
                time.sleep(poll_s)
        finally:
            if running:  # an error above: the parts stop before it is raised
                stop("error")
                deadline = time.time() + _KILL_AFTER_S
                for name, (proc, start, logf) in list(running.items()):
                    try:
                        proc.wait(max(0.0, deadline - time.time()))
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    reap(name, proc, start, logf)
    return state, bool(signals.received)


def _start(part: Part, cmd: list[str], env: dict, devices: tuple, running: dict,
           device_of: dict) -> None:  # fmt: skip
    """Starts ``part`` (its log ``<workdir>.log``; on the least loaded of ``devices``) and
    records it in ``running`` (and ``device_of``) at once."""
    os.makedirs(os.path.dirname(part.workdir), exist_ok=True)
    logf = open(f"{part.workdir}.log", "a")  # noqa: SIM115 (closed when it ends)
    part_env, on = env, ""
    if devices:
        busy = list(device_of.values())
        on = min(devices, key=busy.count)  # the least loaded, the first on ties
        part_env = {**env, "CUDA_VISIBLE_DEVICES": on}
    try:
        proc = subprocess.Popen(
            stopping_with_parent(cmd), stdout=logf, stderr=subprocess.STDOUT, env=part_env,
            start_new_session=True,
        )  # fmt: skip
    except BaseException:
        logf.close()
        raise
    running[part.name] = (proc, time.time(), logf)
    if on:
        device_of[part.name] = on
    log.info("started %s (pid %d%s; log %s.log)", part.name, proc.pid,
             f", device {on}" if on else "", part.workdir)  # fmt: skip


def failed_parts(state: dict[str, dict]) -> list[str]:
    """The parts of ``run_parts``' state that ended with an error on their own (not those
    the deadline or an interrupt stopped, nor those never started)."""
    return [n for n, s in state.items() if s["rc"] not in (None, 0) and not s.get("stopped")]
