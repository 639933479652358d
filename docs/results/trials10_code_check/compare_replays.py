"""Compares replays of one recorded cycle run: the same run trained again by other code or
on another machine.

  python docs/results/trials10_code_check/compare_replays.py \
      experiments/trials10_camvid/trial_0/random/cycle_1 \
      the_current_code=/tmp/replay/new/trial_0/random/cycle_1 \
      the_code_of_2026-12-02=/tmp/replay/old/trial_0/random/cycle_1 \
      > docs/results/trials10_code_check/replay.json

Each run directory holds ``selection.json`` (the images it trained on),
``logs/metrics.jsonl`` (the training losses every 50 steps) and ``metrics.json`` (its
evaluation). Writes JSON to stdout: per run, its evaluation, its first logged losses, and
against the recorded run (the first argument) and each other: whether the selections are
the same, the logged losses equal to the bit, the evaluations equal.
"""

import json
import os
import sys

LOSSES = ("train/total", "train/det_heatmap", "train/det_size", "train/det_offset", "train/seg")


def read(run_dir: str) -> dict:
    """A run's selection, logged training losses (by step) and evaluation."""
    with open(os.path.join(run_dir, "selection.json"), encoding="utf-8") as f:
        selected = json.load(f)["selected"]
    losses = {}
    with open(os.path.join(run_dir, "logs", "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if "train/total" in row:
                losses[row["step"]] = [row[k] for k in LOSSES]
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    return {"selected": selected, "losses": losses, "metrics": metrics}


def summary(run: dict) -> dict:
    first = min(run["losses"])
    return {
        "map": run["metrics"]["map"],
        "ap50": run["metrics"]["ap50"],
        "miou": run["metrics"]["miou"],
        "first_logged_step": first,
        "losses_at_first_logged_step": dict(zip(LOSSES, run["losses"][first], strict=True)),
    }


def same(a: dict, b: dict) -> dict:
    return {
        "same_selection": a["selected"] == b["selected"],
        "losses_equal_to_the_bit": a["losses"] == b["losses"],
        "logged_steps": sorted(set(a["losses"]) & set(b["losses"])),
        "evaluation_equal": all(a["metrics"][k] == b["metrics"][k] for k in ("map", "miou")),
    }


def main(recorded_dir: str, *named: str) -> None:
    runs = {"recorded": read(recorded_dir)}
    for item in named:
        name, _, path = item.partition("=")
        runs[name] = read(path)
    names = list(runs)
    out = {
        "recorded": recorded_dir,
        "runs": {k: summary(v) for k, v in runs.items()},
        "pairs": {
            f"{a} vs {b}": same(runs[a], runs[b])
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        },
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
