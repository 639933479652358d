"""The regime and cost subsections of the results page: the run's schedule, the reference,
the noise floor and the regime jobs with their doubling (convergence) checks (``bench/regime.py
--summarize``; docs/regime.md), and what the presets cost at the measured pace.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics

from docs.results_lib import page_files, run_dirs, table_cells, trials10


def _pool(jobs):
    """The one pool size of ``regime.json``'s ``jobs``, or None (no job, or several)."""
    pools = {j.get("pool") for j in (jobs or {}).values() if j.get("pool")}
    return pools.pop() if len(pools) == 1 else None


def _passes(train, epochs, steps, pool):
    """A schedule's length in passes over ``pool`` images: ``train[steps]`` steps when > 0
    (explicit steps override), else ``train[epochs]`` passes."""
    n = train.get(steps) or 0
    return n * train.get("batch_size", 16) / pool if n > 0 else float(train[epochs])


def cost_section(name, results_dir):
    """What the reproduction costs on this machine: planned steps of the ``repro`` and
    ``table1`` presets, hours at the fastest measured pace of the dataset's regime jobs."""
    cfg = run_dirs.DATASETS[name][1]
    jobs = page_files.read_json(os.path.join(results_dir, name, "regime.json")) or {}
    pool = _pool(jobs)
    if pool is None:
        return "_(no regime jobs: cost not computed)_\n"
    pace = min(
        (j["wall_s"] / j["steps"] for j in jobs.values() if j.get("wall_s") and j.get("steps")),
        default=math.nan,
    )
    rows = ["| preset | training steps | hours at the pace |", "|---|---|---|"]
    from mtal_jax.al.experiment import share

    for variant in ("repro", "table1"):
        plan = run_dirs.preset_plan(cfg, variant, pool)
        steps = plan.planned_steps() - share.steps_within(plan)  # copies within the experiment
        rows.append(f"| `{cfg}:{variant}` | {steps:,} | {steps * pace / 3600:.1f} |")
    table1, repro = (
        run_dirs.preset_plan(cfg, "table1", pool),
        run_dirs.preset_plan(cfg, "repro", pool),
    )
    steps = (
        table1.planned_steps()
        - share.steps_shared(table1, repro)
        - share.steps_within(table1, repro)
    )
    rows.append(
        f"| `{cfg}:table1 --config.al.share_from={run_dirs.DATASETS[name][2]}` (after `repro`) | "
        f"{steps:,} | {steps * pace / 3600:.1f} |"
    )
    if name in run_dirs.TRIALS10:
        # the preset's trials, and the count experiments/continue.sh runs it with
        extended = run_dirs.queued_num_trials(run_dirs.TRIALS10[name])
        preset = run_dirs.preset_plan(cfg, "trials10", pool).num_trials
        for count in (None, extended) if extended and extended > preset else (None,):
            t10 = run_dirs.preset_plan(cfg, "trials10", pool, num_trials=count)
            steps = t10.planned_steps() - share.steps_shared(t10, repro)
            rows.append(
                f"| `{cfg}:trials10 --config.al.share_from={run_dirs.DATASETS[name][2]}"
                f"{trials10.command_flag(count or 0)}` (after `repro`) | "
                f"{steps:,} | {steps * pace / 3600:.1f} |"
            )
    return (
        f"Pace: {pace:.2f} s per training step, the fastest of the regime jobs (wall time "
        "over steps, evaluation included; the machine was shared for most jobs, so an idle "
        "machine is faster). Pool scoring comes on top (`ours` and CALD dominate it). What "
        "dominates and which knob trades what: `docs/regime.md` (What the full protocol "
        "costs).\n\n" + "\n".join(rows) + "\n"
    )


def _family(name):
    """What two regime jobs must share to be a doubling pair besides labeled set, pool and
    seed: warm-started (``w...``, and the run they start from) or not."""
    return ("w", name.partition("_from_")[2]) if name.startswith("w") else ("", "")


def doubling_pairs(jobs):
    """[(shorter, longer)] job names of ``regime.json`` that differ only in their steps, the
    longer about twice the shorter (within 1 %): the doubling (convergence) checks."""
    out = []
    for a, ja in jobs.items():
        for b, jb in jobs.items():
            same = all(ja.get(k) == jb.get(k) for k in ("labeled", "pool", "seed"))
            steps_a, steps_b = ja.get("steps") or 0, jb.get("steps") or 0
            if (
                a != b
                and same
                and _family(a) == _family(b)
                and steps_a > 0
                and abs(steps_b - 2 * steps_a) <= 0.01 * 2 * steps_a
            ):
                out.append((a, b))
    return sorted(out, key=lambda p: (jobs[p[0]]["labeled"], jobs[p[0]]["steps"], p))


def _chains(pairs):
    """Successive doublings: [[a, b, c, ...]] from pairs (a, b), (b, c), ... (two or more)."""
    longer = dict(pairs)
    starts = [a for a, _ in pairs if a not in longer.values()]
    chains = []
    for a in starts:
        chain = [a]
        while chain[-1] in longer:
            chain.append(longer[chain[-1]])
        if len(chain) > 2:
            chains.append(chain)
    return chains


def _chain_trend(jobs, chain, pair_noise):
    """(changes, total, trend) of a chain of successive doublings: trend is True when
    every change has one sign and together they exceed one pair's noise (a steady climb or
    decline: not converged, even where each change is within noise)."""
    changes = [jobs[b]["mdsq"] - jobs[a]["mdsq"] for a, b in itertools.pairwise(chain)]
    total = jobs[chain[-1]]["mdsq"] - jobs[chain[0]]["mdsq"]
    steady = all(c > 0 for c in changes) or all(c < 0 for c in changes)
    return changes, total, steady and abs(total) > pair_noise


def convergence_table(jobs, noise):
    """The doubling checks: mDSQ before and after, the change in seed stds and against the
    noise of one pair of runs (1.96 sqrt(2) seed std, ``noise_floor.json``'s pooled std);
    then each chain of successive doublings read as a whole, where a steady climb of steps
    that are each within noise is not convergence."""
    pairs = doubling_pairs(jobs)
    if not pairs:
        return ""
    std = (noise or {}).get("mdsq_std_pooled", math.nan)
    pair_noise = 1.96 * math.sqrt(2) * std
    lines = [
        (
            "\nConvergence checks (every pair of regime runs that differ only in doubled steps; "
            f"seed std: the noise floor's pooled {std:.4f}; one change is beyond noise when it "
            f"exceeds {pair_noise:.3f} = 1.96 x sqrt(2) seed stds, the 95 % range of the "
            "difference between two single runs; `docs/regime.md` reads them):\n"
        ),
        "| shorter run | longer run | labeled | passes | mDSQ | change | in seed stds | one pair's noise |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a, b in pairs:
        ja, jb = jobs[a], jobs[b]
        change = jb["mdsq"] - ja["mdsq"]
        within = (
            "within"
            if abs(change) < pair_noise
            else ("beyond" if table_cells.finite(pair_noise) else table_cells.DASH)
        )
        lines.append(
            f"| {a} | {b} | {ja['labeled']} / {ja['pool']} | {ja['passes']:.1f} -> "
            f"{jb['passes']:.1f} | {ja['mdsq']:.3f} -> {jb['mdsq']:.3f} | {change:+.3f} | "
            f"{change / std if table_cells.finite(std) and std else math.nan:+.1f} | {within} |"
        )
    for chain in _chains(pairs):
        changes, total, trend = _chain_trend(jobs, chain, pair_noise)
        if not table_cells.finite(pair_noise):
            reading = "no noise floor to read it against"
        elif trend:
            reading = (
                f"a steady {'climb' if total > 0 else 'decline'} beyond one pair's noise: "
                "these runs are not converged, even where one doubling reads within noise"
            )
        else:
            reading = "no steady trend beyond one pair's noise"
        lines.append(
            f"\n{chain[0]} to {chain[-1]} ({jobs[chain[0]]['passes']:.1f} -> "
            f"{jobs[chain[-1]]['passes']:.1f} passes, {len(changes)} successive doublings): "
            f"changes {', '.join(f'{c:+.3f}' for c in changes)}, together {total:+.3f}"
            + (f" ({total / std:+.1f} seed stds)" if table_cells.finite(std) and std else "")
            + f": {reading}."
        )
    return "\n".join(lines)


def _not_converged(jobs, pairs, chains, job, pair_noise):
    """True when the doubling checks read ``job`` unconverged (its doubling moves mDSQ
    beyond one pair's noise, or it is in a chain of successive doublings that climbs or
    declines steadily beyond it, as ``convergence_table`` reads such a chain), False when
    its doubling stays within noise, None without a doubling of it."""
    doubled = [b for a, b in pairs if a == job]
    if not doubled:
        return None
    if any(abs(jobs[b]["mdsq"] - jobs[job]["mdsq"]) >= pair_noise for b in doubled):
        return True
    return any(job in chain[:-1] and _chain_trend(jobs, chain, pair_noise)[2] for chain in chains)


def schedule_convergence(jobs, noise, config):
    """What the doubling checks of ``regime.json``'s ``jobs`` say of the schedule in
    ``config``: [(part, passes, reading)] for cycle 0 (cold-started jobs on the initial
    fraction) and the cycles (warm-started jobs, ``w...``), reading "not converged",
    "within noise when doubled" or "not checked at this length" (no doubling of a job within
    5 % of the schedule's passes). Unconverged where any such job reads so
    (``convergence_table``). Explicit steps (``train.initial_steps`` / ``train.steps`` > 0)
    count in passes over the jobs' pool."""
    pool = _pool(jobs)
    if not config or pool is None:
        return []
    t, al = config["train"], config["al"]
    std = (noise or {}).get("mdsq_std_pooled", math.nan)
    if not table_cells.finite(std):
        return []
    pair_noise = 1.96 * math.sqrt(2) * std
    pairs = doubling_pairs(jobs)
    chains = _chains(pairs)

    out = []
    for part, passes, warm in (
        ("cycle 0", _passes(t, "initial_epochs", "initial_steps", pool), False),
        ("the cycles", _passes(t, "cycle_epochs", "steps", pool), True),
    ):
        readings = [
            _not_converged(jobs, pairs, chains, name, pair_noise)
            for name, j in jobs.items()
            if name.startswith("w") == warm
            and abs(j["passes"] - passes) <= 0.05 * passes
            and (warm or abs(j["labeled"] / j["pool"] - al["initial_fraction"]) < 0.01)
        ]
        readings = [r for r in readings if r is not None]
        reading = (
            "not checked at this length"
            if not readings
            else ("not converged" if any(readings) else "within noise when doubled")
        )
        out.append((part, passes, reading))
    return out


def convergence_summary(results_dir, configs):
    """The page's summary sentence on whether each dataset's schedule converges
    (``schedule_convergence`` of its main run's ``configs[name]``), "" without checks."""
    parts = []
    for name, config in configs.items():
        d = os.path.join(results_dir, name)
        jobs = page_files.read_json(os.path.join(d, "regime.json")) or {}
        noise = page_files.read_json(os.path.join(d, "noise_floor.json"))
        readings = schedule_convergence(jobs, noise, config)
        if readings:
            title = run_dirs.DATASETS.get(name, (name,))[0]
            other = _noise_length(noise, config, jobs)  # "noise" read at another length
            parts.append(
                f"{title}: "
                + ", ".join(f"{part} ({passes:.3g} passes) {r}" for part, passes, r in readings)
                + (
                    " (its noise floor was measured at another length: the regime section)"
                    if other
                    else ""
                )
            )
    if not parts:
        return ""
    return (
        "\nConvergence of the schedules, by the doubling checks of each regime section (one "
        "seed per length; a doubling within one pair's noise is all such a check can show; "
        "`docs/regime.md`): " + "; ".join(parts) + ". Where a schedule is "
        "not converged, part of each cycle's gain is training rather than data, which "
        "shrinks the differences the data can make; the comparisons stay fair (every "
        "strategy of a trial trains the same steps from the same cycle-0 model), but a gain "
        "may differ at convergence. The protocol asks for converged cycles: `docs/regime.md` "
        "gives what a converged schedule would cost and why it was not run.\n"
    )


def _noise_length(noise, config, jobs):
    """ " ..." saying that the noise floor's runs trained another length than the run's
    cycle 0 (passes over the pool, ``regime.json``'s pool), or "" when they match."""
    pool = _pool(jobs)
    steps = set((noise.get("steps") or {}).values())
    if not config or pool is None or len(steps) != 1:
        return ""
    t = config["train"]
    passes = steps.pop() * t["batch_size"] / pool
    planned = _passes(t, "initial_epochs", "initial_steps", pool)
    if abs(passes - planned) <= 0.05 * planned:
        return ""
    return (
        f" Its runs trained {passes:.0f} passes, the run's cycle 0 {planned:.0f}: the floor was "
        "not measured again at that length (`docs/regime.md`), so it reads the spread of "
        "another schedule."
    )


def _paired_spread(records, noise):
    """The sentence that reads the noise floor as the conservative bound it is: the main
    comparison's ours - random gains (``records``: paired, averaged over cycles) spread less
    between trials than two independent single runs (``sqrt(2)`` seed stds)."""
    from mtal_jax import paired

    pair = paired.paired_gain(records, "ours") if records else {}
    gains = [t["mdsq"] for t in pair.get("per_trial", []) if table_cells.finite(t.get("mdsq"))]
    std = (noise or {}).get("mdsq_std_pooled", math.nan)
    if len(gains) < 2 or not table_cells.finite(std):
        return (
            "A conservative bound: the main comparison's gains are paired and averaged over "
            "cycles, so its intervals may detect smaller ones."
        )
    sd = statistics.stdev(gains)
    independent = math.sqrt(2) * std
    measured = (
        f"(ours - random: SD {sd:.4f} over {len(gains)} trials, against {independent:.4f} for "
        "two independent single runs)"
    )
    if sd < independent:
        return (
            "This is a conservative bound: the main comparison pairs its strategies within a "
            "trial (one pool, one cycle-0 model) and averages over cycles 1-5, so its gains "
            f"spread less between trials {measured}, and its intervals, not this floor, say "
            "which gains its trials detect (with 80 % power: the table under the main "
            "comparison)."
        )
    return (
        "The main comparison's gains spread as much or more between trials "
        f"{measured}: its intervals, not this floor, say which gains its trials detect (with "
        "80 % power: the table under the main comparison)."
    )


def regime_section(name, results_dir, config, records=()):
    """The regime: schedule of the run, reference, noise floor (read against the main
    comparison's ``records``), convergence jobs."""
    d = os.path.join(results_dir, name)
    lines = []
    if config:
        t = config["train"]
        lines.append(
            f"Schedule of the run (passes over the pool; explicit steps override when > 0): "
            f"cycles {t['cycle_epochs']} (steps {t['steps']}), cycle 0 {t['initial_epochs']} "
            f"(steps {t['initial_steps']}), reference {t['reference_epochs']} (steps "
            f"{t['full_steps']}); batch {t['batch_size']}, lr {t['learning_rate']}; "
            f"pool {config['data'].get('builder_kwargs', {}).get('num_train', 'all')} images; "
            f"{config['al']['num_cycles']} cycles from {config['al']['initial_fraction']:.0%} "
            f"by {config['al']['budget_fraction']:.0%}."
        )
    ref = page_files.read_json(os.path.join(d, "reference.json"))
    if ref:
        passes = ref.get("passes")
        known = isinstance(passes, (int, float)) and math.isfinite(passes)
        passes = f"{passes:.0f}" if known else "?"
        lines.append(
            f"\nReference of the regime runs (100 % of the pool, "
            f"`docs/results/{name}/reference.json`): mAP "
            f"{ref['map']:.4f}, AP50 {ref['ap50']:.4f}, mIoU {ref['miou']:.4f} after "
            f"{ref.get('steps', '?')} steps ({passes} passes), "
            f"{table_cells.hours(ref.get('wall_s') or 0)}. It normalises the mDSQ of the "
            "noise floor and the regime runs below. The experiments normalise by the main "
            "comparison's own reference run (copied by the experiments that start from it), "
            "given under its command."
        )
    noise = page_files.read_json(os.path.join(d, "noise_floor.json"))
    if noise:
        stds = ", ".join(f"{k} %: {v:.4f}" for k, v in noise.get("mdsq_std", {}).items())
        mdd = ", ".join(
            f"{v:.3f} with {k} trials" for k, v in noise.get("min_detectable_diff", {}).items()
        )
        lines.append(
            f"\nNoise floor (`docs/results/{name}/noise_floor.json`: the same labeled set "
            f"retrained with different seeds): mDSQ std {stds}; smallest mDSQ difference "
            f"between two strategies detectable at 95 % if each trial gave one independent "
            f"run per strategy at one labeled fraction: {mdd}. {_paired_spread(records, noise)}"
            + _noise_length(noise, config, page_files.read_json(os.path.join(d, "regime.json")))
        )
    jobs = page_files.read_json(os.path.join(d, "regime.json"))
    if jobs:
        lines += [
            (
                f"\nRegime runs (`bench/regime.py`; learning curve, noise floor, convergence "
                f"checks; `docs/results/{name}/regime.json`):\n"
            ),
            "| job | labeled | steps | passes | seed | mAP | mIoU | mDSQ | wall |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, j in jobs.items():
            mdsq = j.get("mdsq")
            lines.append(
                f"| {key} | {j.get('labeled', '?')} / {j.get('pool', '?')} | {j.get('steps', '?')} "
                f"| {j.get('passes', math.nan):.1f} | {j.get('seed', '?')} "
                f"| {j.get('map', math.nan):.4f} "
                f"| {j.get('miou', math.nan):.4f} | {mdsq if mdsq is None else f'{mdsq:.3f}'} "
                f"| {j.get('wall_s', 0):.0f} s |"
            )
        lines.append(convergence_table(jobs, noise))
    if not lines:
        return "_(no regime measurements for this dataset yet)_\n"
    return "\n".join(lines) + "\n"
