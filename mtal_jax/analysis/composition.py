"""What each strategy selected: the share of rare classes and hard scenes.

  python -m mtal_jax.analysis.composition --workdir runs/repro_synthetic [--out_dir DIR]

Not one of the paper's analyses (docs/results.md). This module is the shell: it reads an
experiment directory (its selections, and the pool of its ``config.json``), computes
``selection_shares.composition`` (definitions there) and writes the JSON and the Markdown of
``composition_tables``. Labels are read without decoding images (``data.fields``); the
selections come from each cycle's ``selection.json``. Writes ``composition.json`` and
``composition.md`` to ``--out_dir`` (default: the workdir).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtal_jax import jsonio
from mtal_jax.analysis import composition_tables, selection_shares
from mtal_jax.data import catalog, fields


def read_selections(workdir: str) -> list[dict]:
    """Every ``trial_<t>/<strategy>/cycle_<k>/selection.json`` of ``workdir``, in trial,
    strategy directory and cycle order."""
    paths = glob.glob(os.path.join(workdir, "trial_*", "*", "cycle_*", "selection.json"))

    def key(path):
        parts = path.split(os.sep)
        return int(parts[-4].split("_")[1]), parts[-3], int(parts[-2].split("_")[1])

    return [jsonio.read(p) for p in sorted(paths, key=key)]


def pool_labels(source: Any, num_det_classes: int) -> tuple[np.ndarray, list[str]]:
    """([N, C] int64 boxes per image and class, [N] image ids) of a data source, read
    without decoding images."""
    n = len(source)
    counts = np.zeros((n, num_det_classes), np.int64)
    for i, labels in enumerate(fields.iter_field(source, np.arange(n), "box_labels", ())):
        labels = np.asarray(labels, np.int64).reshape(-1)
        labels = labels[(labels >= 0) & (labels < num_det_classes)]
        counts[i] = np.bincount(labels, minlength=num_det_classes)
    return counts, fields.image_ids(source, np.arange(n))


def from_workdir(workdir: str, data_root: str | None = None) -> dict[str, Any]:
    """``selection_shares.composition`` of an experiment directory: its selections, and the
    pool of its ``config.json`` (the dataset is opened as the run opened it, from
    ``data_root`` instead of its ``data.root`` when given: the same files elsewhere).

    Raises:
      FileNotFoundError: no ``config.json`` in ``workdir``.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not an experiment directory (no config.json)")
    d = jsonio.read(path)["data"]
    dataset = catalog.load(
        d["name"], data_dir=os.path.expanduser(d["data_dir"]),
        root=d.get("root", "") if data_root is None else data_root,
        builder_kwargs=dict(d.get("builder_kwargs") or {}),
    )  # fmt: skip
    source = dataset.sources[d["train_split"]]
    counts, ids = pool_labels(source, len(dataset.det_classes))
    initial = {}
    for path in glob.glob(os.path.join(workdir, "trial_*", "cycle_0", "pool.json")):
        trial = int(path.split(os.sep)[-3].split("_")[1])
        initial[trial] = jsonio.read(path)["labeled_ids"]
    return selection_shares.composition(
        read_selections(workdir), counts, selection_shares.hard_flags(ids, d["name"]),
        dataset.det_classes, selection_shares.hard_definition(d["name"]),
        initial=initial or None,
    )  # fmt: skip


def write(comp: dict[str, Any], out_dir: str) -> list[str]:
    """Writes ``composition.json`` and ``composition.md`` into ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, "composition.json")
    md_path = os.path.join(out_dir, "composition.md")
    jsonio.write_atomic(json_path, comp)
    text = composition_tables.markdown(comp)
    jsonio.write_file_atomic(md_path, lambda f: f.write(text))
    return [json_path, md_path]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mtal_jax.analysis.composition --workdir DIR [--out_dir DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="experiment directory (train.py's)")
    parser.add_argument("--out_dir", default="", help="output directory (default: workdir)")
    parser.add_argument(
        "--data_root", default=None, help="the dataset folder (default: the run's data.root)"
    )
    args = parser.parse_args(argv)
    for path in write(from_workdir(args.workdir, args.data_root), args.out_dir or args.workdir):
        print(path)


if __name__ == "__main__":
    main()
