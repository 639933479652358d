"""Table I of the paper (the scores alone and combined, Sec. IV-E) on the results page: its
rows for both S_cls modes beside the paper's, and its paired claims.
"""

from __future__ import annotations

import numpy as np

from docs.results_lib import power, table_cells
from mtal_jax import paired, significance

# Paper (nuImages): Table I (mDSQ in % at 50 / 70 / 90 % labeled, by (w_loc, w_cls, w_seg)).
PAPER_TABLE1 = {
    (1, 0, 0): (86.9, 94.0, 96.4), (0, 1, 0): (86.5, 93.5, 96.6), (0, 0, 1): (87.1, 94.4, 96.9),
    (1, 1, 0): (87.4, 93.7, 96.6), (0, 1, 1): (87.0, 95.0, 97.0), (1, 0, 1): (87.7, 94.6, 97.5),
    (1, 1, 1): (88.0, 95.6, 97.3),
}  # fmt: skip
SETTING_NAMES = {(1, 0, 0): "S_loc", (0, 1, 0): "S_cls", (0, 0, 1): "S_seg",
                 (1, 1, 0): "S_loc + S_cls", (0, 1, 1): "S_cls + S_seg",
                 (1, 0, 1): "S_loc + S_seg", (1, 1, 1): "all three"}  # fmt: skip


def table1_settings(config):
    """{name: (weights tuple, S_cls mode)} of the ``ours`` aliases of a Table I config."""
    out = {}
    for name, kw in (config or {}).get("al", {}).get("strategy", {}).get("kwargs", {}).items():
        if kw.get("base", name) == "ours":
            w = tuple(int(x) for x in kw.get("weights", (1, 1, 1)))
            out[name] = (w, kw.get("cls_divergence", "js"))
    order = list(SETTING_NAMES)  # rows by mode, then in the paper's order
    rank = lambda item: (item[1][1], order.index(item[1][0]) if item[1][0] in order else 99)
    return dict(sorted(out.items(), key=rank))


def copied_settings(config):
    """Names of the Table I settings whose runs are copies of another setting's in the same
    trial (``share.share_within``): without S_cls (w_cls = 0) the divergence enters no score,
    so a kl setting selects exactly what the js setting of the same weights selects."""
    settings = table1_settings(config)
    js = {w for w, mode in settings.values() if mode == "js"}
    return [n for n, (w, mode) in settings.items() if mode != "js" and w[1] == 0 and w in js]


def table1_section(records, config):
    """Table I for both S_cls modes, with the paper's row, and its claims."""
    settings = table1_settings(config)
    lines = [
        (
            "| S_cls mode | setting | trials | mDSQ 50 % | mDSQ 70 % | mDSQ 90 % | gain over "
            "random [95 % CI] | paper 50 / 70 / 90 % |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    has_random = any(r["strategy"] == "random" for r in records)
    last = max((r["cycle"] for r in records), default=0)
    for name, (w, mode) in settings.items():
        cycles = {}
        for r in records:
            if r["strategy"] == name:
                cycles.setdefault(r["trial"], set()).add(r["cycle"])
        done = {t for t, c in cycles.items() if set(range(1, last + 1)) <= c}
        trials = f"{len(done)}" + (
            f" (+{len(cycles) - len(done)} running)" if len(cycles) > len(done) else ""
        )
        finished = [r for r in records if r["strategy"] != name or r["trial"] in done]
        cells = [
            table_cells.mean_std(table_cells.interp(finished, name, f)) for f in (0.5, 0.7, 0.9)
        ]
        gain = (
            significance.format_interval(paired.paired_gain(records, name))
            if has_random
            else table_cells.DASH
        )
        ref = " / ".join(f"{v:.1f}" for v in PAPER_TABLE1.get(w, ())) or table_cells.DASH
        label = SETTING_NAMES.get(w, str(w))
        lines.append(
            f"| {mode} | {label} | {trials} | " + " | ".join(cells) + f" | {gain} | {ref} |"
        )
    rows = {}
    power_rows = []
    copied = set(copied_settings(config))
    for mode in sorted({m for _, m in settings.values()}):
        by_w = {w: n for n, (w, m) in settings.items() if m == mode}
        tests = [((0, 0, 1), (1, 0, 0), "S_seg > S_loc (S_seg best single score)"),
                 ((0, 0, 1), (0, 1, 0), "S_seg > S_cls (S_seg best single score)")]  # fmt: skip
        tests += [((1, 1, 1), w, f"all three > {SETTING_NAMES[w]}") for w in SETTING_NAMES
                  if w != (1, 1, 1)]  # fmt: skip
        for a, b, text in tests:
            if a in by_w and b in by_w and {by_w[a], by_w[b]} <= copied:
                # both settings copy the js runs: the js row's test again, not a second one
                rows[f"Table I ({mode}): {text}"] = (
                    "the js row's test (without S_cls both settings copy the js runs)",
                    "same test as js",
                )
            elif a in by_w and b in by_w:
                g = paired.paired_gain(records, by_w[a], by_w[b])
                power_rows.append(
                    (f"{mode}: {SETTING_NAMES[a]} - {SETTING_NAMES[b]}",
                     [t["mdsq"] for t in g["per_trial"]], paper_difference(a, b))
                )  # fmt: skip
                rows[f"Table I ({mode}): {text}"] = (
                    (
                        f"{significance.format_interval(g)} (n={g['trials']})",
                        table_cells.verdict(g),
                        g["p_value"],
                    )
                    if g["trials"]
                    else (table_cells.DASH, "no finished trial yet")
                )
    body = power.table(power_rows)
    if body:
        lines.append(
            "\nWhat these trials can detect (as under the main comparison): per claim of the "
            "table, the spread of its per-trial mDSQ gains, the gain a paired t test over them "
            "detects with 80 % power, and the trials the paper's difference between the two "
            "settings would need (the mean of its Table I differences at 50, 70 and 90 % "
            "labeled, in mDSQ points; the gains here are means over cycles 1-5, the same "
            "range):\n"
        )
        lines.append(body)
    return "\n".join(lines) + "\n", rows


def paper_difference(a, b):
    """The paper's mDSQ difference between Table I settings ``a`` and ``b`` (weight tuples):
    the mean of its differences at 50, 70 and 90 % labeled, in mDSQ points (0-1)."""
    return float(np.mean(np.subtract(PAPER_TABLE1[a], PAPER_TABLE1[b]))) / 100
