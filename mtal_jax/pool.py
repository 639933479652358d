"""The labeled pool as pure data (paper IV-A; docs/design.md §6).

The pool is the training split, N images. A labeled set is a [N] bool mask; its
durable form is the sorted list of labeled indices written per cycle by the experiment.
"""

from __future__ import annotations

import numpy as np


def fraction_to_count(n: int, fraction: float) -> int:
    """Number of images in ``fraction`` of a pool of ``n`` (rounded, at least 1)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, round(fraction * n))


def initial_labeled(n: int, fraction: float, seed: int) -> np.ndarray:
    """A random initial labeled set: [N] bool with ``fraction_to_count(n, fraction)`` True.

    Deterministic for (n, fraction, seed); different trials use different seeds.
    """
    count = fraction_to_count(n, fraction)
    chosen = np.random.default_rng([seed, n]).choice(n, size=count, replace=False)
    labeled = np.zeros(n, bool)
    labeled[chosen] = True
    return labeled


def add_selection(labeled: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Returns a new mask with ``selected`` labeled.

    Raises:
      ValueError: duplicate, out-of-range or already labeled indices (a strategy bug).
    """
    selected = np.asarray(selected, np.int64)
    if len(np.unique(selected)) != len(selected):
        raise ValueError(f"selection holds duplicate indices: {selected.tolist()}")
    if len(selected) and (selected.min() < 0 or selected.max() >= len(labeled)):
        raise ValueError(f"selection holds indices outside [0, {len(labeled)})")
    if labeled[selected].any():
        raise ValueError(f"selection holds labeled indices: {selected[labeled[selected]].tolist()}")
    out = labeled.copy()
    out[selected] = True
    return out


def cycle_budgets(
    n: int, initial_fraction: float, budget_fraction: float, num_cycles: int
) -> list[int]:
    """Images added at cycles 1..num_cycles-1 (cycle 0 is the initial set), capped by the pool."""
    start = fraction_to_count(n, initial_fraction)
    step = fraction_to_count(n, budget_fraction)
    budgets, have = [], start
    for _ in range(1, num_cycles):
        b = min(step, n - have)
        budgets.append(b)
        have += b
    return budgets
