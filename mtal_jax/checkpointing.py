"""Checkpoints: the only module that imports orbax (docs/design.md §7).

A training run keeps two managers: ``latest`` (the last saved step, for crash resume)
and ``best`` (the step with the best eval metric, for continuous AL training). Saves are
atomic (orbax writes to a tmp dir and renames), so a crash leaves the previous checkpoint.
Always ``wait`` before the process exits: saves are asynchronous.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import type_handlers
from orbax.checkpoint._src.metadata import array_metadata_store


def _state_handler() -> ocp.StandardCheckpointHandler:
    """orbax's ``StandardCheckpointHandler`` whose ``jax.Array`` handler writes each array from
    its first replica, whole (``use_replica_parallel=False``).

    orbax's default splits a replicated array into one slice per replica so that several hosts
    can write it together: a jitted slice per array on every save, compiled per shape on a
    process's first save (CamVid's network, 609 arrays on 2 CPU devices: a first save of 8.8 s
    instead of 2.0 s, later saves of 2.6 s instead of 1.9 s; docs/benchmarks.md "Checkpoint
    saves"). The training state is replicated, and one replica writes it faster whole. The files are the same: checkpoints of
    either handler restore with the other (tests/test_checkpointing.py). The pytree handler is
    set on the instance (``_impl``) so that the handler keeps its class, which orbax records in
    the checkpoint and matches ``StandardSave``/``StandardRestore`` against; the orbax version
    is pinned, and the test fails if that attribute goes.
    """
    arrays = type_handlers.ArrayHandler(
        use_replica_parallel=False, array_metadata_store=array_metadata_store.Store()
    )
    others = [(t, type_handlers.get_type_handler(t)) for t in type_handlers.supported_types()]
    registry = type_handlers.create_type_handler_registry(
        *[(t, h) for t, h in others if t is not jax.Array], (jax.Array, arrays)
    )
    handler = ocp.StandardCheckpointHandler()
    handler._impl = ocp.PyTreeCheckpointHandler(type_handler_registry=registry)
    return handler


def make_manager(
    directory: str,
    *,
    max_to_keep: int = 1,
    best_metric: str | None = None,
    best_mode: str = "max",
    read_only: bool = False,
) -> ocp.CheckpointManager:
    """Creates a manager over ``directory``.

    Args:
      directory: absolute or relative path; created if missing (unless ``read_only``).
      max_to_keep: checkpoints kept.
      best_metric: when set, keep the ``max_to_keep`` best checkpoints by this metric
        (passed to ``save`` as ``metrics``) instead of the latest ones.
      best_mode: "max" or "min".
      read_only: for a reader of another run's checkpoints (one that may still be
        training): it creates nothing and leaves the temporary folders of a save in
        progress alone (a writer's manager removes those of a crashed save when it opens;
        a reader doing so would make a live writer fail).
    """
    if best_mode not in ("max", "min"):
        raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=not read_only,
        cleanup_tmp_directories=not read_only,
        read_only=read_only,
        best_fn=(lambda m: float(m[best_metric])) if best_metric else None,
        best_mode=best_mode,
        keep_checkpoints_without_metrics=False,
        enable_async_checkpointing=True,
    )
    handlers = {"state": _state_handler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(
        os.path.abspath(directory), options=options, item_handlers=handlers
    )


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    meta: dict | None = None,
    metrics: dict | None = None,
) -> bool:
    """Saves ``state`` (a pytree) and JSON ``meta`` at ``step`` (async, atomic)."""
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(dict(meta or {}))
    )
    return manager.save(step, args=args, metrics=metrics)


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """Restores ``(state, meta)`` of ``step`` into the structure and shardings of
    ``abstract_state`` (e.g. ``jax.eval_shape`` output or a concrete state)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        ),
    )
    return restored.state, dict(restored.meta or {})


def read_meta(manager: ocp.CheckpointManager, step: int) -> dict:
    """The JSON ``meta`` saved with ``step``, without reading the state's arrays."""
    restored = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(restored.meta or {})


def mismatches(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> list[str]:
    """Where the state saved at ``step`` differs from ``abstract_state``, from the
    checkpoint's metadata alone (no array is read).

    Args:
      manager: from ``make_manager``.
      step: a step the manager holds.
      abstract_state: the pytree a ``restore`` would fill (arrays or shape/dtype structs).

    Returns:
      One line per differing array, by path, parameters first (``"params/neck/conv/kernel: saved
      (3, 3, 16, 16) float32, expected (3, 3, 8, 16) float32"``, ``"...: not in the
      checkpoint"``, ``"...: saved but not expected"``); empty when every path, shape and
      dtype agree, or when the checkpoint has no tree metadata to compare (``restore``
      then checks for itself).
    """
    saved = manager.item_metadata(step)["state"]
    if saved is None:
        return []

    def name(entry: Any) -> str:  # dict key, attribute or index alike: the saved tree is dicts
        for field in ("key", "name", "idx"):
            if hasattr(entry, field):
                return str(getattr(entry, field))
        return str(entry)

    def by_path(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
        leaves = jax.tree_util.tree_leaves_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))
        return {
            "/".join(name(e) for e in k): (tuple(v.shape), str(jax.numpy.dtype(v.dtype)))
            for k, v in leaves
        }

    have, want = by_path(saved), by_path(abstract_state)
    lines = []
    for key in sorted(want.keys() | have.keys(), key=lambda k: (not k.startswith("params"), k)):
        if key not in have:
            lines.append(f"{key}: not in the checkpoint")
        elif key not in want:
            lines.append(f"{key}: saved but not expected")
        elif have[key] != want[key]:
            (s_shape, s_dtype), (w_shape, w_dtype) = have[key], want[key]
            lines.append(f"{key}: saved {s_shape} {s_dtype}, expected {w_shape} {w_dtype}")
    return lines


def restore_latest(manager: ocp.CheckpointManager, abstract_state: Any) -> tuple[Any, dict] | None:
    """``restore`` of the latest step, or None when the manager holds no checkpoint."""
    step = manager.latest_step()
    return None if step is None else restore(manager, step, abstract_state)


def wait(*managers: ocp.CheckpointManager) -> None:
    """Blocks until every pending save of the managers has been committed."""
    for m in managers:
        m.wait_until_finished()


def close(*managers: ocp.CheckpointManager) -> None:
    """Waits for pending saves and releases the managers."""
    for m in managers:
        m.close()
