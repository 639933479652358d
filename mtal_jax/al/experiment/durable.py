"""The experiment's durable state in ``workdir``: what a resumed run reads back.

Every file is written atomically (a temporary file, then a rename) by process 0 only; a
selection is never rewritten. Reading a file that exists is how each step of the
experiment knows it is done (``protocol`` describes the order).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from mtal_jax import jsonio
from mtal_jax.data import fields
from mtal_jax.train import run_files

log = logging.getLogger(__name__)

# Config keys added after experiments had been started, each with the value that behaves as
# the code did before the key existed: a saved config.json without the key reads as holding
# that value, so adding an option does not refuse to resume a running experiment.
ADDED_KEYS: dict[str, Any] = {"loss.seg_class_weights": [], "al.share_from": ""}

# Config keys that change when results appear, never what they are: left out of the
# comparison with the saved config, so a resumed run may set them otherwise. (al.share_from
# is compared: whether runs are copied from another experiment is part of what it is.)
ORDER_KEYS: tuple[str, ...] = ("al.order", "al.run_trials")

# Config keys a resumed run may raise, and only raise: more trials add trials (each seeded by
# its index alone, ``protocol.run_plan``), so the finished ones stay what they were; the
# experiment's ``config.json`` then holds the new value. Lowering one is refused: trials
# already run would leave the experiment (``al.run_trials`` runs fewer in one session).
EXTENDABLE_KEYS: tuple[str, ...] = ("al.num_trials",)

# Beside config.json: one entry per extension (``extensions``), so that a report can tell
# the trials added later (possibly by newer code) from the first ones.
EXTENSIONS = "extensions.json"


def _parent_of(out: dict, dotted: str) -> tuple[dict, str] | None:
    """The dict holding key ``dotted`` in ``out`` and the key's last part; the dicts on
    the way are copied into ``out`` first so the caller may edit the parent. None when a
    parent is missing."""
    *parents, leaf = dotted.split(".")
    node = out
    for p in parents:
        if not isinstance(node.get(p), dict):
            return None
        node[p] = node = dict(node[p])
    return node, leaf


def with_added_keys(saved: dict) -> dict:
    """``saved`` (a config dict) plus every ``ADDED_KEYS`` entry it lacks (copied)."""
    out = dict(saved)
    for dotted, value in ADDED_KEYS.items():
        if (at := _parent_of(out, dotted)) is not None:
            at[0].setdefault(at[1], value)
    return out


def without_keys(config_dict: dict, keys: tuple[str, ...] = ORDER_KEYS) -> dict:
    """``config_dict`` without the dotted ``keys`` (copied where they are removed)."""
    out = dict(config_dict)
    for dotted in keys:
        if (at := _parent_of(out, dotted)) is not None:
            at[0].pop(at[1], None)
    return out


def check_config(config_dict: dict, workdir: str, *, write: bool = True) -> None:
    """Writes ``workdir/config.json`` (unless ``write`` is False), or checks that a resumed
    run uses the same config.

    Args:
      config_dict: the resolved config (``config.to_dict()``).
      workdir: the run directory.
      write: write the file when it does not exist yet.

    Keys of ``ADDED_KEYS`` missing from the saved file count as their listed value; the
    ``ORDER_KEYS`` are not compared (the file keeps the value of the first session); an
    ``EXTENDABLE_KEYS`` value larger than the saved one extends the experiment (written into
    the file when ``write``: more trials).

    Raises:
      ValueError: ``workdir`` holds an experiment with another config (naming the keys), or
        the config lowers an ``EXTENDABLE_KEYS`` value.
    """
    path = os.path.join(workdir, "config.json")
    current = jsonio.normalize(config_dict)
    if os.path.exists(path):
        raw = jsonio.read(path)
        saved = without_keys(with_added_keys(raw))
        compared = without_keys(current)
        if saved != compared:
            diff = sorted(config_diff(saved, compared))
            extended = _extended(saved, compared, diff, workdir)
            if not extended:
                raise ValueError(
                    f"{workdir} holds an experiment with another config (differs at "
                    f"{diff[:8]}); use a new --workdir or the same config to resume"
                )
            if write and jax.process_index() == 0:
                for dotted, (old, new) in extended.items():
                    parent, leaf = _parent_of(raw, dotted)
                    parent[leaf] = new
                    log.info("%s: %s extended from %s to %s", workdir, dotted, old, new)
                # The history first: a crash before config.json is written makes the next
                # run extend again, and its entry replaces the one never in force.
                record_extensions(workdir, extended)
                jsonio.write_atomic(path, raw)
    elif write and jax.process_index() == 0:
        jsonio.write_atomic(path, current)


def extensions(workdir: str) -> list[dict]:
    """The extensions of the experiment in ``workdir``, oldest first (``[]`` when it was
    never extended, or was extended before they were recorded).

    Returns:
      One dict per extended key and session: ``{"key": "al.num_trials", "from": 10,
      "to": 20, "at": "2026-12-06T09:00:00+0000", "code": "f69bca6"}`` (``code``:
      ``session_code()`` of the session that extended it).

    Raises:
      ValueError: the file is not such a list (naming it).
    """
    path = os.path.join(workdir, EXTENSIONS)
    if not os.path.exists(path):
        return []
    entries = jsonio.read(path)
    fields_ = {"key", "from", "to", "at", "code"}
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and fields_ <= set(e) for e in entries
    ):
        raise ValueError(f"{path}: expected a list of {sorted(fields_)} entries")
    return entries


def record_extensions(workdir: str, extended: dict[str, tuple]) -> None:
    """Appends ``extended`` ({key: (from, to)}, from ``check_config``) to ``workdir``'s
    ``extensions.json`` (atomically), with the time and ``session_code()``.

    An entry of the key from ``from`` on is replaced: a run that crashed between this file
    and ``config.json`` wrote it, so it never took effect (``config.json`` still holds
    ``from``), and this run's extension, to the same count or another, is the one that does.
    """
    entries = extensions(workdir)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.gmtime())
    for key, (old, new) in extended.items():
        entries = [e for e in entries if e["key"] != key or e["from"] < old]
        entries.append({"key": key, "from": old, "to": new, "at": stamp, "code": session_code()})
    jsonio.write_atomic(os.path.join(workdir, EXTENSIONS), entries)


@functools.cache
def session_code() -> str | None:
    """``code_version()`` of this process, read once: ``protocol.run`` calls it as it starts,
    so the records a session writes (``wall.json``, ``extensions.json``) name the code it
    imported, not a commit made while it ran."""
    return code_version()


# The widest x86 vector extensions, widest first: XLA:CPU's kernels (and so the rounding of
# a training run) follow the one the processor has.
_VECTOR_ISAS = ("avx512f", "avx2", "avx", "sse4_2")


@functools.cache
def session_machine() -> dict[str, Any]:
    """What this process trains on, as far as it can change the numbers (training is bitwise
    deterministic on one machine only: ``experiments/README.md``), read once; recorded in
    each ``wall.json`` beside ``session_code()``. A model name alone may not tell two
    machines apart (a virtual machine may report only "AMD EPYC"), so the processor's
    family/model/stepping and a digest of its feature flags come with it.

    Returns:
      ``{"cpu": model name, "cpuid": "family F model M stepping S" ("" when not listed),
      "isa": widest x86 vector extension ("" when none is listed), "flags": the first 12 hex
      digits of the SHA-256 of the sorted feature flags, "backend": JAX backend, "device":
      device kind, "devices": count, "jaxlib": version}``.
    """
    import jaxlib

    info = cpu_info()
    devices = jax.devices()
    flags = " ".join(sorted(info["flags"]))
    return {
        "cpu": info["name"],
        "cpuid": info["cpuid"],
        "isa": next((isa for isa in _VECTOR_ISAS if isa in info["flags"]), ""),
        "flags": hashlib.sha256(flags.encode()).hexdigest()[:12],
        "backend": jax.default_backend(),
        "device": devices[0].device_kind if devices else "",
        "devices": len(devices),
        "jaxlib": jaxlib.__version__,
    }


def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """The first processor of ``path`` (Linux): ``{"name": model name, "cpuid": "family F
    model M stepping S" or "", "flags": frozenset of feature flags}``; without the file,
    the name is ``platform.processor()`` or ``platform.machine()``, no cpuid, no flags."""
    entries = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip() and entries:
                    break  # the first processor's block ends
                key, _, value = line.partition(":")
                entries.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    parts = [(k, entries.get(k)) for k in ("cpu family", "model", "stepping")]
    cpuid = " ".join(f"{k.split()[-1]} {v}" for k, v in parts) if all(v for _, v in parts) else ""
    return {
        "name": entries.get("model name") or platform.processor() or platform.machine(),
        "cpuid": cpuid,
        "flags": frozenset(entries.get("flags", "").split()),
    }


def code_version(package_dir: str | None = None) -> str | None:
    """The short commit of the git checkout that holds ``package_dir`` (default: this
    package), ``-dirty`` when that folder's or the checkout's ``configs/`` tracked files
    differ from it (other files, e.g. archived records, do not count); None when the folder
    is not tracked by a checkout (an installed copy, even inside a repository's ignored
    venv) or git is missing. Git takes no optional lock (a concurrent ``git commit`` is
    not disturbed)."""
    package = os.path.abspath(
        package_dir or os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    )

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "--no-optional-locks", "-C", package, *args],
                check=False, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if not commit or git("ls-files", "--error-unmatch", "--", package) is None:
        return None
    top = git("rev-parse", "--show-toplevel")
    paths = [package] + ([os.path.join(top, "configs")] if top else [])
    changes = git("status", "--porcelain", "--untracked-files=no", "--", *paths)
    return commit + ("-dirty" if changes else "")


def _value(config_dict: dict, dotted: str) -> Any:
    node: Any = config_dict
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _extended(saved: dict, current: dict, diff: list[str], workdir: str) -> dict[str, tuple]:
    """{key: (saved, current)} when the configs differ only in ``EXTENDABLE_KEYS``, each raised
    (an experiment extended); {} when they differ elsewhere.

    Raises:
      ValueError: they differ only there, and one is lowered.
    """
    if not diff or not set(diff) <= set(EXTENDABLE_KEYS):
        return {}
    pairs = {k: (_value(saved, k), _value(current, k)) for k in diff}
    for key, (old, new) in pairs.items():
        if not (isinstance(old, int) and isinstance(new, int)) or new < old:
            raise ValueError(
                f"{workdir} holds an experiment with {key}={old}, and {key} can only grow on "
                f"resume (got {new}): its trials would leave it; use al.run_trials to run "
                "fewer of them now, or a new --workdir"
            )
    return pairs


def config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The dotted keys at which config dicts ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += config_diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        return out
    return [] if a == b else [prefix]


def pool(path: str, create: Callable[[], np.ndarray], n: int) -> np.ndarray:
    """The [n] bool labeled mask stored at ``path`` (a ``pool.json``), or ``create()``'s,
    written there once."""
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


def read_selection(cycle_dir: str) -> np.ndarray | None:
    """The selected pool indices of ``cycle_dir/selection.json``, None when not written."""
    path = os.path.join(cycle_dir, "selection.json")
    if not os.path.exists(path):
        return None
    return np.asarray(jsonio.read(path)["selected"], np.int64)


def write_selection(
    cycle_dir: str, record: dict, *, scores: dict[str, np.ndarray], scored: np.ndarray
) -> None:
    """Writes ``scores.npz`` (every score component over the pool) and then
    ``selection.json`` (``record``), once: an existing selection is never replaced."""
    if jax.process_index() != 0:
        return
    jsonio.write_file_atomic(
        os.path.join(cycle_dir, "scores.npz"),
        lambda f: np.savez(f, scored=scored, **scores),
        binary=True,
    )
    jsonio.write_atomic(os.path.join(cycle_dir, "selection.json"), record, overwrite=False)


def needs_previous_weights(cycle_dir: str) -> bool:
    """Whether cycle ``cycle_dir`` still needs the weights of the cycle before it: to select
    (no ``selection.json`` yet) or to start training (neither finished nor checkpointed)."""
    if read_selection(cycle_dir) is None:
        return True
    return not (run_files.is_finished(cycle_dir) or run_files.has_checkpoint(cycle_dir, "latest"))


def write_results(workdir: str, records: list[dict]) -> None:
    """Writes ``workdir/results.json`` (process 0) without ever shrinking it.

    A record is identified by its (trial, strategy, cycle): ``records`` replace the saved
    records of the same identity and the saved ones they do not name are kept, in the
    saved order, with new identities appended. A resumed session repeats the finished
    records one by one, possibly in another order (``al.order``), and the file keeps
    every result of the experiment even if the session is killed half way."""
    if jax.process_index() != 0:
        return
    path = os.path.join(workdir, "results.json")
    current = jsonio.normalize(records)
    merged = {}
    if os.path.exists(path):
        saved = jsonio.read(path)
        if isinstance(saved, list):
            merged = {_record_id(r): r for r in saved}
    before = list(merged.values())
    merged.update((_record_id(r), r) for r in current)
    out = list(merged.values())
    if out != before:
        jsonio.write_atomic(path, out)


def _record_id(record: dict) -> tuple:
    return (record.get("trial"), record.get("strategy"), record.get("cycle"))


def write_wall_time(run_dir: str, seconds: float) -> None:
    """Writes ``run_dir/wall.json`` (``{"seconds": s, "code": ..., "machine": ...}``:
    selection, training and evaluation of the run, and the ``session_code()`` and
    ``session_machine()`` of the session that finished it),
    once: a resumed session reads a finished run back in seconds and leaves the file
    alone. The caller adds the training seconds of earlier sessions up to the
    checkpoint it resumed from (``RunResult.resumed_seconds``); work lost to an interruption
    (redone after the last checkpoint) and a selection made by an earlier session are not
    counted."""
    path = os.path.join(run_dir, "wall.json")
    if jax.process_index() == 0 and not os.path.exists(path) and os.path.isdir(run_dir):
        jsonio.write_atomic(
            path, {"seconds": float(seconds), "code": session_code(), "machine": session_machine()}
        )


def image_ids(source: Any, indices: np.ndarray) -> list[str]:
    """The dataset's own ids (``image_id``) of ``source[indices]``, read without decoding
    images (``data.fields``)."""
    return fields.image_ids(source, indices)
