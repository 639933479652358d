"""The main comparison's own command run on a GPU beside the CPU runs (``bench/gpu_check.sh``;
docs/benchmarks.md, "GPU check"): the device, the wall time of the same runs on both
machines, where a GPU cycle's time goes, and the metrics of the same runs on both.
"""

from __future__ import annotations

import glob
import itertools
import json
import math
import os

import numpy as np

from docs.results_lib import page_files, run_dirs, table_cells
from mtal_jax import paired, significance


def device_line(gpu_run):
    """The GPU and the libraries it ran with, from the GPU run's ``device/`` files:
    ``NVIDIA H200 (python 3.12.3, jax 0.11.2, ...)``."""
    smi = page_files.read_text(os.path.join(gpu_run, "device", "nvidia-smi.txt"), "")
    lib = versions_text(gpu_run)
    return (gpu_name(smi) or "a GPU") + (f" ({lib})" if lib else "")


def versions_text(gpu_run):
    """The libraries of the GPU run's ``device/versions.txt``: ``python 3.12.3, jax 0.11.2,
    ...``; "" without the file."""
    versions = page_files.read_text(os.path.join(gpu_run, "device", "versions.txt"), "")
    words = next((ln for ln in versions.splitlines() if ln.startswith("python ")), "").split()
    return ", ".join(" ".join(words[i : i + 2]) for i in range(0, len(words), 2))


def gpu_name(smi: str) -> str:
    """``NVIDIA H200`` (or another known GPU) from ``nvidia-smi``'s output; "" if none."""
    names = [n for n in ("H200", "H100", "A100", "L4", "V100") if f"NVIDIA {n}" in smi]
    return f"NVIDIA {names[0]}" if names else ""


def cycle_breakdown(run):
    """Where an AL cycle's wall time goes, from its training log (``logs/metrics.jsonl``)
    and ``wall.json``: medians over the run's finished cycles of the ms per step between
    consecutive training rows with no evaluation between them (checkpoint saves included),
    of one evaluation's seconds (an eval row's time minus the row before it) and evaluations
    per cycle, and of the seconds outside the logged span (the previous model's restore, the
    selection, the input pipeline's start, the last save). None when no cycle has both."""
    rates, evals, counts, rest = [], [], [], []
    for log in glob.glob(os.path.join(run, "trial_*", "*", "cycle_*", "logs", "metrics.jsonl")):
        wall = page_files.read_json(
            os.path.join(os.path.dirname(os.path.dirname(log)), "wall.json")
        )
        if not wall:
            continue
        with open(log, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        if not rows:
            continue
        rates += [
            1000.0 * (b["time"] - a["time"]) / (b["step"] - a["step"])
            for a, b in itertools.pairwise(rows)
            if "train/total" in a and "train/total" in b and b["step"] > a["step"]
        ]
        pairs = [
            (a, b) for a, b in itertools.pairwise(rows) if any(k.startswith("eval/") for k in b)
        ]
        evals += [b["time"] - a["time"] for a, b in pairs]
        counts.append(len(pairs))
        rest.append(float(wall["seconds"]) - (rows[-1]["time"] - rows[0]["time"]))
    if not rates or not rest:
        return None
    return {
        "ms_per_step": float(np.median(rates)),
        "eval_s": float(np.median(evals)) if evals else math.nan,
        "evals_per_cycle": float(np.median(counts)),
        "rest_s": float(np.median(rest)),
    }


def gpu_section(name, gpu_run, cpu_run, cpu_records, cpu_config):
    """The subsection of the main comparison's runs made on a GPU: how far they went, their
    wall time beside the CPU's for the same runs, the whole protocol's time extrapolated from
    them, and their metrics against the CPU's in the same runs (same trial, strategy, cycle and
    labeled set: a check that the hardware does not change the results beyond noise)."""
    records, config, gpu_seconds = run_dirs.load_run(gpu_run)
    out = ["\n### The main comparison on a GPU\n"]
    if not records:
        out.append(f"_(no GPU run in `{gpu_run}`)_\n")
        return "\n".join(out)
    cfg = run_dirs.DATASETS.get(name, (name, "configs/<config>.py"))[1]
    al = (config or cpu_config or {}).get("al", {})
    last = int(al.get("num_cycles", 6)) - 1
    finished = {}
    for r in records:
        if r["cycle"] == last:
            finished[r["strategy"]] = finished.get(r["strategy"], 0) + 1
    planned = run_dirs.planned_trials(al)
    latest = records[-1]  # results.json is in the order the protocol ran
    status = (
        f"{sum(finished.values())} of {sum(planned.values())} (trial, strategy) runs finished "
        f"all {last} "
        f"cycles ({', '.join(f'{s} {n}' for s, n in finished.items())}"
        + (
            f"; the last record: {latest['strategy']}, trial {latest['trial']}, cycle "
            f"{latest['cycle']}). "
            if latest["cycle"] != last
            else "). "
        )
    )
    out.append(
        f"Made with `EXPERIMENT={cfg}:repro bash bench/gpu_check.sh` (docs/benchmarks.md, "
        f'"GPU check") on {device_line(gpu_run)}: the main comparison\'s own command, run '
        f"for {table_cells.hours(gpu_seconds)} of runs within device leases of 15 minutes "
        "(which also "
        "start the machine and ran the benchmarks of docs/benchmarks.md), then stopped: "
        f"{status}"
        f"Records and wall times are in `{gpu_run}` ({len(records)} records)"
        + (
            ", an archive that the next lease continues (`RESUME`, docs/benchmarks.md).\n"
            if os.path.exists(os.path.join(gpu_run, "archive.json"))
            else "; the checkpoints stayed on the machine, so nothing there resumes.\n"
        )
    )
    # Wall time, kind by kind, for the same runs on both machines.
    pool = round(len(records[0]["labeled_ids"]) / records[0]["labeled_fraction"])
    sched = run_dirs.preset_plan(cfg, "repro", pool).schedule
    kinds = [("reference run", "reference", sched.reference_steps),
             ("cycle-0 run", "trial_*/cycle_0", sched.initial_steps),
             ("AL cycle (selection + training)", "trial_*/*/cycle_*", sched.cycle_steps)]  # fmt: skip
    lines = [
        (
            "| run | steps | GPU: median s (runs) | CPU, the same runs: median s | CPU s per "
            "step | CPU / GPU |"
        ),
        "|---|---|---|---|---|---|",
    ]
    medians, per_step = {}, {}
    for label, pattern, steps in kinds:
        g = run_dirs.walls_under(gpu_run, pattern)
        c = run_dirs.walls_under(cpu_run, pattern)
        same = sorted(set(g) & set(c))
        if not same:
            continue
        gm, cm = float(np.median([g[k] for k in same])), float(np.median([c[k] for k in same]))
        medians[pattern], per_step[label] = gm, cm / steps
        lines.append(
            f"| {label} | {steps} | {gm:.0f} ({len(same)}) | {cm:.0f} | {cm / steps:.2f} | "
            f"{cm / gm:.0f}x |"
        )
    slowest = max(per_step.values(), default=0.0)
    short = [k for k, v in per_step.items() if v < slowest / 2]  # cannot be the whole run
    out += [
        "Wall time of the same runs on both machines (`wall.json`). The CPU's shared its 2 "
        "cores with a second experiment for most runs, so its times and the ratios are high "
        "by up to 2x; and a CPU run resumed across sessions counts only its last session ("
        + (
            f"the {', '.join(short)} here: its time per step is under half the others', so "
            "its ratio is too low"
            if short
            else "none of these, by their times per step"
        )
        + "):\n",
        "\n".join(lines) + "\n",
    ]
    if len(medians) == len(kinds) and planned:
        trials = int(al["num_trials"])
        runs = sum(planned.values()) * last
        total = medians["reference"] + trials * medians["trial_*/cycle_0"]
        total += runs * medians["trial_*/*/cycle_*"]
        _, _, cpu_seconds = run_dirs.load_run(cpu_run)
        device = os.path.join(gpu_run, "device")
        step = page_files.read_json(os.path.join(device, "train_step_default_float32.json")) or {}
        score = page_files.read_json(os.path.join(device, "score_throughput.json")) or {}
        scored = (
            f"; a scored selection adds the pool's forward passes, about "
            f"{pool / score['images_per_s']['ours']:.1f} s for {pool} images at the scoring "
            f"throughput measured on the same GPU (at {score['image_hw'][0]}x"
            f"{score['image_hw'][1]}, docs/benchmarks.md)"
            if score
            else ""
        )
        parts = cycle_breakdown(gpu_run)
        training = (
            f" Where a GPU cycle's time goes ({sched.cycle_steps} steps; medians of its "
            f"training logs): a step takes {parts['ms_per_step']:.1f} ms in the loop"
            + (
                f" against {step['median_ms']:.1f} ms for the step alone "
                "(`bench/train_step.py`), the rest of it the input pipeline, checkpoints "
                "and the loop's host-side work"
                if step
                else ""
            )
            + f"; {parts['evals_per_cycle']:.0f} evaluations take {parts['eval_s']:.1f} s "
            f"each; {parts['rest_s']:.0f} s lie outside the logged span (the previous "
            "model's restore, the selection, the input pipeline's start, the last save)."
            if parts
            else ""
        )
        out.append(
            f"At these medians the whole protocol ({trials} cycle-0 runs, {runs} AL cycle runs) "
            f"takes about {table_cells.hours(total)} on this GPU, against "
            f"{table_cells.hours(cpu_seconds)} of runs on "
            f"the CPU."
            + (
                f" This experiment's GPU runs select at random, without scoring the pool{scored}."
                if {r["strategy"] for r in records} == {"random"}
                else ""
            )
            + f"{training}\n"
        )
    # The metrics of the same runs on both machines.
    mine = [dict(r, strategy=f"{r['strategy']}@gpu") for r in records]
    cpu_sets = {(c["trial"], c["strategy"], c["cycle"]): c.get("labeled_ids") for c in cpu_records}
    same_sets = sum(
        r.get("labeled_ids") == cpu_sets.get((r["trial"], r["strategy"], r["cycle"]), ())
        for r in records
    )
    rows = [
        (
            f"| strategy | trials | GPU - CPU, mean over cycles 1-{last} [95 % CI]: mDSQ | mAP | "
            "mIoU | CPU's spread between trials (SD of the same mean): mDSQ / mAP / mIoU | GPU "
            "vs CPU |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for s in dict.fromkeys(r["strategy"] for r in records):
        g = paired.paired_gain(mine + list(cpu_records), f"{s}@gpu", s)
        if not g["trials"]:
            continue
        spread = []
        for m in ("mdsq", "map", "miou"):
            per_trial = [
                np.mean([c[m] for c in cpu_records if (c["strategy"], c["trial"]) == (s, t)
                         and 1 <= c["cycle"] <= g["cycles"][-1]])
                for t in sorted({p["trial"] for p in g["per_trial"]})
            ]  # fmt: skip
            spread.append(
                f"{np.std(per_trial, ddof=1):.4f}" if len(per_trial) > 1 else table_cells.DASH
            )
        rows.append(
            f"| {s} | {g['trials']} | {significance.format_interval(g)} | "
            f"{significance.format_interval(g['map'], 4)} | {significance.format_interval(g['miou'], 4)} | "
            f"{' / '.join(spread)} | "
            + (
                "no difference detected (each interval spans 0)"
                if all(lo <= 0 <= hi for lo, hi in (g["ci95"], g["map"]["ci95"], g["miou"]["ci95"]))
                else "differ"
            )
            + " |"
        )
    ref_g = page_files.read_json(os.path.join(gpu_run, "reference", "metrics.json")) or {}
    ref_c = page_files.read_json(os.path.join(cpu_run, "reference", "metrics.json")) or {}
    ref = (
        f" Reference run: mAP {ref_g['map']:.4f} / mIoU {ref_g['miou']:.4f} on the GPU, "
        f"{ref_c['map']:.4f} / {ref_c['miou']:.4f} on the CPU (mDSQ is against each "
        "machine's own reference)."
        if ref_g and ref_c
        else ""
    )
    out += [
        (
            f"The same runs on both machines: {same_sets} of {len(records)} GPU records have "
            "the CPU record's labeled set exactly (the pools and random's selections come from "
            "the trial's seed), so only the arithmetic differs (another XLA backend and "
            f"version, float32 sums in another order).{ref}\n"
        ),
        "\n".join(rows) + "\n",
        (
            '"No difference detected": every interval holds 0, which is not a proof of '
            "equality: an interval as wide as the gains it is compared with cannot tell them "
            "apart (compare their widths with the spread between trials, which the "
            "strategies' gains are read against). The "
            "strategies' comparisons on a GPU are in the next subsection.\n"
        ),
    ]
    return "\n".join(out)
