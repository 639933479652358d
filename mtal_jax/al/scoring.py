"""Pool scoring (shell): run a strategy's jitted predict function over pool images.

Only per-image scores and features leave the device. In a multi-process run every
process loads its share of each global batch and the results are all-gathered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import tqdm
from jax.experimental import multihost_utils

from mtal_jax import runtime, sharding
from mtal_jax.data import pipeline
from mtal_jax.train import evaluate as evaluate_lib


def score_pool(
    predict_fn: Callable,
    variables: dict,
    source: Any,
    indices: Sequence[int],
    spec: pipeline.Spec,
    *,
    batch_size: int,
    mesh: jax.sharding.Mesh,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Scores ``source[indices]``.

    Args:
      predict_fn: jitted ``train.step.make_predict_fn`` output.
      variables: model variables (replicated).
      source: the pool's data source.
      indices: pool indices to score, in order.
      spec: pipeline spec.
      batch_size: global batch size, a multiple of the device count.
      mesh: device mesh.
      progress: show a progress bar.

    Returns:
      (scores: name -> [len(indices)] float32, in the order of ``indices``;
       feats: [len(indices), D] float32 or None).
    """
    indices = np.asarray(indices, np.int64)
    nproc, pid = jax.process_count(), jax.process_index()
    if batch_size % nproc:
        raise ValueError(f"score batch size {batch_size} is not a multiple of {nproc} processes")
    local = batch_size // nproc
    # Every process walks the same global batches and loads only its own slice.
    num_batches = -(-len(indices) // batch_size)
    padded = np.full(num_batches * batch_size, -1, np.int64)
    padded[: len(indices)] = indices
    mine = padded.reshape(num_batches, nproc, local)[:, pid].reshape(-1)
    scores: dict[str, list[np.ndarray]] = {}
    feats: list[np.ndarray] = []
    order: list[np.ndarray] = []
    batches = pipeline.iterate_eval(source, mine, spec, batch_size=local)
    for host in tqdm.tqdm(
        batches, total=num_batches, desc="score", leave=False, disable=not progress
    ):
        runtime.raise_pending_interrupt()  # a Ctrl-C lost where it was raised
        batch = sharding.put_batch(evaluate_lib.to_batch(host), mesh)
        s, f = predict_fn(variables, batch)
        out = {"scores": s, "feats": f, "index": batch.index, "valid": batch.valid}
        out = (
            multihost_utils.process_allgather(out, tiled=True) if nproc > 1 else jax.device_get(out)
        )
        keep = np.asarray(out["valid"])
        for k, v in out["scores"].items():
            scores.setdefault(k, []).append(np.asarray(v, np.float32)[keep])
        if out["feats"] is not None:
            feats.append(np.asarray(out["feats"], np.float32)[keep])
        order.append(np.asarray(out["index"])[keep])
    if not order:
        return {}, None
    got = np.concatenate(order)
    # perm with got[perm] == indices, by sorting (no per-image Python objects at 100k images).
    by_got, by_index = np.argsort(got, kind="stable"), np.argsort(indices, kind="stable")
    if len(got) != len(indices) or not np.array_equal(got[by_got], indices[by_index]):
        raise RuntimeError("pool scoring lost or duplicated images")
    perm = np.empty(len(indices), np.int64)
    perm[by_index] = by_got
    scores_out = {k: np.concatenate(v)[perm] for k, v in scores.items()}
    return scores_out, (np.concatenate(feats)[perm] if feats else None)
