"""docs/results.md assembled: one section per dataset from the section modules of
``docs.results_lib`` (writing its files under ``docs/results/``), the status of the runs,
the side-by-side with the paper, and the history.
"""

from __future__ import annotations

import json
import os
import re
import sys

from docs.results_lib import (
    analyses,
    claims_table,
    gpu_parallel,
    gpu_serial,
    main_comparison,
    page_files,
    regime,
    run_dirs,
    score_makeup,
    table1_scores,
    table_cells,
    trials10,
    variants,
)
from mtal_jax import jsonio, reporting


def dataset_section(
    name, run, table1_run, results_dir, composition=True, trials10_run="", link_root="results",
    gpu_run="", balanced_run="", gpu_parallel_run="", native_run="", data_root=None,
):  # fmt: skip
    """The page section of one dataset; writes its files. Returns (markdown, claims).
    ``trials10_run``: the run directory of its ``trials10`` experiment ("": none planned);
    ``link_root``: ``results_dir`` relative to the page (its figure links); ``gpu_run``: the
    main comparison's records made on a GPU (``run_dirs.GPU_RUNS``; "": none);
    ``gpu_parallel_run``: its strategies run on a GPU many processes at once
    (``run_dirs.GPU_PARALLEL_RUNS``; "": none); ``data_root``: the dataset folder the
    composition tables read, when not the main run's ``data.root``."""
    title, cfg, _, _ = run_dirs.DATASETS.get(name, (name, "configs/<config>.py", "", ""))
    d = os.path.join(results_dir, name)
    link = f"{link_root}/{name}"
    os.makedirs(d, exist_ok=True)
    records, config, seconds = run_dirs.load_run(run)
    out = [
        f"\n## {title}\n",
        "### Regime\n",
        regime.regime_section(name, results_dir, config, records),
    ]
    out += ["### What the protocol costs on this machine\n", regime.cost_section(name, results_dir)]
    rows = {}
    if records:
        page_files.write_records(records, d, run_dirs.last_cycle(config))
        summaries = reporting.summarize(records, last_cycle=run_dirs.last_cycle(config))
        pairs = jsonio.read(os.path.join(d, "paired.json"))
        ref = page_files.read_json(os.path.join(run, "reference", "metrics.json")) or {}
        out += [
            "### Main comparison\n",
            main_comparison.run_status(records, config, run_dirs.pace(run)),
            f"Command: `python train.py --config {cfg}:repro --workdir {run_dirs.shown(run)}`; "
            f"wall time {table_cells.hours(seconds)} (sum of its runs' `wall.json`; "
            f"{run_dirs.WALL_NOTE}). {len(records)} records "
            f"(`docs/results/{name}/results.json`)"
            + (
                f"; reference of this run: mAP {ref['map']:.4f}, mIoU {ref['miou']:.4f}"
                if ref
                else ""
            )
            + ". Gains: mean over cycles 1..K of the strategy minus random in the same trial, "
            "mean [95 % t interval] over trials (`paired.json`).\n",
            main_comparison.main_table(records, pairs),
            main_comparison.gains_at(records),
            main_comparison.power_table(records, pairs),
            f"\n![mDSQ]({link}/mdsq.png) ![mAP]({link}/map.png) ![mIoU]({link}/miou.png)\n",
            (
                "\nIn the plots (here and below): the mean over trials, shaded from the lowest to the "
                "highest trial (a range, not an interval); while a run is in progress, over its "
                "finished trials.\n"
            ),
            "### Label efficiency (95 % of the reference mDSQ)\n",
            main_comparison.le_table(summaries, pairs),
            (
                "\nWhere the curves do not reach 95 % of the reference within the run, the "
                "same savings are read at a level both reach: in each trial, random's mDSQ "
                "after the last cycle; the labeled fraction at which each curve first reaches "
                "it (linear between cycles; random's own can be earlier than its last cycle "
                "when its curve plateaus), and random's minus the strategy's, mean [95 % t "
                "interval] over trials (`paired.json`, `match_final`). A strategy that does not "
                "reach it in a trial reaches it somewhere between its last labeled fraction "
                "and 100 % (the whole pool): the savings count it at 100 %, which errs against "
                "it, and where that matters the reading at the other end (reached just after "
                "its last cycle) is given beside them; a verdict needs both. The last two "
                "columns read the same level on the strategies' mean curves.\n"
            ),
            main_comparison.match_final_table(summaries, pairs),
        ]
        rows.update(main_comparison.claims(records, summaries))
        if composition:
            out.append("### Rare classes and hard scenes in the selections\n")
            out.append(
                "Not in the paper, which makes no claim about them: what each strategy's "
                "selections hold. Command: `python -m mtal_jax.analysis.composition --workdir "
                f"{run_dirs.shown(run)} --out_dir {os.path.relpath(d, run_dirs.M)}` "
                "(reads the labels, not the "
                "images: seconds; this page runs it).\n"
            )
            try:
                from mtal_jax.analysis import composition as comp_lib

                comp_lib.write(comp_lib.from_workdir(run, data_root), d)
                out.append(page_files.read_text(os.path.join(d, "composition.md")))
            except (OSError, ValueError, KeyError) as e:  # no dataset here: keep the last tables
                # (said here, not on the page: this machine's paths do not belong there)
                print(f"{name}: composition not recomputed, the last tables kept "
                      f"({type(e).__name__}: {e}); --data_root {name}=<folder> names the "
                      "dataset's folder", file=sys.stderr)  # fmt: skip
                out.append(page_files.read_text(os.path.join(d, "composition.md"), ""))
    else:
        out.append(f"_(main run `{run}` not available yet)_\n")
    if trials10_run:
        text, t10_rows = trials10.trials10_section(
            name, trials10_run, run, records, results_dir, link_root
        )
        out.append(text)
        rows.update(t10_rows)
    if gpu_run:
        out.append(gpu_serial.gpu_section(name, gpu_run, run, records, config))
    if gpu_parallel_run:
        text, found = gpu_parallel.gpu_parallel_section(
            name, gpu_parallel_run, run, records, gpu_run
        )
        out.append(text)
        if found:
            page_files.write_text(
                os.path.join(d, "gpu_parallel_paired.json"), json.dumps(found, indent=1) + "\n"
            )
    t1, t1_config, t1_seconds = run_dirs.load_run(table1_run)
    out.append("\n### Table I: the three scores, both S_cls modes\n")
    if t1:
        own = len(t1)
        source = ((t1_config or {}).get("al") or {}).get("share_from", "")
        if source and os.path.normpath(source) in run_dirs.names_of(run):
            t1 = run_dirs.with_copied_runs(t1, table1_run, source, records)
        copies = table1_scores.copied_settings(t1_config)
        al = dict((t1_config or {}).get("al") or {})
        if "strategies" in al:  # the settings trained here: copies take seconds
            al["strategies"] = ",".join(
                n for n in str(al["strategies"]).split(",") if n.strip() not in copies
            )
        status = main_comparison.run_status(
            [r for r in t1 if r["strategy"] not in copies],
            dict(t1_config or {}, al=al),
            run_dirs.pace(table1_run, cycle_0=False),
        )
        if status and copies:
            status = status.rstrip("\n") + (
                f" Left out of these counts: {', '.join(copies)}, copies of the js runs of "
                "the same trial, made in seconds when the protocol's order reaches them.\n"
            )
        page_files.write_records(
            t1, os.path.join(results_dir, f"{name}_table1"), run_dirs.last_cycle(t1_config)
        )
        table, t1_rows = table1_scores.table1_section(t1, t1_config)
        rows.update(t1_rows)
        source = ((t1_config or {}).get("al") or {}).get("share_from", "")
        shared = f" --config.al.share_from={source}" if source else ""
        shared_note = (
            f" The reference, the cycle-0 models and the runs of random and ours_js_all (= "
            f"ours) are the main comparison's (`{source}`), copied (`al.share_from`); their "
            "wall time is counted there, not here. Copied runs that this run's protocol "
            "has not replayed yet (it does, in seconds, when its order reaches them) enter "
            "the table with the main comparison's records of the same runs."
            if source
            else ""
        ) + (
            " Trials: those with every cycle; a trial still running is counted apart and "
            "enters no column until its last cycle. The kl settings without S_cls (S_loc, "
            "S_seg, S_loc + S_seg) select exactly the images of their js rows (the divergence "
            "enters no score when w_cls = 0), so their runs are copies of the js runs of the "
            "same trial (`share.share_within`) and their rows repeat the js rows once the "
            "protocol's order reaches them (before that, they are empty)."
        )
        out += [status] if status else []
        out += [
            (
                f"Command: `python train.py --config {cfg}:table1 --workdir "
                f"{run_dirs.shown(table1_run)}{shared}`; wall time "
                f"{table_cells.hours(t1_seconds)}; {len(t1)} "
                f"records (`docs/results/{name}_table1/`"
                + (
                    f"; {own} written by this run, {len(t1) - own} of copied runs not replayed yet"
                    if len(t1) > own
                    else ""
                )
                + f").{shared_note}\n"
            ),
            table,
        ]
    else:
        out.append(f"_(Table I run `{table1_run}` not available yet)_\n")
    out.append(score_makeup.score_makeup_section(run, table1_run, d))
    if balanced_run:
        out.append(variants.balanced_section(name, balanced_run, results_dir, link_root))
    if native_run:
        out.append(variants.balanced_section(name, native_run, results_dir, link_root, "native"))
    t2 = os.path.join(d, "table2_boxmask_accuracy.json")
    rows["Table II: tau = 0.3 gives the most accurate BoxMasks (74.7 / 78.4 / 77.9 / 73.2)"] = (
        analyses.table2_verdict(t2)
    )
    fig6 = analyses.fig6_rows(os.path.join(d, "fig6_correlation.json"))
    fig6_models = analyses.fig6_model_rows(os.path.join(d, "fig6_models.json"))
    rows.update(fig6_models or fig6)  # between models when there, else one model's images
    trials = int((config or {}).get("al", {}).get("num_trials", 5))
    run = run_dirs.shown(run)  # runs/<name>, never this machine's path to the archive
    pools = ",".join(f"{run}/trial_{t}/cycle_0/pool.json" for t in range(trials))
    gray = " --overlay_background gray" if name == "camvid" else ""
    images = "0,40,120,200" if name == "camvid" else "0,3,5"
    last = max((r["cycle"] for r in records), default=5)
    ckpts = ",".join(f"{run}/trial_0/{s}/cycle_{last}" for s in ("random", "cald", "ours"))
    out += [
        "\n### Analyses (Table II, Figures 5 and 6)\n",
        (
            "Table II on the run's reference model, Fig. 6 on trial 0's unlabeled pool of cycle 0 "
            "(its cycle-0 model) and its readings over every trial's cycle-0 model (each on its "
            "own pool), Fig. 5 on trial 0's models after the last cycle; each takes seconds to "
            "minutes:\n"
        ),
        "```",
        (
            f"python -m mtal_jax.analysis.cli --config {cfg} --checkpoint {run}/reference "
            f"--out_dir docs/results/{name} --analyses table2"
        ),
        (
            f"python -m mtal_jax.analysis.cli --config {cfg} --checkpoint {run}/trial_0/cycle_0 "
            f"--pool {run}/trial_0/cycle_0/pool.json --out_dir docs/results/{name} --analyses fig6"
        ),
        (
            f"python -m mtal_jax.analysis.cli --config {cfg} --analyses fig6 --checkpoint "
            f"{pools.replace('/pool.json', '')} --pool {pools} --out_dir docs/results/{name}"
        ),
        (
            f"python -m mtal_jax.analysis.cli --config {cfg} --analyses fig5 --overlay_images "
            f"{images}{gray} --checkpoint {ckpts} --out_dir docs/results/{name}"
        ),
        "```",
        "\n### Table II: BoxMask accuracy\n",
        page_files.read_text(os.path.join(d, "table2_boxmask_accuracy.md")),
        "\n" + analyses.analysis_wall(d, "table2")
        if os.path.exists(os.path.join(d, "table2_boxmask_accuracy.md"))
        else "",
        analyses.image_line(
            d, link, "table2_boxmask_accuracy.png", "Table II, BoxMask mIoU against tau"
        ),
        "### Figure 6: correlation of the scores with the losses\n",
        analyses.fig6_columns_text(d),
        page_files.read_text(os.path.join(d, "fig6_correlation.md")),
        "\n" + analyses.analysis_wall(d, "fig6")
        if os.path.exists(os.path.join(d, "fig6_correlation.md"))
        else "",
        analyses.fig6_claims_table(fig6),
        analyses.image_line(d, link, "fig6_correlation.png", "Figure 6"),
        analyses.fig6_models_text(d),
        "### Figure 5: random vs CALD vs ours after the last cycle\n",
        (
            analyses.FIG5_CAPTION
            + (analyses.FIG5_GRAY if gray else "")
            + " "
            + analyses.analysis_wall(d, "fig5")
        )
        if os.path.exists(os.path.join(d, "fig5_compare.png"))
        else "",
        analyses.image_line(d, link, "fig5_compare.png", "Figure 5"),
    ]
    return "\n".join(out), rows


def build(
    runs, results_dir, src_dir, composition=True, link_root="results", gpu_runs=None,
    balanced_runs=None, gpu_parallel_runs=None, native_runs=None, data_roots=None,
):  # fmt: skip
    """The page's text; writes the per-dataset files. ``runs``: {dataset: (main, table1)} or
    {dataset: (main, table1, trials10)} ("" or a missing third: no ``trials10`` planned);
    ``link_root``: ``results_dir`` relative to the page's folder (its figure links);
    ``gpu_runs``: {dataset: the main comparison's records made on a GPU} (``run_dirs.GPU_RUNS``);
    ``balanced_runs``: {dataset: its ``balanced`` run} (``run_dirs.BALANCED``); ``native_runs``
    likewise (``run_dirs.NATIVE``);
    ``gpu_parallel_runs``: {dataset: its strategies run on a GPU in parallel}
    (``run_dirs.GPU_PARALLEL_RUNS``); ``data_roots``: {dataset: its folder} for the
    composition tables, where not the main run's ``data.root``."""
    out = [
        "# Results\n",
        (
            "The paper's experiments (Sec. IV-D, IV-E) run with this library, rebuilt by "
            "`python docs/make_results.py` from the run directories. Every comparison is paired: "
            "all strategies of a trial share its initial pool and cycle-0 model, so a strategy's "
            "gain over another is measured within each trial and averaged over trials, with a "
            "95 % t confidence interval. Verdicts: **reproduced** when the interval excludes 0 in "
            "the paper's direction, **contradicted** when it excludes 0 in the other, otherwise "
            "not distinguishable from noise at this power (each interval's width says which "
            "differences its trials can detect; under each main comparison, a table gives the "
            "gain its trials detect with 80 % power and the trials the paper's gains would "
            "need). Many claims are read at 95 % each, so the "
            "side-by-side also gives each test's p-value adjusted by Holm's method within its "
            "family of claims, and marks the verdicts that do not survive it.\n"
        ),
    ]
    missing, running = [], []
    for n, (run, t1, *rest) in runs.items():
        if n not in run_dirs.DATASETS:
            continue
        t10 = rest[0] if rest else ""
        for v, r in (("repro", run), ("table1", t1), ("trials10", t10)):
            if not r:
                continue
            records, config, _ = run_dirs.load_run(r)
            shared = f" --config.al.share_from={run_dirs.shown(run)}" if v != "repro" else ""
            if config:  # a started run: its own setting
                source = (config.get("al") or {}).get("share_from", "")
                shared = f" --config.al.share_from={source}" if source else ""
            base = (
                f"`python train.py --config {run_dirs.DATASETS[n][1]}:{v} --workdir "
                f"{run_dirs.shown(r)}{shared}"
            )
            trials = int(((config or {}).get("al") or {}).get("num_trials", 0))
            cmd = base + (trials10.command_flag(trials) if v == "trials10" else "") + "`"
            if not records and r and os.path.exists(os.path.join(r, "config.json")):
                running.append(f"{cmd} (started; no cycle finished yet)")
            elif not records:
                missing.append(cmd)
            elif main_comparison.run_status(records, config):
                running.append(f"{cmd} (started, not finished)")
            elif v == "trials10" and (queued := run_dirs.queued_num_trials(r)):
                done = int(((config or {}).get("al") or {}).get("num_trials", queued))
                if queued > done:
                    running.append(
                        f"{base} --config.al.num_trials={queued}` (queued in "
                        f"`experiments/continue.sh`: extends its {done} finished trials to "
                        f"{queued})"
                    )
    for preset, variant_runs in (("balanced", balanced_runs), ("native", native_runs)):
        for n, r in (variant_runs or {}).items():  # beyond the paper, after the main ones
            if not r or n not in run_dirs.DATASETS:
                continue
            records, config, _ = run_dirs.load_run(r)
            main_run = runs.get(n, ("",))[0]
            source = ((config or {}).get("al") or {}).get("share_from", "") or run_dirs.shown(
                main_run
            )
            shared = f" --config.al.share_from={source}" if source else ""
            cmd = (
                f"`python train.py --config {run_dirs.DATASETS[n][1]}:{preset} --workdir "
                f"{run_dirs.shown(r)}"
                f"{shared}` (beyond the paper)"
            )
            if records and main_comparison.run_status(records, config):
                running.append(f"{cmd} (started, not finished)")
            elif records:
                continue  # finished
            elif os.path.exists(os.path.join(r, "config.json")):
                running.append(f"{cmd} (started; no cycle finished yet)")
            else:
                missing.append(cmd)
    for n, par in (gpu_parallel_runs or {}).items():
        parts = (
            (page_files.read_json(os.path.join(par, "parallel.json")) or {}).get("parts", {})
            if par
            else {}
        )
        done = sum(bool(p.get("complete")) for p in parts.values())
        if parts and done < len(parts):
            running.append(
                f"`{run_dirs.shown(par)}` ({n}, on a GPU: {done} of {len(parts)} strategy-trials "
                'complete; continued lease by lease, docs/benchmarks.md "Many processes on one '
                'GPU")'
            )
    if missing or running:
        out.append(
            "**Status: "
            + ("runs in progress" if running else "runs not made yet")
            + "** (sections say what is not available yet; the regimes and costs are "
            "measured, `docs/regime.md`). Each command runs in the background and resumes "
            "exactly where it was stopped (`experiments/continue.sh` runs them one at a "
            "time, so a started experiment may wait for another); `experiments/` holds an archive of each started CPU "
            "run (records, selections, the weights its unfinished runs start from) and the GPU "
            "runs' records (the first GPU run's checkpoints stayed on its machine), and "
            "`experiments/continue.sh` continues them on any machine (`experiments/README.md`):"
            "\n\n"
            + "\n".join(f"- {m}" for m in running)
            + ("\n" if running and missing else "")
            + "\n".join(f"- {m} (not started)" for m in missing)
            + "\n"
        )
    sections, all_rows = [], {}
    for name, (run, t1, *rest) in runs.items():
        t10 = rest[0] if rest else ""
        text, rows = dataset_section(
            name, run, t1, results_dir, composition=composition, trials10_run=t10,
            link_root=link_root, gpu_run=(gpu_runs or {}).get(name, ""),
            balanced_run=(balanced_runs or {}).get(name, ""),
            native_run=(native_runs or {}).get(name, ""),
            gpu_parallel_run=(gpu_parallel_runs or {}).get(name, ""),
            data_root=(data_roots or {}).get(name),
        )  # fmt: skip
        sections.append(text)
        all_rows[name] = rows
    contents = len(out)  # the contents go here, once every section is known
    names = {n: run_dirs.DATASETS.get(n, (n,))[0] for n in all_rows}
    out += [
        "## Side by side with the paper\n",
        claims_table.verdicts_in_brief(all_rows, names),
        claims_table.side_by_side(all_rows),
    ]
    configs = {n: run_dirs.load_run(r[0])[1] for n, r in runs.items() if n in all_rows and r[0]}
    out.append(regime.convergence_summary(results_dir, configs))
    balanced = [n for n in all_rows if (balanced_runs or {}).get(n)]  # built this time
    native = [n for n in all_rows if (native_runs or {}).get(n)]
    out.append(score_makeup.makeup_summary(results_dir, list(all_rows), balanced, native))
    out.append(gpu_parallel.gpu_summary(results_dir, list(all_rows)))
    out += sections
    history = os.path.join(src_dir, "history.md")
    if os.path.exists(history):
        out += ["\n## History\n", page_files.read_text(history)]
    out.insert(contents, table_of_contents("\n".join(out[contents:])))
    return "\n".join(out) + "\n"


def heading_anchor(title, seen):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to
    hyphens, ``-1``, ``-2`` ... after a repeated one (``seen`` counts them)."""
    slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
    n = seen.get(slug, 0)
    seen[slug] = n + 1
    return slug if n == 0 else f"{slug}-{n}"


def table_of_contents(text):
    """A nested list of the ``##`` and ``###`` headings of ``text``, linked to their anchors."""
    seen, lines, fenced = {}, ["Contents:\n"], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith(("## ", "### ")):
            continue
        level, _, title = line.partition(" ")
        anchor = heading_anchor(title, seen)
        indent = "  " if level == "###" else ""
        lines.append(f"{indent}- [{title.replace('`', '')}](#{anchor})")
    return "\n".join(lines) + "\n" if len(lines) > 1 else ""
