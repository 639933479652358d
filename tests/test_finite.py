"""Divergence guard: a non-finite loss, gradient norm or parameter stops training before any
checkpoint of it is saved, whether it appears at a log step or between two of them."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import sharding
from mtal_jax.train import finite, loop, step_fns
from tests import fixtures
from tests import test_train as train_tests


def test_track_keeps_the_first_non_finite_step():
    first = jnp.int32(-1)
    for step, total, grad_norm in [(1, 1.0, 2.0), (2, 1.0, jnp.inf), (3, jnp.nan, 1.0)]:
        first = finite.track(first, jnp.int32(step), {"total": total, "grad_norm": grad_norm})
    assert int(first) == 2
    finite.check(-1, where="run")
    with pytest.raises(finite.NonFiniteError, match=r"in run: .* at step 2; no checkpoint"):
        finite.check(first, where="run")


def test_tree_is_finite_checks_every_float_leaf():
    tree = {"a": np.ones(3, np.float32), "b": {"c": np.zeros((2, 2))}, "n": np.arange(3)}
    assert bool(finite.tree_is_finite(tree))
    tree["b"]["c"][1, 0] = np.nan
    assert not bool(finite.tree_is_finite(tree))
    with pytest.raises(finite.NonFiniteError, match="ckpt: the model's parameters"):
        finite.check_variables(tree, where="ckpt")


def _steps(workdir, name):
    directory = os.path.join(workdir, "train", name)
    if not os.path.isdir(directory):
        return []
    return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def _poisoned_fns(cfg, *, at_step, loss=True, params=False):
    """The real step functions, except that step ``at_step`` turns the loss (or the
    parameters) into NaN: a divergence between two log steps."""
    fns = step_fns.build_step_fns(fixtures.make_model(), cfg, fixtures.SPEC)
    real = fns.train_step

    def train_step(state, batch, key):
        state, terms = real(state, batch, key)
        hit = state.step == at_step
        if loss:
            terms = terms | {"total": jnp.where(hit, jnp.nan, terms["total"])}
        if params:
            poison = lambda p: jnp.where(hit, jnp.nan, p)
            state = state.replace(params=jax.tree.map(poison, state.params))
        return state, terms

    return dataclasses.replace(fns, train_step=jax.jit(train_step))


def _train(workdir, cfg, fns):
    source = fixtures.scene_examples(13, seed=6)
    return loop.train(
        fixtures.make_model(), cfg, workdir=str(workdir), spec=fixtures.SPEC,
        train_source=source, train_indices=range(8), eval_source=source,
        eval_indices=range(8, 13), mesh=sharding.create_mesh(2), progress=False, fns=fns,
    )  # fmt: skip


def test_nan_loss_between_log_steps_stops_before_any_later_save(tmp_path):
    cfg = dataclasses.replace(train_tests.CFG, num_steps=6, log_every_steps=4)
    with pytest.raises(finite.NonFiniteError, match=r"at step 3; no checkpoint of step 3"):
        _train(tmp_path, cfg, _poisoned_fns(cfg, at_step=3))
    # Checkpoints every 2 steps: step 2 was saved, step 4 (after the NaN) was refused.
    assert _steps(tmp_path, "latest") == [2]
    assert _steps(tmp_path, "best") == []
    assert not os.path.exists(os.path.join(tmp_path, "metrics.json"))


def test_nan_parameters_are_never_saved_as_best(tmp_path):
    # The parameters turn NaN after step 3 with a finite loss; the eval of step 3 (which
    # would save a "best" checkpoint) refuses them.
    cfg = dataclasses.replace(train_tests.CFG, num_steps=6, log_every_steps=100, eval_every_steps=3)
    with pytest.raises(finite.NonFiniteError, match="parameters or batch statistics"):
        _train(tmp_path, cfg, _poisoned_fns(cfg, at_step=3, loss=False, params=True))
    assert _steps(tmp_path, "best") == [] and _steps(tmp_path, "latest") == [2]
