"""Experiments beyond the paper on the results page (``VARIANTS``): ``balanced`` (ours with
weights that give its three terms one spread) and ``native`` (BoxMask crops at the
objects' own scale; docs/design.md, "Crop windows"), each against random and ours in the
same trials.
"""

from __future__ import annotations

import os

from docs.results_lib import main_comparison, page_files, run_dirs, table_cells
from mtal_jax import jsonio, paired, significance

COMPARISONS = "comparisons.json"  # the paired gains of a variant, for the page's summary
GAIN_FIELDS = ("mean", "ci95", "trials", "p_value", "reading")  # reading: Holm-marked

VARIANTS = {  # preset: (its strategy, heading, what it is and why, in words)
    "balanced": (
        "ours_balanced",
        "ours with balanced weights",
        lambda kwargs: (
            'Not a claim of the paper. Its sum lets S_loc decide `ours` ("What the `ours` '
            'score is made of"), while Fig. 6 finds S_seg, not S_loc, correlated with the '
            "training losses (S_loc measures the localization error of its own boxes). "
            "`ours_balanced` weights the three terms by the inverse of their per-image "
            "SD on the main comparison's pools"
            + (
                f" (w_loc, w_cls, w_seg = {', '.join(f'{w:g}' for w in kwargs['weights'])})"
                if kwargs.get("weights")
                else ""
            )
            + ", so that they have one spread; it runs beside random and ours in the same "
            "trials (`configs/default.py`, `BALANCED_WEIGHTS`).\n"
        ),
    ),
    "native": (
        "ours_native",
        "ours with BoxMask crops at the objects' own scale",
        lambda kwargs: (
            'Not a claim of the paper, whose BoxMask begins by "cropping a region of the '
            'image around the detected box" (Sec. III-C) without saying at which scale. The '
            "library's default crops (the box and its margin resized to 64 x 64, the "
            "specified contract) stretch thin boxes and magnify small ones, and on the "
            "reference models every CamVid pedestrian and bicyclist BoxMask comes out empty "
            "(Table II below; S_loc = 1 by definition). `ours_native` crops squares of at "
            'least 64 input pixels around each box (`crop_window="native"`, '
            'docs/design.md, "Crop windows"): on the same reference models the empty '
            "pedestrian BoxMasks fall from 100 % to 9 % (CamVid) and from 74 % to 15 % "
            "(synthetic). It runs beside random and ours in the same trials.\n"
        ),
    ),
}

# Datasets whose images are letterboxed into the network input: there, the experiments
# started after the scores came to read only the image (2026-12-04/05) score slightly
# differently from the main comparison's `ours`, trained before (docs/design.md, "Content only").
CONTENT_ONLY_NOTE = {
    "camvid": (
        "Its runs were trained after two changes to the scores (2026-12-04/05; "
        'docs/design.md, "Content only"): they read only the image, not the padding that '
        "letterboxes it, and the BoxMask crop windows stay inside the image; the main "
        "comparison's `ours` was trained before both. Measured on trial 0's cycle-0 model "
        "over its 367 training images, the two changes together kept the ranking (Spearman "
        "0.9995) and 35 of the 36 images of its top 10 %: the comparison against `ours` "
        "includes this small difference.\n"
    ),
}


def comparison_reading(gain):
    """A paired gain beyond the paper's claims in words: "better" or "worse" when its 95 %
    interval excludes 0, "not distinguishable from noise" when it does not, and
    ``table_cells.verdict``'s "one trial: no test" without an interval."""
    verdict = table_cells.verdict(gain)
    words = {significance.REPRODUCED: "better", significance.CONTRADICTED: "worse"}
    if verdict in words or verdict == significance.NOT_DISTINGUISHABLE:
        return words.get(verdict, "not distinguishable from noise")
    return verdict


def balanced_section(name, run, results_dir, link_root="results", preset="balanced"):
    """The subsection of a ``VARIANTS`` experiment (``balanced`` or ``native``; not a claim
    of the paper): its strategy against random and against ours in the same trials;
    writes ``<results_dir>/<name>_<preset>/`` (with ``comparisons.json``: the three paired
    gains and the strategy's S_loc variance share, read by ``score_makeup.makeup_summary``).
    Returns markdown (a run not started yet: its command)."""
    from mtal_jax.al import diagnostics

    strategy, heading, describe = VARIANTS[preset]
    records, config, seconds = run_dirs.load_run(run)
    _, cfg, main_run, _ = run_dirs.DATASETS.get(name, (name, "configs/<config>.py", "", ""))
    planned = config
    if planned is None and os.path.exists(
        os.path.join(run_dirs.M, cfg)
    ):  # not started: the preset's
        from mtal_jax import config_file

        planned = config_file.load(f"{os.path.join(run_dirs.M, cfg)}:{preset}").to_dict()
        planned["al"]["share_from"] = main_run
    kwargs = (((planned or {}).get("al") or {}).get("strategy") or {}).get("kwargs") or {}
    source = ((planned or {}).get("al") or {}).get("share_from", "")
    shared = f" --config.al.share_from={source}" if source else ""
    command = f"`python train.py --config {cfg}:{preset} --workdir {run_dirs.shown(run)}{shared}`"
    out = [f"\n### Beyond the paper: {heading}\n", describe(kwargs.get(strategy) or {})]
    if not records:
        stale = os.path.join(results_dir, f"{name}_{preset}", COMPARISONS)
        if os.path.exists(stale):  # from a build whose run had records: not this one's
            os.remove(stale)
        out.append(run_dirs.command_not_run(command, run))
        return "\n".join(out)
    page_files.write_records(
        records, os.path.join(results_dir, f"{name}_{preset}"), run_dirs.last_cycle(config)
    )
    if name in CONTENT_ONLY_NOTE:
        out.append(CONTENT_ONLY_NOTE[name])
    out += [
        main_comparison.run_status(records, config, run_dirs.pace(run, cycle_0=False)),
        (
            f"Command: {command}; wall time {table_cells.hours(seconds)} (runs trained here; "
            f"{run_dirs.WALL_NOTE}). "
            f"{len(records)} records (`docs/results/{name}_{preset}/`).\n"
        ),
        "| comparison | trials | mDSQ gain [95 % CI] | p | mAP gain | mIoU gain | reading |",
        "|---|---|---|---|---|---|---|",
    ]
    pairs = ((strategy, "random"), (strategy, "ours"), ("ours", "random"))
    gains = {f"{a} vs {b}": paired.paired_gain(records, a, b) for a, b in pairs}
    # Holm over this table's own tests (the new strategy against random and against ours),
    # as over each family of the side-by-side; ours vs random is the main comparison's test
    # on its copied runs, adjusted in that family, not a second time here
    own = [f"{strategy} vs random", f"{strategy} vs ours"]
    adjusted = significance.holm({k: gains[k].get("p_value") for k in own})
    tests = sum(1 for k in own if table_cells.finite(gains[k].get("p_value")))
    marked = 0
    for a, b in pairs:
        key = f"{a} vs {b}"
        g = gains[key]
        reading = comparison_reading(g) if g["trials"] else "no finished trial yet"
        if key in own and reading in ("better", "worse") and not adjusted[key] < 0.05:
            reading += " (not after Holm)"
            marked += 1
        g["reading"] = reading
        out.append(
            f"| {key} | {g['trials']} | {significance.format_interval(g)} | "
            f"{significance.format_p(g['p_value'])} | {significance.format_interval(g['map'], 4)} | "
            f"{significance.format_interval(g['miou'], 4)} | {reading} |"
        )
    if tests:
        out.append(
            "\nEach reading tests its interval at 95 %. "
            + (
                f"One marked (not after Holm) does not exclude 0 once the table's {tests} "
                f"test{'s' * (tests != 1)} of {strategy} are adjusted together (Holm's method, "
                "as in the side-by-side): read it as suggestive."
                if marked
                else f"With the table's {tests} test{'s' * (tests != 1)} of {strategy} "
                "adjusted together (Holm's method, as in the side-by-side), no reading "
                "changes."
            )
            + " The last row is the main comparison's test (its runs are copied), adjusted "
            "in the side-by-side's family.\n"
        )
    made = diagnostics.aggregate([e for e in diagnostics.collect(run) if e["strategy"] == strategy])
    components = (made.get(strategy) or {}).get("components") or {}
    jsonio.write_atomic(
        os.path.join(results_dir, f"{name}_{preset}", COMPARISONS),
        {
            "strategy": strategy,
            "gains": {k: {f: g.get(f) for f in GAIN_FIELDS} for k, g in gains.items()},
            "s_loc_share": (components.get("S_loc") or {}).get("variance_share"),
        },
    )
    if made:
        out += ["", "Its score make-up (as in \"What the `ours` score is made of\"):\n",
                diagnostics.aggregate_markdown(made)]  # fmt: skip
    out.append(f"\n![mDSQ]({link_root}/{name}_{preset}/mdsq.png)\n")
    return "\n".join(out)
