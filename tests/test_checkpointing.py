"""checkpointing: save/restore round trip and the metadata-only structure check."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import checkpointing


def _state(width=4):
    return {
        "params": {"conv": {"kernel": jnp.ones((3, 3, 2, width)), "bias": jnp.zeros((width,))}},
        "opt_state": (jnp.zeros((width,)), {"count": jnp.zeros((), jnp.int32)}),
        "step": jnp.asarray(7, jnp.int32),
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("ckpt"))
    manager = checkpointing.make_manager(directory)
    try:
        checkpointing.save(manager, 3, _state(), meta={"note": "x"})
    finally:
        checkpointing.close(manager)
    return directory


def test_round_trip_restores_values_and_meta(saved):
    manager = checkpointing.make_manager(saved)
    try:
        assert checkpointing.mismatches(manager, 3, _state()) == []
        state, meta = checkpointing.restore_latest(manager, _state())
    finally:
        checkpointing.close(manager)
    assert meta == {"note": "x"}
    equal = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), state, _state())
    assert all(jax.tree.leaves(equal))


def test_mismatches_name_each_differing_array_parameters_first(saved):
    like = _state(width=5)  # every width-dependent array differs
    like["params"]["conv"]["extra"] = jnp.zeros((2,))  # expected, not saved
    del like["step"]  # saved, not expected
    like["opt_state"][1]["count"] = jnp.zeros((), jnp.float32)  # dtype only
    abstract = jax.eval_shape(lambda: like)  # shape/dtype structs work as well as arrays
    manager = checkpointing.make_manager(saved)
    try:
        lines = checkpointing.mismatches(manager, 3, abstract)
    finally:
        checkpointing.close(manager)
    assert lines == [
        "params/conv/bias: saved (4,) float32, expected (5,) float32",
        "params/conv/extra: not in the checkpoint",
        "params/conv/kernel: saved (3, 3, 2, 4) float32, expected (3, 3, 2, 5) float32",
        "opt_state/0: saved (4,) float32, expected (5,) float32",
        "opt_state/1/count: saved () int32, expected () float32",
        "step: saved but not expected",
    ]


def test_a_reader_leaves_a_save_in_progress_alone(tmp_path):
    # a writer's manager removes the temporary folders of a crashed save when it opens; a
    # reader of a run that is still training must not, or the live writer fails
    directory = str(tmp_path / "best")
    manager = checkpointing.make_manager(directory)
    try:
        checkpointing.save(manager, 3, _state())
    finally:
        checkpointing.close(manager)
    in_progress = os.path.join(directory, "4.orbax-checkpoint-tmp")
    os.makedirs(in_progress)
    reader = checkpointing.make_manager(directory, read_only=True)
    try:
        assert reader.latest_step() == 3
        checkpointing.restore_latest(reader, _state())
    finally:
        checkpointing.close(reader)
    assert os.path.isdir(in_progress)
    reader = checkpointing.make_manager(str(tmp_path / "absent"), read_only=True)
    checkpointing.close(reader)
    assert not os.path.exists(tmp_path / "absent")  # a reader creates nothing


def _replicated(state):
    """``state`` replicated over all devices (2 CPU devices in the tests), as training keeps it."""
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    return jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def _orbax_default_manager(directory):
    """A manager with orbax's own handlers: the independent reference for the files."""
    import orbax.checkpoint as ocp

    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, item_handlers=handlers)


def _files(directory):
    """Relative paths of a checkpoint's files; OCDBT data files (random names) as ``d/*``."""
    out = set()
    for root, _, names in os.walk(directory):
        rel = os.path.relpath(root, directory)
        for n in names:
            out.add(os.path.join(rel, "*" if os.path.basename(rel) == "d" else n))
    return out


def test_replicated_state_is_written_whole_and_reads_both_ways_with_orbax_default(
    tmp_path, monkeypatch
):
    assert jax.device_count() == 2
    state = _replicated(_state())
    # orbax's default writes a replicated array in one slice per replica (a jitted slice per
    # array); this module's handler writes it whole from the first replica
    slices = []
    real = jax.lax.slice_in_dim
    monkeypatch.setattr(jax.lax, "slice_in_dim", lambda *a, **k: slices.append(1) or real(*a, **k))
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    manager = checkpointing.make_manager(ours)
    try:
        checkpointing.save(manager, 3, state, meta={"note": "x"})
    finally:
        checkpointing.close(manager)
    assert slices == []
    reference = _orbax_default_manager(theirs)
    try:
        checkpointing.save(reference, 3, state, meta={"note": "x"})
    finally:
        reference.close()
    # the default did slice: each array of rank > 0, once per replica
    assert len(slices) == 2 * sum(x.ndim > 0 for x in jax.tree.leaves(state)) > 0
    assert _files(ours) == _files(theirs)
    # each manager restores the other's checkpoint: values and shardings
    for reader, written in ((checkpointing.make_manager, theirs), (_orbax_default_manager, ours)):
        manager = reader(written)
        try:
            restored, meta = checkpointing.restore_latest(manager, state)
        finally:
            manager.close()
        assert meta == {"note": "x"}
        for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
            assert np.array_equal(got, want) and got.sharding == want.sharding
