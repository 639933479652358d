"""Rebuilds docs/results.md and docs/results/<dataset>/ from the reproduction's runs.

  python docs/make_results.py        # the run directories below; missing ones are skipped
                                     # (a missing runs/<name> is read from its archive,
                                     # experiments/<name>, when there is one)
  python docs/make_results.py --synthetic runs/repro_synthetic --camvid runs/repro_camvid \
      --synthetic_table1 runs/table1_synthetic --camvid_table1 runs/table1_camvid \
      --camvid_trials10 runs/trials10_camvid

Reads, per dataset (``synthetic``, ``camvid``):

* the main run (``python train.py --config configs/<default|camvid>.py:repro``):
  ``results.json``, ``config.json``, the ``wall.json`` of each run and every
  ``selection.json`` (partial runs work: every table states its trials);
* the Table I run (``...:table1``);
* where planned (``run_dirs.TRIALS10``), the ``trials10`` run: ours against random over 10 trials;
* ``docs/results/<dataset>/{reference,noise_floor,regime}.json`` (``bench/regime.py
  --summarize``) for the regime;
* ``docs/results/<dataset>/table2_boxmask_accuracy.md``, ``fig6_correlation.md`` and
  ``fig5_compare.png`` (``python -m mtal_jax.analysis.cli``, commands in the page);
* ``docs/results_src/history.md``: the superseded results, short (hand-written).

Writes ``docs/results/<dataset>/`` (results.json, summary.md/json, paired.json, plots,
composition.json/md, score_diagnostics.json; ``<dataset>_table1/`` and
``<dataset>_trials10/`` likewise; ``<dataset>_balanced/`` and ``<dataset>_native/`` also
comparisons.json) and ``docs/results.md``. Every verdict is computed from a 95 % t
interval over trials of a paired difference (``mtal_jax.paired``): "reproduced" when it excludes 0 in the paper's
direction, "contradicted" when it excludes 0 in the other, else "not distinguishable from
noise at this power". The side-by-side adds each test's p-value and its Holm adjustment
within the claim's family (``significance.holm``, ``claims_table.claim_family``) and marks a
verdict that does not survive the adjustment.

The page is built by ``docs/results_lib/``, one module per part of it (``results_page``
assembles them); this script is its command line.
"""

from __future__ import annotations

import argparse
import os
import sys

M = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if M not in sys.path:
    sys.path.insert(0, M)

from docs.results_lib import page_files, results_page, run_dirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, (_, _, run, t1) in run_dirs.DATASETS.items():
        parser.add_argument(
            f"--{name}", default=run_dirs.default_run(run), help=f"main run of {name}"
        )
        parser.add_argument(
            f"--{name}_table1", default=run_dirs.default_run(t1), help=f"Table I run of {name}"
        )
        t10 = run_dirs.TRIALS10.get(name, "")
        parser.add_argument(
            f"--{name}_trials10",
            default=run_dirs.default_run(t10) if t10 else "",
            help=f"run of {name}'s trials10 experiment (ours vs random, 10 trials; '': none)",
        )
        if name in run_dirs.BALANCED:
            parser.add_argument(
                f"--{name}_balanced",
                default=run_dirs.default_run(run_dirs.BALANCED[name]),
                help=f"run of {name}'s balanced experiment (not in the paper; '': none)",
            )
        if name in run_dirs.NATIVE:
            parser.add_argument(
                f"--{name}_native",
                default=run_dirs.default_run(run_dirs.NATIVE[name]),
                help=f"run of {name}'s native experiment (not in the paper; '': none)",
            )
        if name in run_dirs.GPU_RUNS:
            parser.add_argument(
                f"--{name}_gpu",
                default=run_dirs.GPU_RUNS[name]
                if os.path.exists(os.path.join(M, run_dirs.GPU_RUNS[name]))
                else "",
                help=f"the main comparison of {name} made on a GPU ('': none)",
            )
        if name in run_dirs.GPU_PARALLEL_RUNS:
            par = run_dirs.GPU_PARALLEL_RUNS[name]
            parser.add_argument(
                f"--{name}_gpu_parallel",
                default=par if os.path.exists(os.path.join(M, par)) else "",
                help=f"the strategies of {name} run on a GPU in parallel ('': none)",
            )
    parser.add_argument("--results_dir", default=os.path.join(M, "docs", "results"))
    parser.add_argument("--out", default=os.path.join(M, "docs", "results.md"))
    parser.add_argument("--src_dir", default=os.path.join(M, "docs", "results_src"))
    parser.add_argument("--no_composition", action="store_true", help="skip the dataset pass")
    args = parser.parse_args(argv)
    from mtal_jax import runtime

    runtime.setup()  # TFDS's config dump and the OpenCV hint (composition) hidden
    runs = {
        n: (getattr(args, n), getattr(args, f"{n}_table1"), getattr(args, f"{n}_trials10"))
        for n in run_dirs.DATASETS
    }
    link_root = os.path.relpath(args.results_dir, os.path.dirname(os.path.abspath(args.out)))
    text = results_page.build(
        runs, args.results_dir, args.src_dir, composition=not args.no_composition,
        link_root=link_root.replace(os.sep, "/"),
        gpu_runs={n: getattr(args, f"{n}_gpu") for n in run_dirs.GPU_RUNS},
        balanced_runs={n: getattr(args, f"{n}_balanced") for n in run_dirs.BALANCED},
        native_runs={n: getattr(args, f"{n}_native") for n in run_dirs.NATIVE},
        gpu_parallel_runs={
            n: getattr(args, f"{n}_gpu_parallel") for n in run_dirs.GPU_PARALLEL_RUNS
        },
    )  # fmt: skip
    page_files.write_text(args.out, text)
    print("written", args.out)


if __name__ == "__main__":
    main()
