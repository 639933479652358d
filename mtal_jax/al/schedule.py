"""Training schedules in passes over the pool, converted to steps (paper Sec. IV-A).

The paper trains 30,000 steps of batch 4 per cycle on the 13,187 front-camera nuImages
training images: 120,000 samples, about 9 passes over the whole pool per cycle (about 23
over the 40 % labeled at cycle 0), and its fully trained reference 300,000 steps, about 91
passes. Counting passes over the *pool* (not the labeled set) keeps a schedule meaningful
when the pool or the batch changes: ``steps = ceil(passes * pool_size / batch_size)``.

The config states ``train.cycle_epochs`` (cycles 1, 2, ...), ``train.initial_epochs``
(cycle 0, from scratch) and ``train.reference_epochs`` (the full-data reference); an
explicit step count (``train.steps``, ``train.initial_steps``, ``train.full_steps``)
greater than 0 takes precedence (tests, quick runs).
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Training steps of each kind of run of one experiment.

    Attributes:
      cycle_steps: steps of each AL cycle after cycle 0 (warm-started).
      initial_steps: steps of cycle 0 (from scratch, shared by all strategies of a trial).
      reference_steps: steps of the fully trained reference (100 % of the pool).
    """

    cycle_steps: int
    initial_steps: int
    reference_steps: int


def passes_to_steps(passes: float, pool_size: int, batch_size: int) -> int:
    """Steps of batch ``batch_size`` that make ``passes`` passes over ``pool_size`` images.

    Args:
      passes: passes (epochs) over the whole pool, > 0.
      pool_size: N, images in the pool (the training split), > 0.
      batch_size: global batch size, > 0.

    Returns:
      ``ceil(passes * pool_size / batch_size)`` (at least 1).

    Raises:
      ValueError: a non-positive argument.
    """
    if not (passes > 0 and pool_size > 0 and batch_size > 0):
        raise ValueError(
            f"need passes, pool_size, batch_size > 0, got {passes}, {pool_size}, {batch_size}"
        )
    return max(1, math.ceil(passes * pool_size / batch_size - 1e-9))


def steps_to_passes(steps: int, pool_size: int, batch_size: int) -> float:
    """Passes over the pool made by ``steps`` steps of batch ``batch_size``."""
    return steps * batch_size / pool_size


def resolve(
    *,
    pool_size: int,
    batch_size: int,
    cycle_epochs: float = 0.0,
    initial_epochs: float = 0.0,
    reference_epochs: float = 0.0,
    steps: int = 0,
    initial_steps: int = 0,
    full_steps: int = 0,
) -> Schedule:
    """The experiment's step counts from passes over the pool, or from explicit steps.

    For each kind of run an explicit step count > 0 wins; otherwise its passes are converted
    with :func:`passes_to_steps`. Cycle 0 falls back to the cycle schedule when it has
    neither.

    Args:
      pool_size: N, images in the pool.
      batch_size: global batch size.
      cycle_epochs: passes over the pool per AL cycle after cycle 0.
      initial_epochs: passes over the pool for cycle 0 (0 = as ``cycle_epochs``).
      reference_epochs: passes over the pool for the reference run.
      steps, initial_steps, full_steps: explicit steps (0 = derive from the passes).

    Returns:
      The :class:`Schedule`.

    Raises:
      ValueError: a kind of run with neither steps nor passes, or a negative one (0 means
        "derive"; a negative value is a mistake, not "unset"), naming the config keys.
    """
    check_nonnegative({
        "steps": steps, "initial_steps": initial_steps, "full_steps": full_steps,
        "cycle_epochs": cycle_epochs, "initial_epochs": initial_epochs,
        "reference_epochs": reference_epochs,
    })  # fmt: skip

    def one(explicit: int, passes: float, keys: str) -> int:
        if explicit and explicit > 0:
            return int(explicit)
        if passes and passes > 0:
            return passes_to_steps(passes, pool_size, batch_size)
        raise ValueError(f"set {keys} (> 0) in the config's train section")

    cycle = one(steps, cycle_epochs, "train.cycle_epochs or train.steps")
    if (initial_steps and initial_steps > 0) or (initial_epochs and initial_epochs > 0):
        initial = one(initial_steps, initial_epochs, "train.initial_epochs")
    else:
        initial = cycle
    reference = one(full_steps, reference_epochs, "train.reference_epochs or train.full_steps")
    return Schedule(cycle_steps=cycle, initial_steps=initial, reference_steps=reference)


SCHEDULE_KEYS = (
    "steps",
    "initial_steps",
    "full_steps",
    "cycle_epochs",
    "initial_epochs",
    "reference_epochs",
)
"""The ``train`` keys of a schedule: explicit steps and passes (0 = derive / unset)."""


def check_nonnegative(values: dict) -> None:
    """Raises ``ValueError`` naming ``train.<key>`` for a negative one of ``values``
    (``SCHEDULE_KEYS`` -> number): 0 means "derive", a negative value is a mistake."""
    for key, value in values.items():
        if value and value < 0:
            raise ValueError(f"train.{key} must be >= 0 (0: derived from the passes), got {value}")


def from_config(train_config, pool_size: int) -> Schedule:
    """:func:`resolve` with the keys of a config's ``train`` section (absent keys = 0)."""
    get = train_config.get
    return resolve(
        pool_size=pool_size,
        batch_size=int(train_config.batch_size),
        cycle_epochs=float(get("cycle_epochs", 0.0) or 0.0),
        initial_epochs=float(get("initial_epochs", 0.0) or 0.0),
        reference_epochs=float(get("reference_epochs", 0.0) or 0.0),
        steps=int(get("steps", 0) or 0),
        initial_steps=int(get("initial_steps", 0) or 0),
        full_steps=int(get("full_steps", 0) or 0),
    )
