"""Rare classes and hard scenes among each strategy's selections: counts, shares, and
paired differences against random (host side, pure numpy).

Not one of the paper's analyses (it makes no claim about rare classes or hard scenes); the
reproduction reports it to show what each strategy's selections hold (docs/results.md).
``analysis.composition`` reads an experiment directory into ``composition`` and writes its
files; ``analysis.composition_tables`` renders them as Markdown.

Definitions (over the experiment's pool, the training split of ``workdir/config.json``):

* **rare classes**: the detection classes whose number of ground-truth boxes in the pool is
  strictly below the median of the per-class box counts (synthetic default: bus, cyclist
  and traffic sign; CamVid: the rarest of car, pedestrian, bicyclist);
* **rare-class box share**: boxes of rare classes / all boxes, over the selected images;
* **rare-class image share**: selected images with at least one rare-class box / selected
  images;
* **hard scenes**: on the synthetic data, images whose ``image_id`` ends with a hard
  condition (``_night``, ``_fog``, ``_glare``: ``data.synthetic_classes.CONDITIONS``); on CamVid,
  the dusk frames: sequence 0001TP (Brostow et al. 2009 recorded it at dusk; its frames'
  mean gray level is 60 against 108-137 for the daytime sequences 0006R0, 0016E5 and
  Seq05VD, measured on this project's 240x180 copy), ``HARD_SEQUENCES``. A dataset with
  neither has no such flag, and its hard-scene share is ``None`` (n/a).

Each share is given per strategy and cycle (summed over trials) and overall (cycles 1..K,
all trials), beside the same share over the whole pool (what random selection gets in
expectation), and paired against random: in each trial both ran, the strategy's share minus
random's over the cycles both have, with a 95 % t interval over trials (``significance``).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtal_jax import significance
from mtal_jax.data import synthetic_classes

HARD_CONDITIONS = tuple(c for c in synthetic_classes.CONDITIONS if c != "day")
# Real datasets whose hard scenes are whole sequences, named by the image id's prefix:
# {data.name: (what the hard scenes are, image-id prefixes)}.
HARD_SEQUENCES = {"camvid": ("dusk (sequence 0001TP)", ("0001TP_",))}
SHARES = ("rare_box_share", "rare_image_share", "hard_share")


def rare_classes(pool_counts: Sequence[float]) -> np.ndarray:
    """[C] bool: classes whose pool box count is strictly below the median count.

    Examples:
      >>> rare_classes([5003, 1009, 541, 770, 395, 476]).tolist()  # median 655.5
      [False, False, True, False, True, True]
    """
    counts = np.asarray(pool_counts, np.float64)
    if counts.ndim != 1 or not len(counts):
        raise ValueError(f"pool_counts must be a non-empty [C] vector, got shape {counts.shape}")
    return counts < np.median(counts)


def hard_flags(image_ids: Sequence[str], dataset: str = "") -> np.ndarray | None:
    """[N] bool: the image is a hard scene; None when the ids carry no condition.

    Args:
      image_ids: [N] image ids of the pool.
      dataset: ``data.name``; one of ``HARD_SEQUENCES`` flags the ids with its prefixes,
        any other the ids whose last ``_`` field is a hard one of
        ``synthetic_classes.CONDITIONS``
        (None unless every id ends with a condition).
    """
    if dataset in HARD_SEQUENCES:
        prefixes = HARD_SEQUENCES[dataset][1]
        return np.asarray([str(i).startswith(prefixes) for i in image_ids], bool)
    last = [str(i).rsplit("_", 1)[-1] for i in image_ids]
    if not last or any(c not in synthetic_classes.CONDITIONS for c in last):
        return None
    return np.asarray([c in HARD_CONDITIONS for c in last], bool)


def counts_of(
    image_counts: np.ndarray, rare: np.ndarray, hard: np.ndarray | None, indices: Sequence[int]
) -> dict[str, int | None]:
    """Counts over the images ``indices``.

    Args:
      image_counts: [N, C] boxes per image and detection class.
      rare: [C] bool rare classes.
      hard: [N] bool hard scenes, or None.
      indices: [S] pool indices (a selection).

    Returns:
      ``{"images", "boxes", "rare_boxes", "rare_images", "hard_images"}`` (the last None
      without ``hard``).
    """
    idx = np.asarray(indices, np.int64).reshape(-1)
    sub = image_counts[idx]  # [S, C]
    rare_per_image = sub[:, rare].sum(axis=1)  # [S]
    return {
        "images": len(idx),
        "boxes": int(sub.sum()),
        "rare_boxes": int(rare_per_image.sum()),
        "rare_images": int((rare_per_image > 0).sum()),
        "hard_images": None if hard is None else int(hard[idx].sum()),
    }


def shares(counts: dict[str, int | None]) -> dict[str, Any]:
    """``counts`` plus ``rare_box_share``, ``rare_image_share`` and ``hard_share`` (NaN
    without boxes / images, None without hard flags)."""
    n, boxes, hard = counts["images"], counts["boxes"], counts["hard_images"]
    return {
        **counts,
        "rare_box_share": counts["rare_boxes"] / boxes if boxes else float("nan"),
        "rare_image_share": counts["rare_images"] / n if n else float("nan"),
        "hard_share": None if hard is None else (hard / n if n else float("nan")),
    }


def _add(total: dict, counts: dict) -> dict:
    if not total:
        return dict(counts)
    return {k: None if v is None else v + counts[k] for k, v in total.items()}


def hard_definition(dataset: str) -> str:
    """What ``hard_flags`` calls a hard scene on ``dataset`` (words for the tables)."""
    if dataset in HARD_SEQUENCES:
        return HARD_SEQUENCES[dataset][0]
    return ", ".join(HARD_CONDITIONS)


def composition(
    selections: Sequence[dict],
    image_counts: np.ndarray,
    hard: np.ndarray | None,
    class_names: Sequence[str],
    hard_words: str = ", ".join(HARD_CONDITIONS),
    initial: dict[Any, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Per-strategy composition of the ``selections`` (``selection.json`` objects with
    ``strategy``, ``trial``, ``cycle`` and ``selected``) against the pool.

    Args:
      selections: the selection records.
      image_counts: [N, C] boxes per pool image and detection class.
      hard: [N] bool hard scenes, or None (n/a).
      class_names: [C] detection class names.
      hard_words: what ``hard`` flags, in words (``hard_definition(dataset)``).
      initial: ``{trial: pool indices}`` labeled at cycle 0 (each trial's
        ``cycle_0/pool.json``), or None: gives ``taken`` and the first cycle's comparison.

    Returns:
      ``{"rare_classes": [names], "pool_class_counts": {name: boxes}, "hard_available",
      "hard_definition",
      "pool": shares, "strategies": {name: {"trials": [...], "overall": shares,
      "per_cycle": {cycle: shares}}}, "against_random": {name: {share: {"mean", "ci95",
      "trials", "p_value"}, "per_trial": [{"trial", share: difference}]}},
      "against_random_first": the same over the first selection (cycle 1) only}`` (the
      paired differences; empty without random selections; ``hard_share`` without hard
      flags is left out). With ``initial``, each strategy also has ``taken``: of the images
      cycle 0 left unlabeled, the share it selected over all cycles (``images``), and of
      those with a rare class (``rare_images``) and the hard scenes (``hard_images``), mean
      over trials: where ``hard_images`` is 1 the overall shares meet a ceiling (every hard
      scene available was taken) and the first cycle's comparison says more.
    """
    image_counts = np.asarray(image_counts)
    pool_counts = image_counts.sum(axis=0)
    rare = rare_classes(pool_counts)
    n = len(image_counts)
    out: dict[str, Any] = {
        "rare_classes": [c for c, r in zip(class_names, rare) if r],
        "rare_definition": "detection classes with fewer pool boxes than the median per-class count",
        "pool_class_counts": {c: int(v) for c, v in zip(class_names, pool_counts)},
        "hard_available": hard is not None,
        "hard_definition": hard_words if hard is not None else None,
        "pool": shares(counts_of(image_counts, rare, hard, np.arange(n))),
        "strategies": {},
    }
    per: dict[str, dict] = collections.defaultdict(
        lambda: {"trials": set(), "overall": {}, "per_cycle": {}}
    )
    by_trial: dict[str, dict[Any, dict[int, dict]]] = collections.defaultdict(dict)
    for sel in sorted(selections, key=lambda s: (s["strategy"], s["trial"], s["cycle"])):
        c = counts_of(image_counts, rare, hard, sel["selected"])
        by_trial[sel["strategy"]].setdefault(sel["trial"], {})[sel["cycle"]] = c
        entry = per[sel["strategy"]]
        entry["trials"].add(sel["trial"])
        entry["overall"] = _add(entry["overall"], c)
        entry["per_cycle"][sel["cycle"]] = _add(entry["per_cycle"].get(sel["cycle"], {}), c)
    order = list(dict.fromkeys(s["strategy"] for s in selections))
    for name in order:
        entry = per[name]
        out["strategies"][name] = {
            "trials": sorted(entry["trials"]),
            "overall": shares(entry["overall"]),
            "per_cycle": {k: shares(v) for k, v in sorted(entry["per_cycle"].items())},
        }
    keys = SHARES if hard is not None else SHARES[:2]
    out["against_random"] = {
        name: against(by_trial[name], by_trial["random"], keys)
        for name in order
        if name != "random" and "random" in by_trial
    }
    first = min((s["cycle"] for s in selections), default=1)
    out["against_random_first"] = {
        name: against(by_trial[name], by_trial["random"], keys, cycles=(first,))
        for name in order
        if name != "random" and "random" in by_trial
    }
    if initial is not None:
        for name in order:
            out["strategies"][name]["taken"] = _taken(
                [sel for sel in selections if sel["strategy"] == name], initial,
                image_counts, rare, hard,
            )  # fmt: skip
    return out


def _taken(selections, initial, image_counts, rare, hard) -> dict[str, float | None]:
    """Mean over trials of the share of what cycle 0 left unlabeled (all images, those with
    a rare class, hard scenes) that ``selections`` (one strategy's) took over all cycles."""
    n = len(image_counts)
    has_rare = image_counts[:, rare].sum(axis=1) > 0
    groups = {"images": np.ones(n, bool), "rare_images": has_rare, "hard_images": hard}
    per_trial: dict[str, list[float]] = collections.defaultdict(list)
    trials = sorted({sel["trial"] for sel in selections}, key=str)
    for trial in trials:
        if trial not in initial:
            continue
        left = np.ones(n, bool)
        left[np.asarray(initial[trial], np.int64)] = False
        chosen = np.zeros(n, bool)
        for sel in selections:
            if sel["trial"] == trial:
                chosen[np.asarray(sel["selected"], np.int64)] = True
        for key, group in groups.items():
            if group is not None and (left & group).any():
                per_trial[key].append(float((chosen & left & group).sum() / (left & group).sum()))
    return {key: (float(np.mean(per_trial[key])) if per_trial.get(key) else None) for key in groups}


def against(
    mine: dict[Any, dict[int, dict]],
    base: dict[Any, dict[int, dict]],
    keys: Sequence[str],
    cycles: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Paired differences of shares: in each trial of both, the shares of ``mine`` minus
    those of ``base`` over the cycles both have selected in, and a t interval over trials.

    Args:
      mine, base: ``{trial: {cycle: counts_of(...)}}`` of a strategy and of random.
      keys: the shares compared (``SHARES``).
      cycles: only these cycles (None: all).

    Returns:
      ``{key: significance.t_interval(...), "per_trial": [{"trial", key: difference}]}``.
    """
    per_trial = []
    for trial in sorted(set(mine) & set(base)):
        both = sorted(set(mine[trial]) & set(base[trial]))
        both = [c for c in both if cycles is None or c in cycles]
        if not both:
            continue
        a = shares(functools.reduce(_add, (mine[trial][c] for c in both), {}))
        b = shares(functools.reduce(_add, (base[trial][c] for c in both), {}))
        per_trial.append({"trial": trial, **{k: a[k] - b[k] for k in keys}})
    out: dict[str, Any] = {k: significance.t_interval([p[k] for p in per_trial]) for k in keys}
    out["per_trial"] = per_trial
    return out
