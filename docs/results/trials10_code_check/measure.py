"""Does today's ``ours`` score the first trials' pools as their own code did?

Run from the repository root (about 30 s per trial on 2 CPU cores):

  python docs/results/trials10_code_check/measure.py configs/camvid.py:trials10 \
      experiments/repro_camvid experiments/trials10_camvid \
      docs/results/trials10_code_check/rescore.json

For every trial whose cycle-0 weights the share source's archive keeps
(``<source>/trial_<t>/cycle_0/weights.npz``), this checkout's ``ours`` scores the
unlabeled pool of that trial's first selection (the images not in
``<experiment>/trial_<t>/cycle_0/pool.json``) with that model, through
``select_cli.run`` as ``select.py`` does, and compares the scores with those the trial
recorded when it selected (``<experiment>/trial_<t>/ours/cycle_1/scores.npz``, written
by the code of its own session) and the top of the ranking with the images it selected
(``selection.json``). Writes one JSON record per trial: Spearman's rank correlation of
the two scores, their largest absolute difference, and how many of the recorded
selection today's code would also select.
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.getcwd())  # this checkout's mtal_jax and configs

from mtal_jax import runtime

runtime.configure_host_devices()

import numpy as np
from scipy import stats

from mtal_jax import config_file
from mtal_jax.al import select_cli


def rescore(config, source: str, experiment: str, trial: int) -> dict:
    """One trial's comparison (the record described in the module docstring)."""
    cycle_1 = os.path.join(experiment, f"trial_{trial}", "ours", "cycle_1")
    recorded = np.load(os.path.join(cycle_1, "scores.npz"))
    with open(os.path.join(cycle_1, "selection.json"), encoding="utf-8") as f:
        selected = json.load(f)["selected"]
    scored = np.flatnonzero(recorded["scored"])
    with tempfile.TemporaryDirectory() as tmp:
        rows = select_cli.run(
            config,
            strategy="ours",
            checkpoint=os.path.join(source, f"trial_{trial}", "cycle_0"),
            budget=len(scored),
            labeled_file=os.path.join(experiment, f"trial_{trial}", "cycle_0", "pool.json"),
            output=os.path.join(tmp, "selection.json"),
            progress=False,
        )
    today = {row["index"]: row["score"] for row in rows}
    if sorted(today) != scored.tolist():
        raise ValueError(f"trial {trial}: today's pool differs from the recorded one")
    old = recorded["score"][scored]
    new = np.array([today[i] for i in scored])
    top = {row["index"] for row in rows[: len(selected)]}
    return {
        "trial": trial,
        "pool": len(scored),
        "spearman": float(stats.spearmanr(old, new)[0]),
        "max_abs_difference": float(np.abs(old - new).max()),
        "budget": len(selected),
        "selected_again": len(top & set(selected)),
    }


def main(config_path: str, source: str, experiment: str, out: str) -> None:
    runtime.setup()
    config = config_file.load(config_path)
    trials = sorted(
        int(name.split("_")[1])
        for name in os.listdir(source)
        if name.startswith("trial_")
        and os.path.exists(os.path.join(source, name, "cycle_0", "weights.npz"))
        and os.path.exists(os.path.join(experiment, name, "ours", "cycle_1", "scores.npz"))
    )
    records = [rescore(config, source, experiment, t) for t in trials]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
    for r in records:
        print(
            f"trial {r['trial']}: Spearman {r['spearman']:.4f}, max |difference| "
            f"{r['max_abs_difference']:.3f}, selected again {r['selected_again']}/{r['budget']}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:5])
