"""What a comparison's trials can detect, on the results page: the spread of its per-trial
gains, the smallest true gain a paired t test over them detects with 80 % power, and the
trials a gain of the paper's size would need (``mtal_jax.significance``)."""

from __future__ import annotations

import math

import numpy as np

from docs.results_lib import table_cells
from mtal_jax import significance

COLUMNS = (
    "| comparison | trials | SD of the per-trial mDSQ gain | gain detected with 80 % power | "
    "the paper's gain | trials for 80 % power at the paper's gain |\n|---|---|---|---|---|---|"
)


MIN_TRIALS_FOR_PLANNING = 3
"""Trials below which no trial count is planned from their spread (one degree of freedom)."""


def needed_text(effect, gains):
    """The trials ``significance.trials_needed`` plans for a true mean ``effect`` at the
    spread of ``gains`` (finite), as a cell: "—" for fewer than 3 gains or no spread."""
    if len(gains) < MIN_TRIALS_FOR_PLANNING or not np.std(gains) > 0:
        return table_cells.DASH
    needed = significance.trials_needed(effect, float(np.std(gains, ddof=1)))
    return "more than 100 000" if needed is None else str(needed)


def table(rows):
    """The markdown table of ``rows``, [(label, per-trial gains, the paper's gain or None)]:
    one line per row with two or more finite gains ("—" where the spread is 0, and for the
    trials needed with fewer than 3); "" when none has."""
    lines = []
    for label, gains, paper_gain in rows:
        gains = [x for x in gains if x is not None and math.isfinite(x)]
        if len(gains) < 2:
            continue
        sd = float(np.std(gains, ddof=1))
        detectable = significance.detectable_effect(sd, len(gains))
        shown = table_cells.DASH if math.isnan(detectable) else f"{detectable:.4f}"
        if paper_gain is None:
            paper_cells = [table_cells.DASH, table_cells.DASH]
        else:
            power = significance.t_test_power(paper_gain, sd, len(gains))
            paper_cells = [
                f"{paper_gain:+.4f} (power with these trials: "
                + (table_cells.DASH if math.isnan(power) else f"{100 * power:.0f} %")
                + ")",
                needed_text(paper_gain, gains),
            ]
        lines.append(f"| {label} | {len(gains)} | {sd:.4f} | {shown} | " + " | ".join(paper_cells)
                     + " |")  # fmt: skip
    return "\n".join([COLUMNS, *lines]) + "\n" if lines else ""
