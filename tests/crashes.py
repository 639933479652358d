"""Injected crashes for the resume tests: each context manager makes one part of the
experiment raise ``Crash`` (as a kill there would stop it) and restores it on exit.

    with crashes.in_training_run(2), pytest.raises(crashes.Crash):
        experiment.run(config, workdir, progress=False)
"""

from __future__ import annotations

import contextlib

import pytest

from mtal_jax import jsonio
from mtal_jax.al import scoring
from mtal_jax.data import pipeline


class Crash(Exception):
    """The injected crash."""


@contextlib.contextmanager
def in_training_run(n: int):
    """The ``n``-th training run (1-based, counted from entering) crashes after one batch."""
    real = pipeline.iterate_train
    calls = {"n": 0}

    def crashing(ds, start, **kw):
        calls["n"] += 1
        it = real(ds, start, **kw)
        if calls["n"] == n:
            yield next(it)
            raise Crash("killed while training")
        yield from it

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "iterate_train", crashing)
        yield


@contextlib.contextmanager
def in_scoring():
    """The first pool scoring crashes."""

    def crashing(*a, **kw):
        raise Crash("killed while scoring")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scoring, "score_pool", crashing)
        yield


@contextlib.contextmanager
def in_writing(suffix: str):
    """Writing a JSON file whose path ends with ``suffix`` crashes before the rename."""
    real = jsonio.write_atomic

    def crashing(path, obj, **kw):
        if path.endswith(suffix):
            raise Crash(f"killed while writing {suffix}")
        return real(path, obj, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsonio, "write_atomic", crashing)
        yield
