"""The device mesh and batch placement. The only module that calls ``jax.devices()``.

Data parallelism is ``jax.jit`` over a ``Mesh`` with one ``data`` axis: batches are
sharded ``P("data")``, state is replicated ``P()`` (docs/design.md §7; no pmap).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def create_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (all local+global devices by default)."""
    devices = jax.devices()
    if num_devices is not None:
        if num_devices > len(devices):
            raise ValueError(f"asked for {num_devices} devices, only {len(devices)} exist")
        devices = devices[:num_devices]
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over ``data``."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Fully replicated."""
    return NamedSharding(mesh, PartitionSpec())


def num_shards(mesh: Mesh) -> int:
    """Size of the data axis: batch sizes must be multiples of it."""
    return mesh.shape[DATA_AXIS]


def put_batch(batch: Any, mesh: Mesh) -> Any:
    """Places a host batch (pytree of numpy arrays, leading axis B) sharded over ``data``.

    In a multi-process run each process passes its own slice of the global batch.

    Raises:
      ValueError: when B is not a multiple of the number of local devices.
    """
    sharding = data_sharding(mesh)
    local = len(mesh.local_devices)

    def put(x):
        x = np.asarray(x)
        if x.shape[0] % local:
            raise ValueError(f"batch size {x.shape[0]} is not a multiple of {local} local devices")
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, batch)


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Replicates a pytree over the mesh."""
    return jax.device_put(tree, replicated(mesh))
