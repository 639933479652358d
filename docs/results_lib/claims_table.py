"""The results page's side-by-side with the paper: one row per claim with value, verdict
and p-value per dataset, the verdicts checked by Holm's adjustment within each family of
claims (``significance.holm``).
"""

from __future__ import annotations

import math

from docs.results_lib import table_cells
from mtal_jax import significance


def claim_family(claim):
    """The family of a side-by-side claim for Holm's adjustment: the claims that answer one
    question together (the main comparison, each S_cls mode's Table I ablation, Fig. 6's
    readings; Table II has no test)."""
    if claim.startswith("Table I ("):
        return claim.split(":")[0]
    if claim.startswith("Fig. 6:"):
        return "Fig. 6"
    return "Table II" if claim.startswith("Table II") else "main comparison"


def holm_by_family(rows):
    """{claim: Holm-adjusted p} within each family of one dataset's ``rows`` (``{claim:
    (cell, verdict[, p])}``; NaN where the claim has no test)."""
    families = {}
    for claim, (_, _, *p) in rows.items():
        families.setdefault(claim_family(claim), {})[claim] = p[0] if p else math.nan
    out = {}
    for p_values in families.values():
        out.update(significance.holm(p_values))
    return out


def _p(x):
    return significance.format_p(x if table_cells.finite(x) else None)


def _holds_after_holm(verdict, adjusted_p):
    """Whether a reproduced or contradicted verdict holds after Holm's adjustment (its
    adjusted p below 5 %); None for a verdict without a test of a direction."""
    if verdict not in (significance.REPRODUCED, significance.CONTRADICTED):
        return None
    return not (table_cells.finite(adjusted_p) and adjusted_p >= 1 - significance.LEVEL)


def _short_claim(claim):
    """A claim's name without the paper's figures in brackets; the longer experiments keep
    their trial count (``ours > random in mDSQ, 20 trials``)."""
    head, rest = claim.split(": ", 1) if claim.startswith("Table I (") else ("", claim)
    short = (f"{head}: " if head else "") + rest.split(" (")[0]
    words = claim.split()
    if "planned" in words and words.index("planned") >= 2:
        short += f", {words[words.index('planned') - 2]} trials"
    return short


_GROUPS = (  # verdict groups of ``verdicts_in_brief`` that list their claims
    ("rh", "**Reproduced**"),
    ("r", "Reproduced before Holm's adjustment only"),
    ("ch", "**Contradicted**"),
    ("c", "Contradicted before Holm's adjustment only"),
)


def verdicts_in_brief(all_rows, names_by_key=None):
    """One line per dataset: the claims whose verdict holds after Holm's adjustment within
    its family (reproduced, contradicted), those that hold before it only, and how many are
    not distinguishable from noise or have no test (not run yet, no interval); the same
    verdicts as ``side_by_side``, read from the same rows."""
    lines = ["In brief (from the table below; each claim's interval and p-value are there):\n"]
    for name, rows in all_rows.items():
        adjusted = holm_by_family(rows)
        groups = {k: [] for k in ("rh", "r", "ch", "c", "n", "none")}
        for claim, (_, verdict, *_) in rows.items():
            holds = _holds_after_holm(verdict, adjusted.get(claim, math.nan))
            if holds is None:
                key = "n" if verdict == significance.NOT_DISTINGUISHABLE else "none"
            else:
                key = ("r" if verdict == significance.REPRODUCED else "c") + ("h" if holds else "")
            groups[key].append(_short_claim(claim))
        parts = [f"{text}: {'; '.join(groups[key])}" for key, text in _GROUPS if groups[key]]
        n = len(groups["n"])
        parts.append(f"Not distinguishable from noise at this power: {n} claim{'s' * (n != 1)}")
        if groups["none"]:
            parts.append(f"No test (not run or not finished yet, or no interval): "
                         f"{len(groups['none'])}")  # fmt: skip
        label = (names_by_key or {}).get(name, name)
        lines.append(f"- {label}: " + ". ".join(parts) + ".")
    return "\n".join(lines) + "\n"


def side_by_side(all_rows):
    """The per-claim table: one column triple (value, verdict, p) per dataset, the verdict
    marked where it does not hold after Holm's adjustment within its family."""
    names = list(all_rows)
    claims_order = list(dict.fromkeys(c for rows in all_rows.values() for c in rows))
    adjusted = {n: holm_by_family(all_rows[n]) for n in names}
    head = (
        "| claim (paper) | "
        + " | ".join(f"{n}: value | {n}: verdict | {n}: p (Holm)" for n in names)
        + " |"
    )
    lines = [head, "|---|" + "---|---|---|" * len(names)]
    for c in claims_order:
        cells = []
        for n in names:
            value, verdict, *p = all_rows[n].get(c, (table_cells.DASH, "not run"))
            raw, adj = (p[0] if p else math.nan), adjusted[n].get(c, math.nan)
            holds = _holds_after_holm(verdict, adj)
            if holds is False:
                verdict = f"{verdict} (not after Holm)"
            elif holds:
                verdict = f"**{verdict}**"
            cells += [
                value,
                verdict,
                f"{_p(raw)} ({_p(adj)})" if table_cells.finite(raw) else table_cells.DASH,
            ]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    families = {claim_family(c) for c in claims_order} - {"Table II"}
    order = sorted(families, key=lambda f: (f != "main comparison", f))
    sizes = "; ".join(
        f"{n}: "
        + ", ".join(
            f"{f} "
            f"{sum(1 for c in all_rows[n] if claim_family(c) == f and table_cells.finite(adjusted[n][c]))}"
            for f in order
        )
        for n in names
    )
    lines.append(
        "\nThe mDSQ rows quote the paper's gain at one labeled fraction (80 %); their cells are "
        "the gain averaged over cycles 1-5 in the same trials (one paired number per trial, "
        "so that the test is over trials), "
        "whose sign each verdict tests; each dataset's main comparison also gives the gains at "
        "80 % alone. The Table I rows are likewise the difference of two settings averaged "
        "over cycles 1-5 in the same trials.\n"
        "\np: the two-sided p-value of the test behind the interval (t test over trials; for "
        "Fig. 6 a t test over the models when it ran on every trial's cycle-0 model, as the "
        "cells say, else a bootstrap over one model's images), in brackets adjusted by Holm's method within its "
        "family of claims (the main comparison; each S_cls mode of Table I; Fig. 6), which "
        "keeps the chance of any false verdict in a family at 5 % however many claims it "
        f"tests (tests per family: {sizes}). A verdict marked (not after Holm) excludes 0 "
        "at 95 % alone but not once the other claims of its family are accounted for: read "
        "it as suggestive. The row ours >= CALD in mAP tests ours above CALD in mAP averaged "
        'over cycles 1-5; its "on par" is what a verdict of not distinguishable reads, within '
        "the interval's width. The paper's \"later\" is the next row: the same gain after "
        "the last cycle alone. The LL4AL > random row tests the mDSQ gain; "
        "the paper states that claim as label efficiency, which the label efficiency "
        "sections read. In the label-savings rows, a curve that never reaches the level within "
        "the run reaches it somewhere between its last labeled fraction and 100 %: the rows "
        "read both ends, the one least favourable to the strategy (the cell) and the most "
        "favourable (unreached trials at best), and a verdict needs both (the label "
        "efficiency sections).\n"
    )
    return "\n".join(lines) + "\n"
