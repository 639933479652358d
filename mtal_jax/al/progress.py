"""Whole-experiment progress bar with phase and ETA (shell; shown above each run's own bar).

``experiment.run`` plans its work in training steps (the reference run, each trial's
cycle 0, every strategy's later cycles), calls ``start`` before each phase and ``finish``
after it, and ``loop.train`` calls ``step`` once per training step. The bar reads e.g.

  experiment: trial 0 of 0-2 | ours | cycle 2/5 | train:  38%|###   | 4600/12000 steps [1:02:11, ETA 1:41:05]

The ETA is the remaining planned steps times this session's seconds per step, measured
from the end of the first trained step (its compile would dominate the first minutes), so
it includes scoring, evaluation and later compiles, and steps skipped on resume (finished
runs) do not make it optimistic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import tqdm


def format_seconds(seconds: float) -> str:
    """``H:MM:SS`` (or ``M:SS`` under an hour)."""
    seconds = round(max(seconds, 0.0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def planned_steps(
    *,
    reference_steps: int,
    initial_steps: int,
    num_cycles: int,
    cycle_steps: int,
    num_trials: int = 0,
    num_strategies: int = 0,
    strategies_per_trial: Sequence[int] | None = None,
) -> int:
    """Training steps of a whole experiment (0 for a reference that is not trained).

    ``strategies_per_trial`` (strategies run in each trial; a trial with none trains no
    cycle 0) replaces ``num_trials`` x ``num_strategies`` when given.
    """
    if strategies_per_trial is None:
        strategies_per_trial = [num_strategies] * num_trials
    total = reference_steps
    for count in strategies_per_trial:
        if count:
            total += initial_steps + count * (num_cycles - 1) * cycle_steps
    return total


class ExperimentProgress:
    """The experiment's bar (a no-op when ``enabled`` is False).

    Args:
      total_steps: planned training steps (``planned_steps``).
      enabled: show the bar.
      clock: seconds source (tests pass a fake one).
    """

    def __init__(self, total_steps: int, *, enabled: bool = True, clock=time.monotonic):
        self._clock = clock
        self._t0: float | None = None  # end of the first trained step of this session
        self._done_here = 0  # steps trained in this session after the first (the ETA's rate)
        self._phase_end = 0
        self.total = int(total_steps)
        self.position = 0
        self.phase = ""
        self._bar = tqdm.tqdm(
            total=self.total, desc="experiment", dynamic_ncols=True, disable=not enabled,
            position=0,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]",
        )  # fmt: skip
        self._refresh()

    def eta_seconds(self) -> float | None:
        """Seconds left at this session's pace, None before two trained steps."""
        if self._t0 is None or self._done_here == 0:
            return None
        elapsed = self._clock() - self._t0
        return (self.total - self.position) * elapsed / self._done_here

    def _refresh(self) -> None:
        eta = self.eta_seconds()
        self._bar.set_description_str(f"experiment: {self.phase}" if self.phase else "experiment")
        self._bar.set_postfix_str("ETA " + (format_seconds(eta) if eta is not None else "?"))

    def start(self, phase: str, steps: int = 0) -> None:
        """A new phase (``steps`` planned training steps; 0 for scoring/selection)."""
        self.phase = phase
        self._phase_end = self.position + int(steps)
        if self._phase_end > self.total:  # a run longer than planned: the bar grows
            self.total = self._phase_end
            self._bar.total = self.total
        self._refresh()

    def step(self, n: int = 1) -> None:
        """``n`` training steps done (called by the training loop)."""
        n = min(n, max(self._phase_end - self.position, 0))
        if n and self._t0 is None:
            self._t0 = self._clock()  # the pace starts after the first step
        else:
            self._done_here += n
        self.position += n
        self._bar.update(n)
        self._refresh()

    def finish(self) -> None:
        """The phase is complete: steps it did not run (resumed or finished) count as done."""
        skip = max(self._phase_end - self.position, 0)
        self.position += skip
        self._bar.update(skip)
        self._refresh()

    def close(self) -> None:
        self._bar.close()
