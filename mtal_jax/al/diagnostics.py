"""Degeneracy diagnostics of the consistency scores over a scored pool (host-side NumPy).

The combined score of ``ours`` is a sum of three terms per image (paper Algorithm 1):
``score = w_seg S_seg + w_loc S_loc* + w_cls S_cls*``, where ``*`` is the box with the
largest S_box (``s_loc_best`` / ``s_cls_best`` of
``scores.consistency_score.make_score_fn``). A score carries no signal when one term is
constant on the pool, or when one term alone decides the ranking. Per component this module
reports:

* ``fraction_constant``: the fraction of images at the component's degenerate value
  (S_loc = 1: every BoxMask pixel disagrees or the BoxMask is empty; S_cls = 0; S_seg = 0).
  S_loc and S_cls count over the images with at least one scored box (an image without one
  has no S_loc or S_cls; ``fraction_without_box`` reports those), S_seg over all images.
* ``variance_share``: ``Cov(term, score) / Var(score)``; the shares of the three terms sum
  to 1 (a term's contribution to the combined score's variance).
* ``r2``: the squared Pearson correlation of the term with the combined score.

Also ``fraction_best_box_empty``: among the images with a scored box, the fraction whose
best box has S_loc = 1 and S_cls = 0, i.e. (up to exact ties) an empty BoxMask: the crop
segmentation sees no pixel of the detected class above tau inside the box.

A warning is raised (returned and logged by the shell) when a component explains more
than ``VARIANCE_LIMIT`` of the variance (only when more than one component is weighted:
a single-component ablation is that component alone by design) or is constant on more than
``CONSTANT_LIMIT`` of the pool, or when more than ``CONSTANT_LIMIT`` of the pool has no
scored box.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from mtal_jax import jsonio, selection
from mtal_jax.scores import consistency_score

log = logging.getLogger(__name__)

# (name, score-dict key, degenerate value, index into the weights (w_loc, w_cls, w_seg))
COMPONENTS = (
    ("S_loc", "s_loc_best", 1.0, 0),
    ("S_cls", "s_cls_best", 0.0, 1),
    ("S_seg", "s_seg", 0.0, 2),
)
VARIANCE_LIMIT = 0.9
CONSTANT_LIMIT = 0.9
FILENAME = "diagnostics.json"


def has_components(scores: Mapping[str, np.ndarray]) -> bool:
    """Whether ``scores`` holds the components of ``ours`` (other strategies have none)."""
    return all(key in scores for _, key, _, _ in COMPONENTS) and "score" in scores


def score_diagnostics(
    scores: Mapping[str, np.ndarray],
    *,
    weights: Sequence[float] = consistency_score.DEFAULT_WEIGHTS,
    mask: np.ndarray | None = None,
) -> dict:
    """Degeneracy diagnostics of one scored pool (see the module docstring).

    Args:
      scores: name -> [N] per-image values of ``ours``' score function (``score``,
        ``s_seg``, ``s_loc_best``, ``s_cls_best``, optionally ``num_boxes``); NaN rows
        (not scored) are skipped.
      weights: (w_loc, w_cls, w_seg) the score was computed with.
      mask: optional [N] bool, the images to include (e.g. the unlabeled pool).

    Returns:
      JSON-ready dict: ``num_images``, ``score_std``, ``fraction_without_box``,
      ``components`` (name -> ``degenerate_value``, ``fraction_constant``, ``mean``, ``std``,
      ``variance_share``, ``r2``; NaN as None where undefined) and ``warnings`` (list of str).

    Raises:
      ValueError: when ``scores`` lacks a component.
    """
    if not has_components(scores):
        raise ValueError(
            f"scores hold {sorted(scores)}; need score and {[k for _, k, _, _ in COMPONENTS]}"
        )
    total = np.asarray(scores["score"], np.float64)
    rows = np.isfinite(total) if mask is None else (np.isfinite(total) & np.asarray(mask, bool))
    total = total[rows]
    num_boxes = (
        np.asarray(scores["num_boxes"])[rows] if "num_boxes" in scores else np.ones(len(total))
    )
    with_box = num_boxes > 0
    var = float(np.var(total)) if len(total) else float("nan")
    out = {
        "num_images": len(total),
        "weights": [float(w) for w in weights],
        "score_std": float(np.sqrt(var)) if len(total) else None,
        "fraction_without_box": float(np.mean(~with_box)) if len(total) else None,
        "fraction_best_box_empty": _fraction_empty(scores, rows, with_box),
        "components": {},
    }
    warnings = []
    # A single weighted component (a Table I ablation) explains all the variance by design.
    weighted = sum(w != 0 for w in weights)
    if len(total) and np.mean(~with_box) > CONSTANT_LIMIT:
        warnings.append(
            f"{100 * np.mean(~with_box):.0f}% of the {len(total)} scored images have no scored "
            "detection (S_box = 0): lower det_score_threshold or train the detector longer"
        )
    for name, key, constant, w_index in COMPONENTS:
        values = np.asarray(scores[key], np.float64)[rows]
        term = weights[w_index] * values
        counted = values[with_box] if name != "S_seg" else values
        frac = float(np.mean(np.abs(counted - constant) < 1e-6)) if len(counted) else None
        share = r2 = None
        if var > 0:
            share = float(np.mean((term - term.mean()) * (total - total.mean())) / var)
            if np.var(term) > 0:
                r2 = float(np.corrcoef(term, total)[0, 1] ** 2)
        out["components"][name] = {
            "degenerate_value": constant,
            "fraction_constant": frac,
            "mean": float(values.mean()) if len(values) else None,
            "std": float(values.std()) if len(values) else None,
            "variance_share": share,
            "r2": r2,
        }
        if frac is not None and frac > CONSTANT_LIMIT and weights[w_index] != 0:
            warnings.append(
                f"{name} = {constant:g} on {100 * frac:.0f}% of the scored images: it carries "
                "(almost) no signal"
            )
        if share is not None and share > VARIANCE_LIMIT and weighted > 1:
            warnings.append(
                f"{name} explains {100 * share:.0f}% of the combined score's variance: the "
                "score is (almost) this component alone"
            )
    out["warnings"] = warnings
    return out


def _fraction_empty(scores, rows, with_box) -> float | None:
    """Images with a box whose best box has S_loc = 1 and S_cls = 0 (an empty BoxMask)."""
    if not with_box.any():
        return None
    s_loc = np.asarray(scores["s_loc_best"], np.float64)[rows][with_box]
    s_cls = np.asarray(scores["s_cls_best"], np.float64)[rows][with_box]
    return float(np.mean((np.abs(s_loc - 1) < 1e-6) & (np.abs(s_cls) < 1e-6)))


def write(path: str, diagnostics: dict, *, context: str = "") -> None:
    """Writes ``diagnostics`` as JSON to ``path`` and logs its warnings."""
    jsonio.write_atomic(path, diagnostics)
    for warning in diagnostics["warnings"]:
        log.warning("score diagnostics%s: %s", f" ({context})" if context else "", warning)


def collect(workdir: str) -> list[dict]:
    """The diagnostics saved beside the selections of a run (``trial_*/<strategy>/cycle_*``).

    Returns:
      One dict per file: ``trial``, ``strategy``, ``cycle``, the file's content and
      ``_selection_facts`` of its cycle (``selected_without_box``, ``shared_with_alone``;
      None without ``scores.npz``), sorted.
    """
    found = []
    for trial in sorted(d for d in os.listdir(workdir) if d.startswith("trial_")):
        trial_dir = os.path.join(workdir, trial)
        for strategy in sorted(os.listdir(trial_dir)):
            strategy_dir = os.path.join(trial_dir, strategy)
            if not os.path.isdir(strategy_dir) or strategy.startswith("cycle_"):
                continue
            for cycle in sorted(os.listdir(strategy_dir)):
                path = os.path.join(strategy_dir, cycle, FILENAME)
                if cycle.startswith("cycle_") and os.path.exists(path):
                    found.append(
                        {
                            "trial": int(trial.split("_")[1]),
                            "strategy": strategy,
                            "cycle": int(cycle.split("_")[1]),
                            **jsonio.read(path),
                            **_selection_facts(os.path.dirname(path)),
                        }
                    )
    return sorted(found, key=lambda d: (d["strategy"], d["trial"], d["cycle"]))


# The score of each single-term setting of Table I (weights one-hot), as stored in
# ``scores.npz``: with w_seg = 0, the score is the max over boxes of that term.
ALONE_KEYS = {"S_loc": "s_loc_max", "S_cls": "s_cls_max", "S_seg": "s_seg"}


def _selection_facts(cycle_dir: str) -> dict:
    """What one cycle's selection was, from its ``scores.npz`` and ``selection.json``.

    Returns:
      ``selected_without_box``: the fraction of the selected images without a scored box;
      ``shared_with_alone``: {term: the fraction of the selected images that the term alone
      (Table I's one-hot setting) would also have selected from the same pool with the same
      model: ``selection.top_k`` of its stored values, same budget and tie rule};
      ``shared_by_chance``: the fraction a random selection of the same size shares with
      any other (budget / scored pool). None when a file or a value is missing.
    """
    none = {"selected_without_box": None, "shared_with_alone": None, "shared_by_chance": None}
    scores_path = os.path.join(cycle_dir, "scores.npz")
    selection_path = os.path.join(cycle_dir, "selection.json")
    if not (os.path.exists(scores_path) and os.path.exists(selection_path)):
        return none
    selected = np.asarray(jsonio.read(selection_path)["selected"], np.int64)
    with np.load(scores_path) as npz:
        scores = {k: npz[k] for k in npz.files}
    if not len(selected) or "num_boxes" not in scores or "scored" not in scores:
        return none
    shared = None
    if all(k in scores for k in ALONE_KEYS.values()):
        mine = set(selected.tolist())
        shared = {}
        for name, key in ALONE_KEYS.items():
            alone = np.asarray(selection.top_k(scores[key], scores["scored"], len(selected)))
            shared[name] = len(mine & set(alone.tolist())) / len(selected)
    return {
        "selected_without_box": float(np.mean(scores["num_boxes"][selected] == 0)),
        "shared_with_alone": shared,
        "shared_by_chance": len(selected) / max(int(np.sum(scores["scored"])), 1),
    }


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


def _pct_cell(value) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def summary_markdown(entries: Sequence[dict]) -> str:
    """A Markdown section summarising ``collect``'s diagnostics ('' when there are none)."""
    if not entries:
        return ""
    names = [name for name, _, _, _ in COMPONENTS]
    lines = [
        "## Score diagnostics (ours)",
        "",
        (
            "Per strategy, means over its selections: the pool's images, % without a scored "
            "box in the pool and among the selected images, % whose best box is empty, each "
            "weighted term's share of the combined score's variance, and % of the selected "
            "images each term alone would also have selected from the same pool."
        ),
        "",
        aggregate_markdown(aggregate(entries)),
        (
            "Per selection: % of scored images at the degenerate value (S_loc = 1, S_cls = 0, "
            "S_seg = 0; S_loc and S_cls over images with a scored box), each term's share of "
            "the combined score's variance (%), and the % of images without a scored box. "
            f"Warnings: a share over {100 * VARIANCE_LIMIT:.0f}% or a component constant on "
            f"over {100 * CONSTANT_LIMIT:.0f}% of the pool."
        ),
        "",
        "| strategy | trial | cycle | images | no box | "
        + " | ".join(f"{n} const" for n in names)
        + " | "
        + " | ".join(f"{n} share" for n in names)
        + " | warnings |",
        "|---" * (6 + 2 * len(names)) + "|",
    ]
    for e in entries:
        comps = e["components"]
        lines.append(
            f"| {e['strategy']} | {e['trial']} | {e['cycle']} | {e['num_images']} | "
            f"{_pct(e['fraction_without_box'])} | "
            + " | ".join(_pct(comps[n]["fraction_constant"]) for n in names)
            + " | "
            + " | ".join(_pct(comps[n]["variance_share"]) for n in names)
            + f" | {len(e['warnings'])} |"
        )
    return "\n".join(lines) + "\n"


def _mean(values) -> float | None:
    kept = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _std(values) -> float | None:
    kept = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.std(kept, ddof=1)) if len(kept) > 1 else None


def aggregate(entries: Sequence[dict]) -> dict[str, dict]:
    """Per strategy, ``collect``'s diagnostics averaged over its selections (trial, cycle).

    Returns:
      ``{strategy: {"selections", "weights", "num_images", "fraction_without_box",
      "fraction_best_box_empty", "selected_without_box", "shared_with_alone",
      "shared_by_chance", "warnings", "components": {name: {"variance_share",
      "variance_share_std", "std", "fraction_constant", "r2"}}}}``: means over the selections
      (undefined values skipped; None where none is defined), ``variance_share_std`` the
      spread between selections, ``warnings`` the selections with at least one warning.
      Strategies in first-seen order.
    """
    by_strategy: dict[str, list[dict]] = {}
    for e in entries:
        by_strategy.setdefault(e["strategy"], []).append(e)
    out = {}
    for strategy, group in by_strategy.items():
        comps = {}
        for name, _, _, _ in COMPONENTS:
            values = [e["components"][name] for e in group]
            shares = [v.get("variance_share") for v in values]
            comps[name] = {
                "variance_share": _mean(shares),
                "variance_share_std": _std(shares),
                "std": _mean(v.get("std") for v in values),
                "fraction_constant": _mean(v.get("fraction_constant") for v in values),
                "r2": _mean(v.get("r2") for v in values),
            }
        out[strategy] = {
            "selections": len(group),
            "weights": [
                float(w) for w in group[0].get("weights", consistency_score.DEFAULT_WEIGHTS)
            ],
            "num_images": _mean(e["num_images"] for e in group),
            "fraction_without_box": _mean(e.get("fraction_without_box") for e in group),
            "fraction_best_box_empty": _mean(e.get("fraction_best_box_empty") for e in group),
            "selected_without_box": _mean(e.get("selected_without_box") for e in group),
            "shared_with_alone": {
                name: _mean((e.get("shared_with_alone") or {}).get(name) for e in group)
                for name in ALONE_KEYS
            },
            "shared_by_chance": _mean(e.get("shared_by_chance") for e in group),
            "warnings": sum(bool(e.get("warnings")) for e in group),
            "components": comps,
        }
    return out


def aggregate_markdown(aggregated: Mapping[str, dict]) -> str:
    """A Markdown table of ``aggregate``'s rows ('' when there are none): per strategy its
    weights, selections, pool size, % without a scored box in the pool and in the selection,
    % whose best box is empty, each weighted term's share of the combined score's variance
    (mean ± SD over selections; "alone" when it is the only weighted term), and the % of its
    selected images each term alone would also have selected (chance: budget / pool)."""
    if not aggregated:
        return ""
    names = [name for name, _, _, _ in COMPONENTS]
    lines = [
        "| strategy | weights (loc, cls, seg) | selections | images | no scored box: pool | "
        "no scored box: selected | best box empty | "
        + " | ".join(f"{n} share" for n in names)
        + " | "
        + " | ".join(f"same picks as {n} alone" for n in ALONE_KEYS)
        + " | same picks by chance |",
        "|---" * (8 + len(names) + len(ALONE_KEYS)) + "|",
    ]
    for strategy, a in aggregated.items():
        shares = []
        alone = sum(bool(w) for w in a["weights"]) == 1
        for n, w in zip(names, a["weights"]):
            c = a["components"][n]
            if not w or c["variance_share"] is None:
                shares.append("-")
            elif alone:
                shares.append("alone")
            else:
                sd = c["variance_share_std"]
                spread = f" ± {_pct(sd)}" if sd is not None else ""
                shares.append(f"{_pct(c['variance_share'])}{spread} %")
        same = [_pct_cell(a["shared_with_alone"][n]) for n in ALONE_KEYS]
        weights = ", ".join(f"{w:g}" for w in a["weights"])
        images = "-" if a["num_images"] is None else f"{a['num_images']:.0f}"
        lines.append(
            f"| {strategy} | {weights} | {a['selections']} | {images} | "
            f"{_pct_cell(a['fraction_without_box'])} | {_pct_cell(a['selected_without_box'])} | "
            f"{_pct_cell(a['fraction_best_box_empty'])} | "
            + " | ".join(shares + same)
            + f" | {_pct_cell(a['shared_by_chance'])} |"
        )
    return "\n".join(lines) + "\n"
