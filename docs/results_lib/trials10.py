"""The ``trials10`` experiment on the results page: ours against random over more trials
than the main comparison (paper Sec. IV-D), the main comparison's first trials included.
"""

from __future__ import annotations

import collections
import math
import os

import numpy as np

# FIRST_LOOK: the preset's trials; ``--config.al.num_trials`` above it extends the
# experiment after that first look (docs/design.md, section 6).
from configs.default import TRIALS10 as FIRST_LOOK
from docs.results_lib import main_comparison, page_files, run_dirs, table_cells
from mtal_jax import paired, reporting, significance


def _field(record, name):
    return record[name] if isinstance(record, dict) else getattr(record, name)


def _trial(record):
    return _field(record, "trial")


def _savings(m):
    """The label-savings cell of ``paired.match_final_savings``'s result ``m``."""
    if not m["trials"]:
        return table_cells.DASH
    return (
        f"{significance.format_bounded(m, m['best_case'])} (reached in {m['reached']}/"
        f"{m['compared']})"
    )


def _row(label, gain, savings, verdict):
    """A table row: the gain's trials and mDSQ, mAP and mIoU intervals, then the cells."""
    return (
        f"| {label} | {gain['trials']} | {significance.format_interval(gain)} | "
        f"{significance.format_interval(gain['map'], 4)} | "
        f"{significance.format_interval(gain['miou'], 4)} | {savings} | {verdict} |"
    )


def _looks_paragraph(earlier, planned, gain, savings):
    """The pooled row's p-values adjusted for the planned looks (``earlier`` trial counts,
    then ``planned``): ``significance.over_looks``."""
    looks = len(earlier) + 1
    counts = ", ".join(str(n) for n in [*earlier, planned])
    cells = []
    for what, result in (("mDSQ gain", gain), ("labels to reach random's final mDSQ", savings)):
        if not result.get("trials"):
            continue
        raw = result.get("p_value")
        if "best_case" in result:  # read at both ends of the unreached trials, as the claim is
            _, raw = significance.bounded_verdict(result, result["best_case"])
        p = significance.over_looks(raw, looks)
        if math.isfinite(p) and p < 1 - significance.LEVEL:
            reading = "reproduced after it" if result["mean"] > 0 else "contradicted after it"
        else:
            reading = "not distinguishable from noise after it"
        cells.append(
            f"{what}: p {significance.format_p(raw)}, adjusted "
            f"{significance.format_p(p)} ({reading})"
        )
    if not cells:
        return ""
    interim = (
        f" These are interim readings, at {gain['trials']} of {planned} trials: the "
        "correction is for the test at the planned end."
        if gain["trials"] < planned
        else ""
    )
    return (
        f"\nCorrected for its {looks} looks ({counts} trials, the last as planned; Bonferroni: each look "
        f"tests at {1 - significance.LEVEL:.0%} / {looks}, whatever decided each extension, "
        f"`significance.over_looks`), the last row's claims, each alone (the side-by-side's "
        f"Holm adjustment over the family of claims is another correction, not made here): "
        f"{'; '.join(cells)}.{interim}\n"
    )


def _against_before(per_trial, start, stop):
    """A sentence: the mDSQ gains of trials ``start``..``stop - 1`` against those of the
    trials before ``start`` (``paired.paired_gain``'s ``per_trial``), as two independent
    groups (``significance.welch_interval``); "" with fewer than two trials in either."""
    gains = {p["trial"]: p["mdsq"] for p in per_trial if math.isfinite(p["mdsq"])}
    added = [v for t, v in gains.items() if start <= t < stop]
    first = [v for t, v in gains.items() if t < start]
    diff = significance.welch_interval(added, first)
    if not all(n >= 2 for n in diff["trials"]):
        return ""
    if significance.verdict(diff["ci95"]) == significance.NOT_DISTINGUISHABLE:
        reading = "not distinguishable from chance at this power"
    else:
        reading = (
            "beyond chance at 95 %: the pooled rows average two different readings (candidate "
            "causes: the code that trained the added trials, the machines, chance)"
        )
    return (
        f" Against the trials before them: mean gain {sum(added) / len(added):+.3f} "
        f"({len(added)} trials) against {sum(first) / len(first):+.3f} ({len(first)}), a "
        f"difference of {significance.format_interval(diff)} (Welch's t, p "
        f"{significance.format_p(diff['p_value'])}; `significance.welch_interval`): {reading}."
    )


def _where_it_lies(records, per_trial, start, stop):
    """A sentence: for the trials of ``per_trial`` (those both strategies finished), the
    cycle-0 models' mDSQ and each strategy's mean mDSQ over cycles 1-5, trials
    ``start``..``stop - 1`` against those before ``start`` (Welch); "" with fewer than two
    trials in either group. Says which part of the gains' difference each carries."""
    finished = {p["trial"] for p in per_trial}
    cycle_0, curves = {}, collections.defaultdict(list)
    for r in records:
        trial, cycle, mdsq = (_field(r, k) for k in ("trial", "cycle", "mdsq"))
        if trial not in finished or not math.isfinite(mdsq):
            continue
        if cycle == 0:
            cycle_0[trial] = mdsq
        else:
            curves[(_field(r, "strategy"), trial)].append(mdsq)
    parts = [("the cycle-0 models", cycle_0)]
    for strategy in ("random", "ours"):
        parts.append(
            (
                f"{strategy} over cycles 1-5",
                {t: float(np.mean(v)) for (s, t), v in curves.items() if s == strategy},
            )
        )
    cells = []
    for what, by_trial in parts:
        added = [v for t, v in by_trial.items() if start <= t < stop]
        first = [v for t, v in by_trial.items() if t < start]
        diff = significance.welch_interval(added, first)
        if not all(n >= 2 for n in diff["trials"]):
            return ""
        cells.append(
            f"{what} {np.mean(added):.3f} against {np.mean(first):.3f}, "
            f"{significance.format_interval(diff)} (p {significance.format_p(diff['p_value'])})"
        )
    return (
        " Where that difference lies (mean mDSQ of the added trials against the trials "
        f"before them, Welch): {'; '.join(cells)}."
    )


CODE_CHECK = "trials10_code_check"


def _code_check(results_dir, link_root):
    """Sentences quoting ``<results_dir>/trials10_code_check/``: today's code rescoring the
    first trials' pools (``rescore.json``, its ``measure.py``) and replaying one recorded
    cycle run (``replay.json``, its ``compare_replays.py``); "" without those files."""
    folder = os.path.join(results_dir, CODE_CHECK)
    rescore = page_files.read_json(os.path.join(folder, "rescore.json"))
    replay = page_files.read_json(os.path.join(folder, "replay.json"))
    if not rescore or not replay:
        return ""
    link = f"[{link_root}/{CODE_CHECK}/]({link_root}/{CODE_CHECK}/README.md)"
    again = sorted(r["selected_again"] for r in rescore)
    budgets = sorted({r["budget"] for r in rescore})
    trials = [r["trial"] for r in rescore]
    spearman = min(r["spearman"] for r in rescore)
    # "as their own code did": ranks agree and at least 90 % of each selection is made again
    alike_scores = spearman >= 0.99 and all(
        r["selected_again"] >= 0.9 * r["budget"] for r in rescore
    )
    out = [
        (
            " Whether the code is the cause, checked on the first trials' archived models "
            f"({link}): today's `ours` scores the first selection's pool of trials "
            f"{', '.join(map(str, trials))} from their cycle-0 models "
            f"{'as their own code did' if alike_scores else 'otherwise than their own code did'}"
            f" (Spearman {spearman:.3f} or more between the recorded and today's scores; "
            f"{again[0]}-{again[-1]} of the {'/'.join(map(str, budgets))} images each trial "
            "selected are selected again)"
        )
    ]
    runs, pairs = replay["runs"], replay["pairs"]
    others = [k for k in runs if k != "recorded"]
    replays = [v for p, v in pairs.items() if "recorded" not in p]
    alike = all(v["losses_equal_to_the_bit"] and v["evaluation_equal"] for v in replays)
    if len(others) >= 2 and alike:
        rec, here = runs["recorded"], runs[others[0]]
        names = " and ".join(k.replace("_", " ") for k in others)
        out.append(
            f"; and on one machine {names} train the recorded run "
            f"`{replay['recorded']}` again to the same bits (every logged loss and the "
            f"evaluation equal: mAP {here['map']:.4f}, mIoU {here['miou']:.4f}), while the run "
            f"recorded on its own session's machine reached mAP {rec['map']:.4f}, mIoU "
            f"{rec['miou']:.4f} from the same model and images: training is bitwise "
            "deterministic on one machine only, so runs trained in other sessions are "
            "different draws"
        )
        if alike_scores:
            out.append(
                ". Neither check finds a part for the code; what is left is the machines (a "
                "different rounding makes a different draw, with no known direction) and "
                "chance (this difference was looked for after the fact, among other splits)"
            )
    return "".join(out) + "."


def extensions(run, planned):
    """The ``al.num_trials`` extensions of ``run`` in force: those up to ``planned`` trials
    (an entry beyond it was written by a run that stopped before its config said so)."""
    from mtal_jax.al.experiment import durable  # lazily: the page builds without flax

    return [
        e
        for e in durable.extensions(run)
        if e["key"] == "al.num_trials" and int(e["to"]) <= planned
    ]


def _provenance(run, trials):
    """(codes, machines): Counters of the ``code`` and of the ``machine`` (formatted by
    ``machine_label``) recorded in the ``wall.json`` of every finished run of ``trials`` in
    ``run`` (None: a file without it, written by a session whose library did not record
    it yet: the code before 2026-12-05 10:10 UTC, the machine before 2026-12-06)."""
    codes, machines = collections.Counter(), collections.Counter()
    for t in trials:
        for root, _, names in os.walk(os.path.join(run, f"trial_{t}")):
            if "wall.json" in names and not run_dirs.is_copied(root, run):
                wall = page_files.read_json(os.path.join(root, "wall.json")) or {}
                codes[wall.get("code")] += 1
                machines[machine_label(wall.get("machine"))] += 1
    return codes, machines


def machine_label(machine):
    """``durable.session_machine()``'s record as one phrase ("AMD EPYC (avx2; family 23
    model 1 stepping 2), cpu x2");
    None for a missing one."""
    if not machine:
        return None
    detail = "; ".join(machine[k] for k in ("isa", "cpuid") if machine.get(k))
    cpu = (machine.get("cpu") or "unknown CPU") + (f" ({detail})" if detail else "")
    return f"{cpu}, {machine.get('device')} x{machine.get('devices')}"


def _counted(counts):
    """Counts as "a: 2 runs; not recorded: 1 run" (None: not recorded), the most frequent
    first, ties by name (not recorded last)."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, str(kv[0])))
    return "; ".join(f"{key or 'not recorded'}: {n} run{'s' * (n != 1)}" for key, n in ordered)


GAIN_PLOT = "gain_by_trials.png"


def gain_plot(per_trial, bounds, paper_gain, path):
    """Writes ``path``: the per-trial mDSQ gains of ours over random (points, in trial
    order) and the mean with its 95 % t interval over the first n trials for every n (the
    interval a look after n trials would have read), with the looks' boundaries
    (``bounds``: trial counts at which the experiment was extended) and the paper's gain.

    Args:
      per_trial: ``paired.paired_gain``'s ``per_trial`` ([{"trial", "mdsq"}], trial order).
      bounds: trial counts of the earlier looks.
      paper_gain: the paper's gain (mDSQ points), a dashed line.
      path: the PNG written (atomically).
    """
    import matplotlib.figure

    from mtal_jax import jsonio

    gains = [t["mdsq"] for t in sorted(per_trial, key=lambda t: t["trial"])]
    n = np.arange(1, len(gains) + 1)
    running = [significance.t_interval(gains[:k]) for k in n]
    fig = matplotlib.figure.Figure(figsize=(5.6, 3.4), dpi=100)
    ax = fig.add_subplot()
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axhline(
        paper_gain,
        color="grey",
        linestyle="--",
        linewidth=1,
        label="the paper's gain (at 80 % labeled)",
    )
    ax.plot(n, gains, "o", ms=4, color="tab:grey", alpha=0.7, label="one trial's gain")
    mean = np.array([r["mean"] for r in running])
    lo, hi = (np.array([r["ci95"][i] for r in running]) for i in (0, 1))
    ax.plot(n, mean, color="tab:blue", label="mean of the first n trials")
    ax.fill_between(n, lo, hi, color="tab:blue", alpha=0.2, label="its 95 % interval")
    for b in bounds:
        if b < len(gains):
            ax.axvline(b + 0.5, color="tab:red", linestyle=":", linewidth=1)
    # the axis spans the gains and the intervals from 3 trials on (with 2, t's 12.7 makes
    # the interval an order of magnitude wider than the rest: it runs off the plot)
    shown = np.concatenate([gains, lo[2:], hi[2:], [0.0, paper_gain]])
    shown = shown[np.isfinite(shown)]
    pad = 0.1 * (shown.max() - shown.min()) or 0.01
    ax.set_ylim(shown.min() - pad, shown.max() + pad)
    ax.set_xlabel("trials (n); dotted: where the experiment was extended after a look")
    ax.set_ylabel("ours - random, mDSQ (cycles 1-5)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    jsonio.write_file_atomic(path, lambda f: fig.savefig(f, format="png"), binary=True)


def command_flag(trials):
    """The ``--config.al.num_trials`` argument of a ``trials10`` command with ``trials``
    trials ("" for the preset's own count)."""
    return f" --config.al.num_trials={trials}" if trials > FIRST_LOOK else ""


def trials10_section(name, run, main_run, main_records, results_dir, link_root="results"):
    """The ``trials10`` experiment's subsection (ours against random over more trials than
    the main comparison) and its claim rows (keys marked with the trial count); writes
    ``<results_dir>/<name>_trials10/``. Returns (markdown, claims). ``main_run``: the main
    comparison it shares its first trials with (``al.share_from`` of a run not started);
    ``link_root``: ``results_dir`` relative to the page (its figure links)."""
    records, config, seconds = run_dirs.load_run(run)
    cfg = run_dirs.DATASETS.get(name, (name, "configs/<config>.py"))[1]
    planned = int(((config or {}).get("al") or {}).get("num_trials", FIRST_LOOK))
    source = (
        ((config or {}).get("al") or {}).get("share_from", "")
        if config
        else run_dirs.shown(main_run)
    )
    shared = f" --config.al.share_from={source}" if source else ""
    extra = command_flag(planned)
    command = (
        f"`python train.py --config {cfg}:trials10 --workdir {run_dirs.shown(run)}{shared}{extra}`"
    )
    # the heading says "planned" until every planned trial has finished (set below)
    out = [f"\n### More trials: ours against random ({planned} trials planned)\n"]
    main_pair = paired.paired_gain(main_records, "ours") if main_records else {"trials": 0}
    if main_pair["trials"]:
        out.append(
            f"The main comparison pairs ours with random in {main_pair['trials']} trials: "
            f"mDSQ gain {significance.format_interval(main_pair)} ({significance.verdict(main_pair['ci95'])}"
            "). The same two strategies over more trials, the main comparison's first trials "
            "included (copied with `al.share_from`, not trained again), narrow the interval "
            "by about the square root of the trial count.\n"
        )
    if not records:
        out.append(run_dirs.command_not_run(command, run))
        return "\n".join(out), {}
    page_files.write_records(
        records, os.path.join(results_dir, f"{name}_trials10"), run_dirs.last_cycle(config)
    )
    g = paired.paired_gain(records, "ours")
    m = paired.match_final_savings(records, "ours")
    if g["trials"] >= planned:
        out[0] = f"\n### More trials: ours against random ({planned} trials)\n"
    # Each extension (``extensions.json``; an experiment extended before they were recorded:
    # the preset's count) follows a look at the trials before it; then the whole.
    added_by = extensions(run, planned)
    bounds = sorted({int(e["from"]) for e in added_by})
    if planned > FIRST_LOOK and (not bounds or bounds[0] > FIRST_LOOK):
        bounds.insert(0, FIRST_LOOK)  # extended before extensions were recorded
    before = [[r for r in records if _trial(r) < b] for b in bounds]
    looks = [paired.paired_gain(part, "ours") for part in before]
    looks.append(g)
    look_savings = [
        paired.match_final_savings(part, "ours") if look["trials"] else {"trials": 0}
        for part, look in zip(before, looks, strict=False)
    ] + [m]
    main_trials = {_trial(r) for r in main_records or ()}
    added = [r for r in records if _trial(r) not in main_trials]
    new = paired.paired_gain(added, "ours")
    new_m = paired.match_final_savings(added, "ours") if new["trials"] else {"trials": 0}
    out += [
        main_comparison.run_status(records, config, run_dirs.pace(run)),
        (
            f"Command: {command}; wall time {table_cells.hours(seconds)} (runs trained here; "
            f"{run_dirs.WALL_NOTE}). "
            f"{len(records)} records (`docs/results/{name}_trials10/`).\n"
        ),
        (
            "| comparison | trials | mDSQ gain [95 % CI] | mAP gain | mIoU gain | labels to "
            "reach random's final mDSQ: savings | mDSQ verdict |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    alone = [("ours vs random, only the trials not in the main comparison", new, new_m)]
    if not main_trials:
        alone = []
    for e in added_by:  # the trials of each extension, run by a later session's code
        part = [r for r in records if int(e["from"]) <= _trial(r) < int(e["to"])]
        gain = paired.paired_gain(part, "ours")
        label = f"ours vs random, only trials {e['from']}-{int(e['to']) - 1} (the extension)"
        savings = paired.match_final_savings(part, "ours") if gain["trials"] else {"trials": 0}
        alone.append((label, gain, savings))
    for label, gain, savings in alone:
        if gain["trials"]:
            out.append(_row(label, gain, _savings(savings), table_cells.verdict(gain)))
    for i, look in enumerate(looks):
        last = i == len(looks) - 1
        label = "ours vs random" if last else f"ours vs random, trials 0-{bounds[i] - 1}"
        savings = _savings(look_savings[i])
        verdict = table_cells.verdict(look) if look["trials"] else "no finished trial yet"
        out.append(_row(label, look, savings, verdict))
    out.append(
        "\nEach verdict here tests its row alone; the side-by-side adjusts the pooled rows "
        "within the main comparison's family of claims (Holm) and marks those that do not "
        "hold after it.\n"
    )
    if main_trials:
        out.append(
            f"\nThe first {len(main_trials)} trials are the main comparison's: this experiment "
            "was planned after its result (a gain whose interval reached 0), so it is a second "
            "look at data that includes the first, and its interval is not corrected for that. The first row gives the trials "
            "it added alone; where their gain differs from the main comparison's, the pooled "
            "row averages two different readings.\n"
        )
    queued = run_dirs.queued_num_trials(run)
    if queued and queued > planned:
        out.append(
            f"\nQueued: `experiments/continue.sh` extends it to {queued} trials "
            f"(`--config.al.num_trials={queued}`), decided after the {planned}-trial result: "
            "one more look, whose verdict is to be read as suggestive for the same reason. "
            "The added trials run with the code of the sessions that run them, which may "
            "differ from the first trials' (the BoxMask crop windows changed on 2026-12-05: "
            "`docs/design.md`); the experiment records each extension (`extensions.json`) "
            "and each run the code that trained it (`wall.json`), and the table then gives "
            "the added trials a row of their own.\n"
        )
    if len(looks) > 1:
        steps = ", then ".join(f"{b}" for b in bounds[1:] + [planned])
        out.append(
            f"\nThe experiment first ran {bounds[0]} trials (the row of trials 0-{bounds[0] - 1}, p "
            f"{significance.format_p(looks[0].get('p_value'))}) and was extended to {steps} "
            "after looking (`--config.al.num_trials`; the finished trials replay "
            "unchanged). Deciding to extend after a look is one more look at the data: the "
            "last row's interval and p-value are not corrected for it, so read a verdict "
            "that only the extension reaches as suggestive, unless it holds after the "
            "correction for the looks below.\n"
        )
    if len(looks) > 1 or main_trials:
        earlier = sorted(n for n in {len(main_trials), *bounds} if 0 < n < planned)
        if earlier:
            out.append(_looks_paragraph(earlier, planned, g, m))
    for e in added_by:
        trials = range(int(e["from"]), int(e["to"]))
        codes, machines = _provenance(run, trials)
        trained = _counted(codes)
        if any(machines):  # recorded since 2026-12-06
            trained += f"; on the machines (`wall.json`'s `machine`): {_counted(machines)}"
        out.append(
            f"\nTrials {trials[0]}-{trials[-1]} were added on {e['at'][:10]} by a session "
            f"running {e.get('code') or 'an unrecorded version'} "
            f"(`{run_dirs.shown(run)}/extensions.json`); the code that trained their finished "
            f"runs (`wall.json`; a run: one trial's cycle-0 model or one cycle of one strategy): "
            f"{trained or 'none finished yet'}. Their own row shows whether "
            "they read like the first trials; a difference there is the code's, chance's, "
            f"or both.{_against_before(g['per_trial'], int(e['from']), int(e['to']))}"
            f"{_where_it_lies(records, g['per_trial'], int(e['from']), int(e['to']))}"
            f"{_code_check(results_dir, link_root)}\n"
        )
    out.append(main_comparison.power_table(records, {"ours": g}))
    out.append(f"\n![mDSQ]({link_root}/{name}_trials10/mdsq.png)\n")
    if g["trials"] >= 2:
        gain_plot(
            g["per_trial"], bounds, main_comparison.PAPER_GAINS_AT_80[("ours", "random")],
            os.path.join(results_dir, f"{name}_trials10", GAIN_PLOT),
        )  # fmt: skip
        out.append(
            "\nThe interval as the trials accumulate: each trial's gain (ours - random, mDSQ "
            "over cycles 1-5, in trial order) and the mean and 95 % interval of the first n "
            "trials, for every n; a look after n trials reads the interval at n.\n"
            f"\n![gain by trials]({link_root}/{name}_trials10/{GAIN_PLOT})\n"
        )
    rows = {}
    extended = f", extended after the {bounds[0]}-trial look" if len(looks) > 1 else ""
    # the claims over the trials both strategies finished: a curve still running would read
    # as one that never reaches 95 % of the reference
    finished = {t["trial"] for t in g["per_trial"]}
    done = [r for r in records if _trial(r) in finished]
    summaries = reporting.summarize(done, last_cycle=run_dirs.last_cycle(config))
    for claim, value in main_comparison.claims(done, summaries).items():
        if claim in (
            main_comparison.CLAIMS[0][3],
            main_comparison.LE95_CLAIM,
            main_comparison.MATCH_FINAL_CLAIM,
        ):
            rows[f"{claim}, {planned} trials planned (`trials10`{extended})"] = value
    return "\n".join(out), rows
