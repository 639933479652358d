"""The main comparison (paper Sec. IV-D) on the results page: the run's progress, the
paired table against random, label efficiency at 95 % of the reference mDSQ, the labels to
reach random's final mDSQ, and the paper's claims with their verdicts (``mtal_jax.paired``).
"""

from __future__ import annotations

import math

import numpy as np

from docs.results_lib import power, run_dirs, table_cells
from mtal_jax import paired, significance

# Paper (nuImages): label efficiency at 95 % of the fully trained mDSQ (Sec. IV-D).
PAPER_LE95 = {"ours": 0.67, "ll4al": 0.74, "random": 0.87}
# Main-comparison claims (Sec. IV-D): (strategy, baseline, metric, paper's statement).
MATCH_FINAL_CLAIM = (
    "ours needs fewer labels than random to reach random's final mDSQ in the same trial "
    "(the paper's label savings, 20 pp at 95 %, at a level both reach)"
)
LE95_CLAIM = "ours reaches 95 % of the reference mDSQ with fewer labels than random (67 % vs 87 %)"
CLAIMS = [
    ("ours", "random", "mdsq", "ours > random in mDSQ (+3.39 % at 80 % labeled)"),
    ("ours", "ll4al", "mdsq", "ours > LL4AL in mDSQ (+1.07 % at 80 % labeled)"),
    (
        "ll4al",
        "random",
        "mdsq",
        "LL4AL > random in mDSQ (the paper: 95 % reached at 74 % labeled, random at 87 %)",
    ),
    ("ours", "cald", "mdsq", "ours > CALD in mDSQ (outperforms all baselines)"),
    ("ours", "equal", "mdsq", "ours > EquAL in mDSQ"),
    ("ours", "alternation", "mdsq", "ours > Alternation in mDSQ"),
    ("ours", "cdal", "mdsq", "ours > CDAL in mDSQ"),
    ("ll4al", "alternation", "mdsq", "multi-task LL4AL > Alternation of single-task scores"),
    ("ours", "equal", "miou", "ours > EquAL in mIoU (segmentation)"),
    ("ours", "cald", "map", "ours >= CALD in mAP (on par, better later)"),
]
# The paper's "better later" of ours against CALD in mAP, read after the last cycle alone.
LATER_CLAIM = 'ours > CALD in mAP after the last cycle (the paper\'s "better later")'


def run_status(records, config, pace=None):
    """One line: how many (trial, strategy) runs of the main run have all their cycles, out
    of those its config plans, and (given ``pace``, ``run_dirs.pace``) about how long the
    cycle runs left, and the cycle-0 models of the trials not started, take at the median
    and at the 90th-percentile pace so far; "" when the run is complete or its config
    unknown."""
    al = (config or {}).get("al", {})
    planned = run_dirs.planned_trials(al)
    if not planned:
        return ""
    names = list(planned)
    last = int(al["num_cycles"]) - 1
    done = {s: len({r["trial"] for r in records if r["strategy"] == s and r["cycle"] == last})
            for s in names}  # fmt: skip
    if done == planned:
        return ""
    parts = ", ".join(f"{s} {done[s]}/{planned[s]}" for s in names)
    left = sum(
        planned[s] * last - sum(1 for r in records if r["strategy"] == s and r["cycle"] >= 1)
        for s in names
    )
    started = {r["trial"] for r in records if r["cycle"] == 0}
    work = [(left, (pace or {}).get("cycle"), "cycle run")]
    if pace and "cycle_0" in pace:
        not_started = [t for t in range(max(planned.values())) if t not in started]
        work.append((len(not_started), pace["cycle_0"], "cycle-0 model"))
    work = [(n, p, what) for n, p, what in work if n > 0]
    timed = [(n, p, what) for n, p, what in work if p is not None and table_cells.finite(p[0])]
    untimed = [(n, what) for n, p, what in work if (n, p, what) not in timed]
    eta = ""
    if timed:
        counts = " and ".join(f"{n} {what}{'s' * (n != 1)}" for n, _, what in timed)
        paces = ", ".join(f"{p[0] / 60:.1f} min per {what}" for _, p, what in timed)
        median, slow = (sum(n * p[k] for n, p, _ in timed) for k in (0, 1))
        more = "".join(
            f", plus {n} {what}{'s' * (n != 1)} (none trained here yet: not timed)"
            for n, what in untimed
        )
        eta = (
            f" {counts} {'are' if len(timed) > 1 or timed[0][0] != 1 else 'is'} left{more}: "
            f"about {table_cells.hours(median)} at the median pace so far ({paces}), "
            f"{table_cells.hours(slow)} at the 90th percentile's (this machine, as shared "
            "while it ran; the machine differs between sessions, `docs/benchmarks.md`)."
        )
    return (
        f"**In progress**: {sum(done.values())} of {sum(planned.values())} (trial, strategy) "
        f"runs have all {last} cycles ({parts}).{eta} The tables below use what exists; gains "
        "and verdicts use the trials in which both strategies finished, and change as the run "
        "continues (the same command resumes it).\n"
    )


def main_table(records, pairs):
    """Per strategy: trials, mDSQ at 50 / 70 / 90 %, paired gains over random."""
    names = list(dict.fromkeys(r["strategy"] for r in records))
    lines = [
        (
            "| strategy | trials | mDSQ 50 % | mDSQ 70 % | mDSQ 90 % | mDSQ gain over random "
            "[95 % CI] | mAP gain | mIoU gain | vs random |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    # Holm over this column's comparisons (every strategy against random), as the
    # side-by-side adjusts its families: "better" alone excludes 0 at 95 %, "(not after
    # Holm)" marks one that does not survive the adjustment
    adjusted = significance.holm({s: pairs[s].get("p_value") for s in names if pairs.get(s)})
    for s in names:
        trials = len({r["trial"] for r in records if r["strategy"] == s})
        cells = [table_cells.mean_std(table_cells.interp(records, s, f)) for f in (0.5, 0.7, 0.9)]
        p = pairs.get(s)
        if p is None:
            gains, reading = ["(baseline)", table_cells.DASH, table_cells.DASH], table_cells.DASH
        else:
            gains = [significance.format_interval(p), significance.format_interval(p["map"], 4),
                     significance.format_interval(p["miou"], 4)]  # fmt: skip
            v = table_cells.verdict(p)
            reading = {significance.REPRODUCED: "better", significance.CONTRADICTED: "worse"}.get(
                v, "n.s."
            )
            if reading != "n.s." and not adjusted.get(s, math.nan) < 0.05:
                reading += " (not after Holm)"
            reading += f" (n={p['trials']}"
            if p["incomplete_trials"]:  # a resumable run still in progress
                reading += f"; {len(p['incomplete_trials'])} trial(s) still running"
            reading += ")"
        lines.append(f"| {s} | {trials} | " + " | ".join(cells + gains) + f" | {reading} |")
    note = (
        "\nvs random: better / worse when the mDSQ gain's 95 % interval excludes 0, n.s. "
        "otherwise; (not after Holm) when it does not once the column's "
        f"{len(adjusted)} tests against random are adjusted together (Holm's method).\n"
    )
    counts = {len({r["trial"] for r in records if r["strategy"] == s}) for s in names}
    cells_note = (
        "\nmDSQ at 50 / 70 / 90 %: mean ± SD over the row's trials (linear between cycles). "
        + (
            "Rows with fewer trials average fewer trials (the first ones), so these cells "
            "do not compare across rows; the gain columns do: each pairs a strategy with "
            "random in the same trials.\n"
            if len(counts) > 1
            else "The gain columns pair each strategy with random in the same trials.\n"
        )
    )
    return "\n".join(lines) + "\n" + (note if adjusted else "") + cells_note


def le_table(summaries, pairs):
    """Label efficiency at 95 % of the reference mDSQ, with the paper's values."""
    lines = [
        (
            "| strategy | trials reaching 95 % | labeled fraction (mean curve) | savings vs "
            "random (mean curves) | paired savings per trial [95 % CI] (trials where either "
            "reaches 95 %) | paper (nuImages) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for s, summ in summaries.items():
        le = pairs.get(s, {}).get("le95")
        own = 0.0 if table_cells.finite(summ.le95_mean_curve) else math.nan
        savings = le["savings_mean_curve"] if le else (own if s == "random" else math.nan)
        per = table_cells.DASH
        if le and le["bounded"]["worst"]["trials"]:
            b = le["bounded"]
            per = f"{significance.format_bounded(b['worst'], b['best'])} (n={b['worst']['trials']})"
        paper_le = table_cells.pct(PAPER_LE95[s], 0) if s in PAPER_LE95 else table_cells.DASH
        lines.append(
            f"| {s} | {summ.le95_trials_reached}/{summ.le95_trials_known}"
            + (
                f" (+{len(summ.trials) - summ.le95_trials_known} running)"
                if summ.le95_trials_known < len(summ.trials)
                else ""
            )
            + " | "
            f"{table_cells.pct(summ.le95_mean_curve)} | "
            f"{f'{100 * savings:+.1f} pp' if table_cells.finite(savings) else table_cells.DASH} | "
            f"{per} | {paper_le} |"
        )
    return "\n".join(lines) + "\n"


# The paper's mDSQ gains at 80 % labeled (nuImages, Sec. IV-D), read as mDSQ points on the
# page's 0-1 scale (as relative gains of an mDSQ near 0.9 they are a tenth smaller).
PAPER_GAINS_AT_80 = {("ours", "random"): 0.0339, ("ours", "ll4al"): 0.0107}


def _at_fraction(records, fraction):
    """(cycle, records) of the cycle labeling about ``fraction`` (within 2 pp; the closest),
    that cycle renumbered 1 beside cycle 0, so that ``paired.paired_gain(..., last_cycle=1)``
    reads it alone; (None, []) when no cycle does."""
    by_cycle = {}
    for r in records:
        by_cycle.setdefault(r["cycle"], []).append(r["labeled_fraction"])
    distance = {c: abs(float(np.mean(f)) - fraction) for c, f in by_cycle.items() if c}
    near = [c for c, d in distance.items() if d < 0.02]
    if not near:
        return None, []
    cycle = min(near, key=distance.get)
    return cycle, one_cycle(records, cycle)


def one_cycle(records, cycle):
    """``records`` of cycle 0 and ``cycle``, that cycle renumbered 1, so that
    ``paired.paired_gain(..., last_cycle=1)`` reads it alone."""
    return [
        dict(r, cycle=1) if r["cycle"] == cycle else r for r in records if r["cycle"] in (0, cycle)
    ]


def gains_at(records, fraction=0.8, pairs=(("ours", "random"), ("ours", "ll4al"))):
    """One sentence: the paired mDSQ gains at the cycle labeling ``fraction`` alone (the
    paper quotes its gains at 80 %), beside the mean over cycles the claims test; "" when no
    cycle labels about ``fraction`` (within 2 pp) or no pair ran."""
    cycle, one = _at_fraction(records, fraction)
    if cycle is None:
        return ""
    names = {r["strategy"] for r in records}
    parts = []
    for a, b in pairs:
        if a in names and b in names:
            g = paired.paired_gain(one, a, b, last_cycle=1)
            if g["trials"]:
                parts.append(
                    f"{a} - {b} {significance.format_interval(g)} (n={g['trials']}, "
                    f"{significance.verdict(g['ci95'])})"
                )
    if not parts:
        return ""
    return (
        f"At {100 * fraction:.0f} % labeled alone (cycle {cycle}; the paper quotes its mDSQ gains "
        "there), the paired mDSQ gains are: " + "; ".join(parts) + ". The side-by-side tests "
        "the mean over cycles 1-5, which is less noisy.\n"
    )


def power_table(records, pairs):
    """What the main comparison's trials can detect: per comparison, the spread of its
    per-trial mDSQ gains, the smallest true gain a paired t test over these trials detects
    with 80 % power, and, at 80 % labeled, the trials that the paper's gain would need
    (``power.table``); "" without a comparison of two or more trials."""
    names = {r["strategy"] for r in records}
    rows = []  # (label, per-trial gains, paper's gain or None); ours first
    cycles = ""
    for s in sorted(pairs, key=lambda name: name != "ours"):
        cycles = _cycles_text(pairs[s].get("cycles", ()))
        gains = [t["mdsq"] for t in pairs[s].get("per_trial", ())]
        rows.append((f"{s} - random, {cycles}", gains, None))
    if "ll4al" in names and "ours" in names:
        g = paired.paired_gain(records, "ours", "ll4al")
        rows.append(
            (f"ours - ll4al, {_cycles_text(g['cycles'])}", [t["mdsq"] for t in g["per_trial"]],
             None)
        )  # fmt: skip
    cycle, one = _at_fraction(records, 0.8)
    quoted = 0
    for (a, b), paper_gain in PAPER_GAINS_AT_80.items():
        if cycle is not None and a in names and b in names:
            g = paired.paired_gain(one, a, b, last_cycle=1)
            quoted += 1
            rows.append(
                (f"{a} - {b}, 80 % labeled (cycle {cycle})", [t["mdsq"] for t in g["per_trial"]],
                 paper_gain)
            )  # fmt: skip
    body = power.table(rows)
    if not body:
        return ""
    tail = ""
    if "ours" in pairs:  # the claims' measure, at the size of the paper's gain over random
        ours = [x for x in rows[0][1] if math.isfinite(x)]
        paper_gain = PAPER_GAINS_AT_80[("ours", "random")]
        needed = power.needed_text(paper_gain, ours)
        if needed != table_cells.DASH:
            tail = (
                f"\nA gain of the paper's size over random ({paper_gain:+.4f}) in the claims' "
                f"measure (the mean over {cycles}, less noisy than one cycle) would need "
                f"{needed} trials for 80 % power at the spread measured here (these: "
                f"{len(ours)}).\n"
            )
    quotes = {0: "", 1: "For the paper's quoted gain", 2: "For the paper's two quoted gains"}
    head = (
        "\nWhat these trials can detect: a paired t test over the per-trial gains (two-sided, "
        "5 %, each claim alone: before Holm's adjustment) detects a true gain with 80 % "
        "probability when it is at least the size below, given the spread of the gains "
        "across trials (their standard deviation, itself estimated from few trials, so the "
        'sizes are rough). A verdict "not distinguishable from noise" thus says little about '
        "gains smaller than that. Each row uses the trials in which both strategies have "
        "finished the cycles it reads, so a row at one cycle can count a trial still running."
        + (
            f" {quotes[min(quoted, 2)]} (at 80 % labeled, on nuImages; read as mDSQ points), "
            "the trials a test at that cycle would need:"
            if quoted
            else ""
        )
        + "\n\n"
    )
    return head + body + tail


def _cycles_text(cycles):
    """``[1, ..., K]`` as "cycles 1-K" (the paired gains' cycles)."""
    cycles = list(cycles)
    if not cycles:
        return "no cycle"
    return f"cycle {cycles[0]}" if len(cycles) == 1 else f"cycles {cycles[0]}-{cycles[-1]}"


def claims(records, summaries):
    """{claim: (cell text, verdict)} of the main comparison, from paired intervals."""
    names = {r["strategy"] for r in records}
    out = {}
    for a, b, metric, text in CLAIMS:
        if a not in names or b not in names:
            out[text] = (table_cells.DASH, "not run")
            continue
        g = paired.paired_gain(records, a, b)
        stats = g if metric == "mdsq" else g[metric]
        if not stats["trials"]:  # started, but no trial has every cycle of both yet
            out[text] = (table_cells.DASH, "no finished trial yet")
            continue
        digits = 3 if metric == "mdsq" else 4
        cell = f"{significance.format_interval(stats, digits)} (n={stats['trials']})"
        out[text] = (cell, table_cells.verdict(stats), stats["p_value"])
    last = max((r["cycle"] for r in records), default=0)
    if last > 1 and {"ours", "cald"} <= names:
        g = paired.paired_gain(one_cycle(records, last), "ours", "cald", last_cycle=1)["map"]
        out[LATER_CLAIM] = (
            (
                f"{significance.format_interval(g, 4)} (n={g['trials']}; cycle {last})",
                table_cells.verdict(g),
                g["p_value"],
            )
            if g["trials"]
            else (table_cells.DASH, "no finished trial yet")
        )
    text = LE95_CLAIM
    if "ours" in summaries and "random" in summaries:
        le = paired.label_efficiency_savings(summaries, "ours")
        bounded = le["bounded"]
        running = set(le["incomplete_trials"])  # not counted: their curves are not done

        def reaches(s):
            done = [(t, x) for t, x in zip(s.trials, s.le95_per_trial) if t not in running]
            return f"{sum(math.isfinite(x) for _, x in done)}/{len(done)}"

        reached = (
            f"ours reaches it in {reaches(summaries['ours'])}, random in "
            f"{reaches(summaries['random'])}"
        )
        finished = len(summaries["ours"].trials) - len(running & set(summaries["ours"].trials))
        if bounded["worst"]["trials"]:
            cell = f"{significance.format_bounded(bounded['worst'], bounded['best'])} ({reached})"
            out[text] = (cell, *significance.bounded_verdict(bounded["worst"], bounded["best"]))
        elif not finished:
            out[text] = (table_cells.DASH, "no finished trial yet")
        else:
            out[text] = (f"95 % not reached in any trial ({reached})", "not testable")
    if "ours" in names and "random" in names:
        m = paired.match_final_savings(records, "ours")
        cell = table_cells.DASH
        if m["trials"]:
            cell = (
                f"{significance.format_bounded(m, m['best_case'])} (n={m['trials']}; reached in "
                f"{m['reached']}/{m['compared']})"
            )
        out[MATCH_FINAL_CLAIM] = (
            (cell, *significance.bounded_verdict(m, m["best_case"]))
            if m["trials"]
            else (cell, "not run")
        )
    return out


def match_final_table(summaries, pairs):
    """Labels to reach random's final mDSQ: per trial (paired) and on the mean curves."""
    lines = [
        (
            "| strategy | trials compared | reaches it | labeled fraction (mean over the trials "
            "reaching it) | random's (same trials) | paired savings [95 % CI] | mean curves: "
            "fraction | mean curves: savings |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, summ in summaries.items():
        m = pairs.get(s, {}).get("match_final")
        reach = summ.reach_random_final
        curve = f"{table_cells.pct(reach)} | " + (
            f"{100 * summ.savings_at_random_final:+.1f} pp"
            if table_cells.finite(summ.savings_at_random_final)
            else table_cells.DASH
        )
        if s == "random" or not m or not m["compared"]:
            lines.append(
                f"| {s} | {table_cells.DASH} | {table_cells.DASH} | {table_cells.DASH} | "
                f"{table_cells.DASH} | {table_cells.DASH} | {curve} |"
            )
            continue
        per = m["per_trial"]
        mine = [p["fraction"] for p in per if table_cells.finite(p["fraction"])]
        theirs = [p["baseline_fraction"] for p in per if table_cells.finite(p["fraction"])]
        # (fraction columns: over the trials where it reaches it; savings: all compared)
        mean = lambda v: table_cells.pct(sum(v) / len(v)) if v else table_cells.DASH
        savings = (
            significance.format_bounded(m, m["best_case"]) if m["trials"] else table_cells.DASH
        )
        lines.append(
            f"| {s} | {m['compared']} | {m['reached']}/{m['compared']} | {mean(mine)} | "
            f"{mean(theirs)} | {savings} | {curve} |"
        )
    return "\n".join(lines) + "\n"
