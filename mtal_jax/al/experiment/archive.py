"""A portable copy of an experiment's run directory: what a resumed run reads back, without
the checkpoints no run will start from again.

A long experiment (the reproduction of docs/results.md: tens of hours on a CPU) outlives the
machine or session it started on. ``save`` copies its run directory into a small folder
that can travel (be committed, copied to another machine):

- every JSON record (``config.json`` and its ``extensions.json``, ``results.json``, each
  run's ``metrics.json``, ``wall.json``, ``train/final_eval.json``, selections, pools,
  diagnostics), the selections' ``scores.npz``, the training logs (``logs/metrics.jsonl``;
  not the TensorBoard event files, which repeat them) and the reports;
- no checkpoint; instead, the best weights (``weights.npz``, ``train.weights_file``) of the
  runs an unfinished run still starts from: the cycle-0 model of every trial with an
  unfinished strategy, and the last finished cycle of every unfinished strategy; and of the
  finished runs that ``keep`` names (the models the paper's analyses read, e.g.
  ``reference``, ``trial_0/cycle_0``, ``trial_0/*/cycle_5``).

``restore`` copies an archive into a new run directory. The same ``train.py`` command on it
then continues: finished runs are read back from their ``metrics.json``
(``train.run_files.read_archived``), unfinished strategies continue from the kept weights, and
a training run that was under way when the archive was saved restarts from its beginning
(as after a crash before its first checkpoint). On the same machine the records end as
those of an uninterrupted run; on another, the remaining training is not bitwise what the
first machine would have trained (training is deterministic on one machine only, README).

A run directory that is still being written may be archived: the set of finished runs is
read once, after ``results.json`` is copied, and only the files present then are copied.
The archive is written beside ``out`` and renamed over it, so a failure leaves the previous
archive (the folders a killed save leaves are removed by a later one:
``remove_stale_leftovers``; one killed between its two renames leaves ``out`` missing beside
a complete archive, which ``recover`` puts back before any save or restore); an archive
holding records that the run directory lacks (it was continued on another machine) is
never replaced by it (``missing_records``). Saves, restores and recoveries of archives in
one folder take turns (an OS lock on that folder, ``_folder_lock``): a second process
saving the same archive, e.g. a manual save while ``experiments/continue.sh`` refreshes it,
waits for the first instead of racing its renames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import filecmp
import fnmatch
import logging
import os
import shutil
import time
from collections.abc import Sequence

import ml_collections

from mtal_jax import jsonio
from mtal_jax.al.experiment import setup as setup_lib
from mtal_jax.train import run_files, weights_file

log = logging.getLogger(__name__)

MANIFEST = "archive.json"
# Never copied: the workdir lock, temporary files of atomic writes, an older manifest, kept
# weights (written again where still needed), TensorBoard event files (the same scalars
# are in each run's ``logs/metrics.jsonl``).
_SKIP_NAMES = (".lock", MANIFEST, weights_file.FILENAME, "events.out.tfevents")


@dataclasses.dataclass(frozen=True)
class Contents:
    """What ``save`` copies from a run directory (paths relative to it).

    Attributes:
      files: the files copied as they are.
      weights: the run directories whose best weights are kept (``weights.npz``): those an
        unfinished run starts from, then the finished ones ``keep`` names.
      unfinished: ``(trial, strategy, last finished cycle)`` of every strategy that has not
        finished its trial (cycle 0: only the trial's shared model).
      finished_runs: training runs that have finished (their ``metrics.json`` is kept).
    """

    files: tuple[str, ...]
    weights: tuple[str, ...]
    unfinished: tuple[tuple[int, str, int], ...]
    finished_runs: int


def read_plan(workdir: str) -> setup_lib.Plan:
    """The plan of the experiment in ``workdir`` (from its ``config.json``).

    Raises:
      FileNotFoundError: ``workdir`` holds no experiment.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir} holds no experiment (no config.json)")
    config = ml_collections.ConfigDict(jsonio.read(path))
    if "run_trials" in config.get("al", {}):
        # an order key: config.json keeps the first session's value, while later sessions
        # may run other trials; what is archived follows what is on disk (every trial)
        config.al.run_trials = ""
    return setup_lib.plan_from_config(config)


def contents(workdir: str, plan: setup_lib.Plan, keep: Sequence[str] = ()) -> Contents:
    """The files and weights of ``workdir`` that ``save`` copies (see the module docstring);
    ``keep``: ``fnmatch`` patterns of finished run directories (relative to ``workdir``,
    ``/``-separated) whose weights are kept too.

    A run counts as finished when both of its finish markers (``run_files.is_finished``) are
    among the listed files: a run that finishes while the directory is listed is archived as
    unfinished, consistently with the weights kept."""
    files = []
    for root, dirs, names in os.walk(workdir):
        rel_root = os.path.relpath(root, workdir)
        if os.path.basename(root) == "train":
            dirs[:] = []  # checkpoints (latest, best) stay behind
            names = [n for n in names if n == run_files.FINAL_EVAL[-1]]
        dirs.sort()
        for name in sorted(names):
            if name.startswith(_SKIP_NAMES) or ".tmp" in name:
                continue
            files.append(os.path.normpath(os.path.join(rel_root, name)))
    listed = set(files)
    finished = {
        os.path.dirname(f)
        for f in files
        if os.path.basename(f) == "metrics.json"
        and os.path.join(os.path.dirname(f), *run_files.FINAL_EVAL) in listed
    }
    # The final evaluation's marker of an unfinished run (metrics.json not written yet)
    # stays behind with its checkpoints: restored without them, the run trains again and
    # must evaluate its final model again (loop.train also drops such a marker).
    files = [
        f for f in files
        if not (f.endswith(os.path.join(*run_files.FINAL_EVAL))
                and os.path.dirname(os.path.dirname(f)) not in finished)
    ]  # fmt: skip
    last = plan.num_cycles - 1
    weights, unfinished = [], []
    for t in range(plan.num_trials):
        cycle0 = os.path.join(f"trial_{t}", "cycle_0")
        if cycle0 not in finished:
            continue  # trained again from the start (or never started)
        continued = []  # the runs this trial's unfinished strategies continue from
        for spec in plan.strategies_of_trial(t):
            runs = [os.path.join(f"trial_{t}", spec.name, f"cycle_{k}") for k in range(last + 1)]
            k = max((k for k in range(1, last + 1) if runs[k] in finished), default=0)
            if k < last:
                unfinished.append((t, spec.name, k))
                continued.append(runs[k] if k else cycle0)
        weights += sorted(set(continued), key=continued.index)
    kept = sorted(
        run for run in finished
        if run not in weights and any(fnmatch.fnmatchcase(run.replace(os.sep, "/"), p) for p in keep)
    )  # fmt: skip
    weights += kept
    return Contents(tuple(files), tuple(weights), tuple(unfinished), len(finished))


def missing_records(archive_dir: str, workdir: str) -> list[tuple]:
    """The (trial, strategy, cycle) records of ``archive_dir``'s ``results.json`` that
    ``workdir``'s lacks (empty when the run directory is at least as far as the archive)."""

    def ids(folder):
        path = os.path.join(folder, "results.json")
        records = jsonio.read(path) if os.path.exists(path) else []
        return {(r.get("trial"), r.get("strategy"), r.get("cycle")) for r in records}

    return sorted(ids(archive_dir) - ids(workdir), key=str)


def save(workdir: str, out: str, *, keep: Sequence[str] = (), load_variables=None) -> dict:
    """Archives run directory ``workdir`` into folder ``out`` (replacing an older archive).

    Args:
      workdir: an experiment's run directory (may be in use by a running experiment).
      out: the archive folder.
      keep: ``fnmatch`` patterns of finished runs whose weights are kept as well
        (``contents``).
      load_variables: ``run_dir -> variables`` (the best weights of a finished run); built
        from the experiment's config when None (loads the dataset, for the model's shapes).

    Returns:
      The manifest (also ``out/archive.json``), plus ``"changed"`` (not written): False when
      the archive already held exactly this (``same_archive``) and was kept as it was.
    """
    plan = read_plan(workdir)
    with _folder_lock(out, create=True):
        return _save(workdir, out, plan, keep, load_variables)


def _save(workdir, out, plan, keep, load_variables) -> dict:
    """``save`` under the archive folder's lock."""
    _recover(out)
    if os.path.exists(os.path.join(out, MANIFEST)) and (lost := missing_records(out, workdir)):
        raise ValueError(
            f"{out} holds {len(lost)} records that {workdir} lacks (e.g. {lost[0]}): the "
            f"archive is further on; restore it into a new run directory instead of "
            "replacing it with an older state"
        )
    results = os.path.join(workdir, "results.json")
    remove_stale_leftovers(out)
    tmp = f"{os.path.abspath(out).rstrip(os.sep)}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        # results.json before the scan: its records never name a run the scan finds unfinished.
        if os.path.exists(results):
            shutil.copy2(results, os.path.join(tmp, "results.json"))
        found = contents(workdir, plan, keep)
        for rel in found.files:
            if rel == "results.json":
                continue
            os.makedirs(os.path.join(tmp, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(workdir, rel), os.path.join(tmp, rel))
        if found.weights and load_variables is None:
            load_variables = variables_loader(workdir)
        for rel in found.weights:
            weights_file.save(
                os.path.join(tmp, rel, weights_file.FILENAME),
                load_variables(os.path.join(workdir, rel)),
            )
        manifest = {
            "source": workdir,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "records": len(jsonio.read(results)) if os.path.exists(results) else 0,
            "finished_runs": found.finished_runs,
            "weights": list(found.weights),
            "keep": list(keep),
            "unfinished": [
                {"trial": t, "strategy": s, "last_finished_cycle": k}
                for t, s, k in found.unfinished
            ],
        }
        jsonio.write_atomic(os.path.join(tmp, MANIFEST), manifest)
        if same_archive(tmp, out):  # nothing new (a finished experiment saved again)
            shutil.rmtree(tmp)
            kept = jsonio.read(os.path.join(out, MANIFEST))
            log.info("%s: unchanged since %s", out, kept["saved_at"])
            return {**kept, "changed": False}
        jsonio.fsync_tree(tmp)  # complete on disk before it replaces the previous archive
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**manifest, "changed": True}


def same_archive(a: str, b: str) -> bool:
    """Whether archive folders ``a`` and ``b`` hold the same files with the same bytes, their
    manifests equal but for ``saved_at`` (False when either is missing)."""

    def listing(root: str) -> set[str]:
        return {
            os.path.relpath(os.path.join(d, n), root)
            for d, _, names in os.walk(root)
            for n in names
        }

    if not (os.path.isdir(a) and os.path.isdir(b)) or listing(a) != listing(b):
        return False
    for rel in listing(a):
        if rel == MANIFEST:
            ma, mb = (jsonio.read(os.path.join(x, MANIFEST)) for x in (a, b))
            if {**ma, "saved_at": None} != {**mb, "saved_at": None}:
                return False
        elif not filecmp.cmp(os.path.join(a, rel), os.path.join(b, rel), shallow=False):
            return False
    return True


def restore(archive_dir: str, workdir: str) -> None:
    """Copies archive ``archive_dir`` into the new run directory ``workdir``.

    Raises:
      FileNotFoundError: ``archive_dir`` is not an archive.
      FileExistsError: ``workdir`` exists and is not empty (it may hold newer progress).
    """
    with _folder_lock(archive_dir):  # not while a save replaces it
        _recover(archive_dir)
        if not os.path.exists(os.path.join(archive_dir, MANIFEST)):
            raise FileNotFoundError(f"{archive_dir} is not an experiment archive (no {MANIFEST})")
        if os.path.isdir(workdir) and os.listdir(workdir):
            raise FileExistsError(
                f"{workdir} exists and is not empty: it may hold newer progress than "
                f"{archive_dir}; resume it as it is, or restore into a new directory"
            )
        shutil.copytree(archive_dir, workdir, dirs_exist_ok=True)


def variables_loader(workdir: str):
    """``run_dir -> variables`` for the model of ``workdir``'s config
    (``run_files.load_variables``)."""
    config = ml_collections.ConfigDict(jsonio.read(os.path.join(workdir, "config.json")))
    specs = setup_lib.strategy_specs(config)
    setup = setup_lib.build_setup(
        config, needs_loss_prediction=any(s.base == "ll4al" for s in specs)
    )
    return lambda run_dir: run_files.load_variables(
        run_dir, setup.model, setup.train_cfg, setup.spec
    )


def remove_stale_leftovers(out: str, *, min_age_s: float = 3600.0) -> list[str]:
    """Removes the folders ``<out>.tmp<pid>`` and ``<out>.old<pid>`` that a killed ``save``
    left beside archive ``out`` (a session that ends mid-save): only those whose process is
    gone from this machine and that were last changed ``min_age_s`` or more ago (a save on
    another machine sharing the folder is left alone while it may still run). An ``.old``
    folder is kept while ``out`` itself is missing: it is then the last complete archive.

    Returns:
      The removed paths.
    """
    base = os.path.abspath(out).rstrip(os.sep)
    parent, name = os.path.split(base)
    if not os.path.isdir(parent):
        return []
    removed = []
    for entry in sorted(os.listdir(parent)):
        for kind in (".tmp", ".old"):
            pid = entry[len(name) + len(kind) :]
            if not (entry.startswith(name + kind) and pid.isdigit()):
                continue
            path = os.path.join(parent, entry)
            if kind == ".old" and not os.path.exists(os.path.join(base, MANIFEST)):
                continue
            if _alive(int(pid)) or time.time() - os.path.getmtime(path) < min_age_s:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def recover(out: str) -> str | None:
    """``_recover`` under the archive folder's lock (``save`` and ``restore`` call it
    themselves).

    Returns:
      The folder renamed into ``out``, or None.
    """
    with _folder_lock(out):
        return _recover(out)


@contextlib.contextmanager
def _folder_lock(out: str, *, create: bool = False):
    """Holds an exclusive OS lock (``fcntl.flock``) on the folder that holds archive ``out``
    until the block ends; released when the process exits, however it exits. One lock per
    folder, not per archive: a lock file beside each archive would be one more file in a
    folder that is committed. A missing folder is created with ``create`` (a save), else
    there is nothing to lock (a restore or recovery then finds no archive); a folder this
    process cannot open (e.g. a home directory without read permission) is used unlocked,
    with a warning."""
    parent = os.path.dirname(os.path.abspath(out).rstrip(os.sep))
    if create:
        os.makedirs(parent, exist_ok=True)
    fd = None
    try:
        fd = os.open(parent, os.O_RDONLY)
    except FileNotFoundError:
        pass
    except PermissionError:
        log.warning("%s cannot be opened to lock it: %s is used without the lock", parent, out)
    if fd is None:  # outside the handlers: an error of the block is not chained to theirs
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _recover(out: str) -> str | None:
    """Puts back archive ``out`` when a ``save`` was killed between its two renames (``out``
    moved aside to ``<out>.old<pid>``, the new archive not yet renamed from
    ``<out>.tmp<pid>``): ``out`` is then missing while a complete archive (one with its
    manifest, written last) lies beside it. The newer one (``.tmp``) is renamed into place,
    else the ``.old`` one; only folders whose process is gone from this machine. Nothing
    happens when ``out`` exists (or no complete archive lies beside it).

    Returns:
      The folder renamed into ``out``, or None.
    """
    base = os.path.abspath(out).rstrip(os.sep)
    parent, name = os.path.split(base)
    if os.path.exists(base) or not os.path.isdir(parent):
        return None
    found = []
    for entry in os.listdir(parent):
        for rank, kind in enumerate((".tmp", ".old")):
            pid = entry[len(name) + len(kind) :]
            path = os.path.join(parent, entry)
            if (
                entry.startswith(name + kind) and pid.isdigit() and not _alive(int(pid))
                and os.path.exists(os.path.join(path, MANIFEST))
            ):  # fmt: skip
                found.append((rank, -os.path.getmtime(os.path.join(path, MANIFEST)), path))
    if not found:
        return None
    chosen = min(found)[2]
    os.rename(chosen, base)
    log.warning("%s was missing (a save killed between its renames): put back from %s", out, chosen)
    return chosen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _replace_dir(new: str, target: str) -> None:
    """Renames folder ``new`` over ``target`` (an older one is removed after the rename)."""
    old = None
    if os.path.exists(target):
        old = f"{os.path.abspath(target).rstrip(os.sep)}.old{os.getpid()}"
        os.rename(target, old)
    os.rename(new, target)
    # the renames reach the disk before the older archive goes
    jsonio.fsync_path(os.path.dirname(os.path.abspath(target)))
    if old is not None:
        shutil.rmtree(old)
