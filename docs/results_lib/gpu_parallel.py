"""The main comparison's strategies run on a GPU many processes at once
(``mtal_jax.al.parallel_cli``; docs/benchmarks.md): the leases' throughput, each
strategy's paired gain beside the CPU's in the same trials and cycles, how far the
selections agree, and the paragraph under the side-by-side.
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np

from docs.results_lib import gpu_serial, page_files, run_dirs, table_cells
from mtal_jax import paired, significance

PAPER_ABOVE_RANDOM = ("ll4al", "ours")
"""Strategies the paper reports above random (Sec. IV-D; the side-by-side's claims)."""


def _side_of_random(ci95):
    """Where a gain's 95 % interval lies against 0: above / below random, or noise."""
    return _side_of_interval(ci95, "random")


def _side_of_interval(ci95, what="0"):
    """Where a 95 % interval lies: above / below ``what``, or not distinguishable."""
    lo, hi = ci95
    if lo > 0:
        return f"above {what}"
    if hi < 0:
        return f"below {what}"
    return f"not distinguishable from {what} at this power"


def gpu_parallel_section(name, par_run, cpu_run, cpu_records, single_gpu_run=""):
    """The subsection of the main comparison's strategies run on a GPU many processes at
    once: how far the leases went and their throughput beside one process
    (``single_gpu_run``'s median cycle), each strategy's paired gain over random on the GPU
    beside the CPU's in the same trials and cycles (the runs start from the same cycle-0
    models), and how far the selections agree."""
    records = page_files.read_json(os.path.join(par_run, "results.json")) or []
    out = ["\n### The strategies on a GPU, many processes at once\n"]
    if not records:
        out.append(f"_(no records in `{par_run}`)_\n")
        return "\n".join(out), {}
    state = page_files.read_json(os.path.join(par_run, "parallel.json")) or {}
    parts = state.get("parts", {})
    complete = sum(bool(p.get("complete")) for p in parts.values())
    lease_files = sorted(
        glob.glob(os.path.join(par_run, "device", "lease*_parallel.json")), key=_lease_number
    )
    leases = [page_files.read_json(f) or {} for f in lease_files]
    cfg = run_dirs.DATASETS.get(name, (name, "configs/<config>.py"))[1]
    lease_cycles = _lease_cycles(leases)
    gpus = _trained_on(par_run, lease_files, lease_cycles)
    versions = gpu_serial.versions_text(par_run)
    out.append(
        f"Made with `PARALLEL_JOBS=10 BASE=gpu_base/repro_{name} EXPERIMENT={cfg}:repro bash "
        f'bench/gpu_check.sh` (docs/benchmarks.md, "GPU check") on {gpus} (the GPUs of the '
        "leases that trained AL cycles; the table below names each lease's"
        + (f"; the first lease's software: {versions}" if versions else "")
        + "): "
        "the main comparison's (trial, strategy) runs as one process each, several at a time "
        "(`python -m mtal_jax.al.parallel_cli`), each starting from the CPU run's reference "
        "and its trial's cycle-0 model and pool (`bench/gpu_base.sh`): the GPU and the CPU "
        "runs of a trial differ only in the hardware from cycle 1 on. "
        f"{len(leases)} leases; {complete} of {len(parts)} strategy-trials have finished "
        f"every cycle, the others continue from the archive in `{par_run}` "
        "(`RESUME`).\n"
    )
    one = run_dirs.cycle_seconds(single_gpu_run) if single_gpu_run else math.nan
    rows = [
        (
            "| lease | processes at once | experiment s | AL cycles trained | s per AL cycle, all "
            "processes together | one process alone (s per cycle) | parts that failed | GPU |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for f, lease, cycles in zip(lease_files, leases, lease_cycles):
        sec = float(lease.get("seconds", math.nan))
        ran = [p for p in lease.get("parts", {}).values() if p.get("rc") is not None]
        # a part stopped by the deadline is no failure; leases before "stopped" was
        # recorded cannot tell the two apart
        failed = (
            str(sum(p["rc"] != 0 and not p["stopped"] for p in ran))
            if all("stopped" in p for p in ran) else table_cells.DASH
        )  # fmt: skip
        rows.append(
            f"| {_lease_number(f)} | {lease.get('jobs', table_cells.DASH)} | {sec:.0f} | "
            f"{cycles} | "
            + (f"{sec / cycles:.1f} | " if cycles else f"{table_cells.DASH} | ")
            + (f"{one:.1f} |" if math.isfinite(one) else f"{table_cells.DASH} |")
            + f" {failed} | {_lease_gpu(par_run, f)} |"
        )
    rates = [float(le["seconds"]) / c for le, c in zip(leases, lease_cycles) if c]
    config = page_files.read_json(os.path.join(par_run, "config.json")) or {}
    al_cycles = int(config.get("al", {}).get("num_cycles", 6)) - 1  # cycles 1.. of a part
    whole = len(parts) * al_cycles  # AL cycles of the whole comparison
    out += ["\n".join(rows) + "\n", (
        "The experiment seconds include each process's start (imports, the dataset, "
        "compilation) and the processes still running at the lease's deadline (their "
        "unfinished cycles are not counted): a lower bound of the throughput. The last "
        "column counts the parts that ended with an error of their own, not by the "
        f"deadline's stop ({table_cells.DASH}: the lease did not record which); their logs "
        "and the failures are in `device/` and docs/benchmarks.md (\"GPU check\")."
        + (
            f" At the best lease's rate the comparison's {whole} AL cycles take about "
            f"{table_cells.hours(min(rates) * whole)} of this GPU"
            + (
                f", against {table_cells.hours(one * whole)} for one process"
                if math.isfinite(one)
                else ""
            )
            + "."
            if rates and parts
            else ""
        )
        + "\n"
    )]  # fmt: skip
    # The span over which every trial of ours (the paper's strategy) is complete.
    last = max(r["cycle"] for r in records)
    k, n1 = 1, paired.paired_gain(records, "ours", last_cycle=1)["trials"]
    while k < last and n1 and paired.paired_gain(records, "ours", last_cycle=k + 1)["trials"] == n1:
        k += 1
    n_ours = len({r["trial"] for r in records if r["strategy"] == "ours"})
    which = "every `ours` trial has" if n1 == n_ours else f"{n1} of the {n_ours} `ours` trials have"
    span = "-".join(
        f"{100 * float(np.mean([r['labeled_fraction'] for r in records if r['cycle'] == c])):.0f}"
        for c in (1, k)
    )  # the labeled fractions of cycles 1 and k
    rows = [
        (
            f"| strategy | trials | GPU: gain over random, mDSQ, cycles 1-{k} [95 % CI] | CPU, the "
            f"same trials and cycles | GPU: mAP | GPU: mIoU | mDSQ on the GPU |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    found = {}
    for s in dict.fromkeys(r["strategy"] for r in records):
        if s == paired.BASELINE:
            continue
        g = paired.paired_gain(records, s, last_cycle=k)
        if g["trials"] < 2:
            continue
        trials = {p["trial"] for p in g["per_trial"]}
        c = paired.paired_gain([r for r in cpu_records if r["trial"] in trials], s, last_cycle=k)
        found[s] = {"gpu": g, "cpu": c, "gpus": gpus}
    # Holm over this column's tests (every strategy against random), as the CPU's table
    adjusted = significance.holm({s: f["gpu"].get("p_value") for s, f in found.items()})
    tests = sum(1 for f in found.values() if table_cells.finite(f["gpu"].get("p_value")))
    marked = 0
    for s, f in found.items():
        g, c = f["gpu"], f["cpu"]
        reading = _side_of_random(g["ci95"])
        if not reading.startswith("not") and not adjusted.get(s, math.nan) < 0.05:
            reading += " (not after Holm)"
            marked += 1
        if s in PAPER_ABOVE_RANDOM and reading.startswith("below"):
            reading += "; the paper: above random"
        rows.append(
            f"| {s} | {g['trials']} | {significance.format_interval(g)} | {significance.format_interval(c)} | "
            f"{significance.format_interval(g['map'], 4)} | {significance.format_interval(g['miou'], 4)} | "
            f"{reading} |"
        )
    vs = [
        "| comparison | trials | GPU: mDSQ, cycles 1-" + str(k) + " [95 % CI] | CPU, the same "
        "trials and cycles |",
        "|---|---|---|---|",
    ]
    for s in list(found):
        if s == "ours":
            continue
        g = paired.paired_gain(records, "ours", s, last_cycle=k)
        if g["trials"] < 2:
            continue
        trials = {p["trial"] for p in g["per_trial"]}
        c = paired.paired_gain(
            [r for r in cpu_records if r["trial"] in trials], "ours", s, last_cycle=k
        )
        found[f"ours_vs_{s}"] = {"gpu": g, "cpu": c, "gpus": gpus}
        vs.append(
            f"| ours > {s} | {g['trials']} | {significance.format_interval(g)} | "
            f"{significance.format_interval(c)} |"
        )
    cpu_by = {(r["trial"], r["strategy"], r["cycle"]): r for r in cpu_records}
    agree = []
    for s in dict.fromkeys(r["strategy"] for r in records):
        mine = [r for r in records if r["strategy"] == s and r["cycle"] >= 1]
        pairs = [(r, cpu_by.get((r["trial"], s, r["cycle"]))) for r in mine]
        pairs = [(r, c) for r, c in pairs if c]
        if pairs:
            same = sum(r["labeled_ids"] == c["labeled_ids"] for r, c in pairs)
            diff = float(np.mean([r["mdsq"] - c["mdsq"] for r, c in pairs]))
            agree.append(f"{s} {same} of {len(pairs)} (mDSQ GPU - CPU {diff:+.4f} on average)")
    out += [
        (
            f"Paired gains over random on the GPU, over cycles 1-{k} ({span} % "
            f"labeled: the span over which {which} finished), beside the CPU's "
            "gain in the same trials and cycles. The CPU's main result (cycles 1-5, all trials) "
            "is in the paired table above.\n"
        ),
        "\n".join(rows) + "\n",
        (
            "A reading marked (not after Holm) excludes 0 at 95 % alone but not once the "
            f"column's {tests} tests against random are adjusted together (Holm's method, "
            "as in the main comparison's table): read it as suggestive.\n"
            if marked
            else ""
        ),
        (
            "`ours` against the other strategies in the same way (the paper's claims of the "
            "side-by-side, on the GPU's span of cycles):\n"
        ),
        "\n".join(vs) + "\n",
        (
            "The AL cycles' selections, GPU against CPU (same trial, strategy and cycle): the "
            "labeled sets are equal in " + "; ".join(agree) + ". Random selects from the "
            "trial's seed, so its sets agree exactly and only the arithmetic differs; a scored "
            "strategy's scores differ in the last bits between the two machines, so its "
            "selections part from the first scored cycle on, and the two machines give two "
            "runs of the same protocol from the same cycle-0 model.\n"
        ),
    ]
    return "\n".join(out), found


def gpu_summary(results_dir, names):
    """One paragraph under the side-by-side: ``ours`` against random and LL4AL on a GPU beside
    the CPU in the same trials and cycles (``gpu_parallel_paired.json`` of
    ``gpu_parallel_section``); "" when none is written."""
    out, gpus = [], []
    for name in names:
        found = (
            page_files.read_json(os.path.join(results_dir, name, "gpu_parallel_paired.json")) or {}
        )
        if "ours" not in found:
            continue
        parts = []
        for key, text in (("ours", "ours > random"), ("ours_vs_ll4al", "ours > LL4AL")):
            if key in found:
                g, c = found[key]["gpu"], found[key]["cpu"]
                parts.append(
                    f"{text} {significance.format_interval(g)} on the GPU ({g['trials']} trials, "
                    f"{_side_of_interval(g['ci95'])}), {significance.format_interval(c)} on the CPU"
                )
        gpus += [g for g in found["ours"].get("gpus", "a GPU").split(" and ") if g not in gpus]
        cyc = found["ours"]["gpu"]["cycles"]
        out.append(
            f"{run_dirs.DATASETS.get(name, (name,))[0]}, mDSQ over cycles {cyc[0]}-{cyc[-1]} "
            "in the same "
            "trials on both machines: " + "; ".join(parts)
        )
    if not out:
        return ""
    return (
        "On other hardware: the main comparison's strategies also ran on a GPU "
        f"({' and '.join(gpus)}, many processes at once, from the CPU runs' cycle-0 models; "
        'see "The strategies on a GPU" below). ' + "; ".join(out) + ".\n"
    )


def _lease_number(path: str) -> int:
    """N of ``.../lease<N>_parallel.json`` (lease 10 after lease 9)."""
    digits = os.path.basename(path)[len("lease") :].split("_")[0]
    return int(digits) if digits.isdigit() else 0


def _lease_cycles(leases: list[dict]) -> list[int]:
    """The AL cycles each lease trained: per part it ran, its records at the lease's end
    less those it had before (its records after the last earlier lease that listed it; a
    part's cycle-0 copy, its first record, is no AL cycle)."""
    seen: dict[str, int] = {}  # part -> its records after the last lease that listed it
    out = []
    for lease in leases:
        cycles = 0
        for name, p in lease.get("parts", {}).items():
            if p.get("rc") is not None:  # it ran in this lease
                cycles += max(p.get("records", 0) - max(seen.get(name, 0), 1), 0)
            seen[name] = p.get("records", 0)
        out.append(cycles)
    return out


def _trained_on(par_run: str, lease_files: list[str], lease_cycles: list[int]) -> str:
    """The GPUs of the leases that trained AL cycles, in lease order, joined by "and"
    (``NVIDIA H200 and NVIDIA H100``); the run's first GPU when no lease trained one."""
    names = [_lease_gpu(par_run, f) for f, c in zip(lease_files, lease_cycles) if c]
    names = [n for n in dict.fromkeys(names) if n != table_cells.DASH]
    return (
        " and ".join(names)
        or gpu_serial.gpu_name(
            page_files.read_text(os.path.join(par_run, "device", "nvidia-smi.txt"), "")
        )
        or "a GPU"
    )


def _lease_gpu(par_run: str, lease_file: str) -> str:
    """The lease's GPU: from its ``lease<N>_nvidia-smi.txt`` (``bench/gpu_merge_back.sh``),
    else from the run's ``device/nvidia-smi.txt`` (the first leases kept only that one)."""
    own = os.path.join(par_run, "device", f"lease{_lease_number(lease_file)}_nvidia-smi.txt")
    base = os.path.join(par_run, "device", "nvidia-smi.txt")
    smi = page_files.read_text(own if os.path.exists(own) else base, "")
    return gpu_serial.gpu_name(smi) or table_cells.DASH
