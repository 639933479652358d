"""Rebuilds docs/results.md and docs/results/<dataset>/ from the reproduction's runs.

  python docs/make_results.py        # the run directories below; missing ones are skipped
                                     # (a missing runs/<name>, or one behind its archive,
                                     # is read from experiments/<name>: a clean checkout
                                     # rebuilds the page from the archives, no restore)
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

from docs.results_lib import page_files, run_dirs  # results_page (JAX) in _main


def _resolve(path, cwd):
    """A path given on the command line (relative to ``cwd``), as the page names it:
    relative to the repository root when inside it, else absolute; "" stays ""."""
    if not path:
        return path
    return run_dirs.shown_path(os.path.normpath(os.path.join(cwd, os.path.expanduser(path))))


def main(argv=None):
    cwd = os.getcwd()
    os.chdir(M)  # runs/, experiments/ and the configs' data roots are the repository's
    try:
        _main(argv, cwd)
    finally:
        os.chdir(cwd)


def _main(argv, cwd):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0]
        + " In a clean checkout it reads the committed archives (experiments/<name>), "
        "without a restore; paths are relative to the current folder.",
    )
    defaults = {}  # option: its default, or a run whose archive may stand in (read lazily)

    def add(option, default, help_text, run=False):
        defaults[option] = (default, run)
        shown = (
            f"{default}, or its archive experiments/{os.path.basename(default)}"
            if run
            else (repr(default))
        )
        parser.add_argument(f"--{option}", default=None, help=f"{help_text} (default: {shown})")

    for name, (_, _, run, t1) in run_dirs.DATASETS.items():
        add(name, run, f"main run of {name}", run=True)
        add(f"{name}_table1", t1, f"Table I run of {name}", run=True)
        t10 = run_dirs.TRIALS10.get(name, "")
        add(
            f"{name}_trials10",
            t10,
            f"run of {name}'s trials10 experiment (ours vs random, 10 trials; '': none)",
            run=bool(t10),
        )
        if name in run_dirs.BALANCED:
            add(
                f"{name}_balanced",
                run_dirs.BALANCED[name],
                f"run of {name}'s balanced experiment (not in the paper; '': none)",
                run=True,
            )
        if name in run_dirs.NATIVE:
            add(
                f"{name}_native",
                run_dirs.NATIVE[name],
                f"run of {name}'s native experiment (not in the paper; '': none)",
                run=True,
            )
        if name in run_dirs.GPU_RUNS:
            gpu = run_dirs.GPU_RUNS[name]
            add(
                f"{name}_gpu",
                gpu if os.path.exists(gpu) else "",
                f"the main comparison of {name} made on a GPU ('': none)",
            )
        if name in run_dirs.GPU_PARALLEL_RUNS:
            par = run_dirs.GPU_PARALLEL_RUNS[name]
            add(
                f"{name}_gpu_parallel",
                par if os.path.exists(par) else "",
                f"the strategies of {name} run on a GPU in parallel ('': none)",
            )
    add("results_dir", os.path.join("docs", "results"), "the page's files (per dataset)")
    add("out", os.path.join("docs", "results.md"), "the page")
    add("src_dir", os.path.join("docs", "results_src"), "hand-written parts (history.md)")
    parser.add_argument(
        "--no_composition",
        action="store_true",
        help="skip the dataset pass of the composition tables (the last tables are kept)",
    )
    parser.add_argument(
        "--data_root",
        action="append",
        default=[],
        metavar="DATASET=FOLDER",
        help="the dataset folder of a main run for the composition tables (e.g. "
        "camvid=/data/camvid), when not at its config's data.root (read from the "
        "repository root)",
    )
    args = parser.parse_args(argv)
    for option in ("results_dir", "out", "src_dir"):  # '' means "none" for runs only
        if getattr(args, option) == "":
            parser.error(f"--{option} needs a path")
    data_roots = {}
    for item in args.data_root:
        name, sep, folder = item.partition("=")
        if not sep or name not in run_dirs.DATASETS or not folder:
            parser.error(f"--data_root {item!r}: expected DATASET=FOLDER, DATASET one of "
                         f"{', '.join(run_dirs.DATASETS)}")  # fmt: skip
        data_roots[name] = os.path.normpath(os.path.join(cwd, os.path.expanduser(folder)))
    for option, (default, run) in defaults.items():
        value = getattr(args, option)
        if value is not None:
            setattr(args, option, _resolve(value, cwd))
        else:  # only the runs not given are looked up (and their archives checked)
            setattr(args, option, run_dirs.default_run(default) if run else default)
    from docs.results_lib import results_page
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
        data_roots=data_roots,
    )  # fmt: skip
    page_files.write_text(args.out, text)
    print("written", os.path.join(M, args.out) if not os.path.isabs(args.out) else args.out)


if __name__ == "__main__":
    main()
