"""The experiment's progress bar: planned steps, phases, ETA, resumed runs."""

import pytest

from mtal_jax.al import progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_planned_steps_counts_every_training_run():
    # reference 50 + 2 trials x (cycle 0: 20 + 3 strategies x 2 later cycles x 10)
    assert progress.planned_steps(
        reference_steps=50, num_trials=2, initial_steps=20, num_strategies=3, num_cycles=3,
        cycle_steps=10,
    ) == 50 + 2 * (20 + 60)  # fmt: skip


def test_eta_uses_this_sessions_pace_and_skips_finished_runs():
    clock = FakeClock()
    bar = progress.ExperimentProgress(100, enabled=False, clock=clock)
    assert bar.eta_seconds() is None
    bar.start("reference", 40)
    bar.finish()  # finished before (resume): counts as done, not as pace
    assert bar.position == 40 and bar.eta_seconds() is None
    bar.start("trial 1/1 | cycle 0 | train", 30)
    clock.now += 60.0  # compile
    bar.step(1)  # resumed at step 20 of 30: 10 steps run here, the first one compiles
    assert bar.eta_seconds() is None
    clock.now += 9.0
    for _ in range(9):
        bar.step(1)
    bar.finish()  # the 20 steps done before the crash
    assert bar.position == 70
    # 9 steps in 9 s after the first -> 30 steps left take 30 s.
    assert bar.eta_seconds() == pytest.approx(30.0)
    bar.start("trial 1/1 | ours | cycle 1/1 | select")
    bar.step(3)  # a phase without planned steps cannot move the bar
    assert bar.position == 70 and bar.phase.endswith("select")
    bar.start("trial 1/1 | ours | cycle 1/1 | train", 50)  # longer than planned: grows
    assert bar.total == 120
    bar.close()


def test_format_seconds():
    assert progress.format_seconds(59.4) == "0:59"
    assert progress.format_seconds(3 * 3600 + 62) == "3:01:02"
