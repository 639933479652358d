"""The analyses of one model (``mtal_jax.analysis.cli``) on the results page: Table II
(BoxMask accuracy against tau), Fig. 6 (the scores' correlation with the losses) and its
readings, Fig. 5's caption, the figure lines and each analysis's wall time.
"""

from __future__ import annotations

import math
import os

import numpy as np

from docs.results_lib import page_files, table_cells
from mtal_jax import significance

FIG5_CAPTION = (
    "Per chosen test image, one row per model (trial 0 after the last cycle), four panels: "
    "the detected boxes; the segmentation; the BoxMasks in their box's class colour; where "
    "the tasks disagree (green: BoxMask pixels segmented as the box's class, red: BoxMask "
    "pixels that are not, the S_loc evidence; yellow: pixels outside every BoxMask "
    "segmented as a detection class, the S_seg evidence)."
)
FIG5_GRAY = " Drawn on flat gray: model outputs only, no pixel of the dataset, whose non-commercial terms keep its images out of this repository."


def image_line(d, link, file, title):
    """A markdown image line for ``<d>/<file>`` (linked as ``<link>/<file>``, ``link``: ``d``
    relative to the page), or a note."""
    if os.path.exists(os.path.join(d, file)):
        return f"\n![{title}]({link}/{file})\n"
    return "\n_(figure not available yet)_\n"


def analysis_wall(d, analysis):
    """The page's wall-time line of one analysis, from ``<d>/analysis_wall.json`` (written
    by ``mtal_jax.analysis.cli``), or a note that it was not recorded."""
    walls = page_files.read_json(os.path.join(d, "analysis_wall.json")) or {}
    w = walls.get(analysis)
    if not w:
        return "Wall time: not recorded (made before the analyses recorded it).\n"
    together = [a for a in w.get("analyses_together", []) if a != analysis]
    with_ = f", in one call with {', '.join(together)}" if together else ""
    seconds = float(w["seconds"])
    took = table_cells.hours(seconds) if seconds >= 60 else f"{seconds:.0f} s"
    return (
        f"Wall time: {took} "
        f"({w.get('date', '?')}, {w.get('cpus', '?')} CPUs, load {w.get('load_1min', '?')}"
        f"{with_}; loading the dataset and the "
        "model included; `analysis_wall.json`).\n"
    )


def table2_verdict(path):
    """(cell, reading) of Table II: the best tau against the paper's 0.3 (one model, no
    interval)."""
    data = page_files.read_json(path)
    if not data:
        return table_cells.DASH, "not run"
    try:
        rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
        taus = [float(r["tau"]) for r in rows]
        vals = [float(r["miou"]) for r in rows]
    except (KeyError, TypeError, ValueError):
        return "see Table II", "no interval (one model)"
    best = taus[int(np.argmax(vals))]
    cell = " / ".join(f"{100 * v:.1f}" for v in vals) + f" (best tau {best})"
    # the runner-up within 1 pp: one model's numbers prefer no tau
    close = sorted(vals)[-2] > max(vals) - 0.01 if len(vals) > 1 else False
    empty = _all_empty_classes(rows)
    if empty:
        cell += f"; at tau 0.3 every BoxMask of {', '.join(empty)} empty"
    if close:
        return cell, "no interval (one model): no preferred tau (the best two within 1 pp)"
    return cell, "no interval (one model): " + (
        "same best tau" if best == 0.3 else "other best tau"
    )


def _all_empty_classes(rows):
    """The classes whose scored boxes all have an empty BoxMask at tau 0.3 (Table II's rows
    with ``per_class_boxes`` / ``per_class_empty``)."""
    row = next((r for r in rows if abs(float(r["tau"]) - 0.3) < 1e-9), None)
    if not row or "per_class_boxes" not in row:
        return []
    boxes, empty = row["per_class_boxes"], row["per_class_empty"]
    return [c for c, n in boxes.items() if n and empty.get(c) == n]


def fig6_rows(path):
    """{claim: (cell, verdict)} of the paper's Fig. 6 readings (``fig6_correlation.json``'s
    ``claims``: Spearman differences, bootstrap intervals over one model's images)."""
    data = page_files.read_json(path) or {}
    out = {}
    for c in data.get("claims", []):
        text = f"Fig. 6: {c['claim']}"
        stat, (lo, hi) = c["statistic"], c["ci95"]
        if stat is None or not table_cells.finite(stat):
            out[text] = (table_cells.DASH, "not run")
            continue
        cell = f"{stat:+.2f} [{lo:+.2f}, {hi:+.2f}] (one model, {c['num_images']} images"
        cell += f"; {LOSS_NOTE})" if _reads_training_loss(c["claim"]) else ")"
        out[text] = (cell, significance.verdict([lo, hi]), c.get("p_value", math.nan))
    return out


LOSS_NOTE = "against the training losses, every heat-map cell"
"""Beside a Fig. 6 reading of a score against a detection training loss, which the
readings against the errors of the detected boxes complement (``correlation.FIG6_CLAIMS``)."""


def _reads_training_loss(claim):
    return "detection" in claim and "loss" in claim


def fig6_model_rows(path):
    """{claim: (cell, verdict, p)} of the Fig. 6 readings over several models
    (``fig6_models.json``: t intervals over models), or {} without two models."""
    data = page_files.read_json(path) or {}
    if len(data.get("models", [])) < 2:
        return {}
    out = {}
    for c in data["claims"]:
        text = f"Fig. 6: {c['claim']}"
        if not c.get("trials"):
            out[text] = (table_cells.DASH, "not run")
            continue
        cell = f"{significance.format_interval(c, 2)} ({c['trials']} models: each trial's cycle 0"
        cell += f"; {LOSS_NOTE})" if _reads_training_loss(c["claim"]) else ")"
        out[text] = (cell, significance.verdict(c["ci95"]), c.get("p_value", math.nan))
    return out


def fig6_models_text(d):
    """The Fig. 6 readings over each trial's cycle-0 model (``fig6_models.md``), with their
    wall time, or "" before that analysis has run."""
    if not os.path.exists(os.path.join(d, "fig6_models.md")):
        return ""
    return (
        "\nThe same readings on each trial's cycle-0 model, each on its own unlabeled pool "
        "(the third command above): one statistic per model, their mean with a 95 % t "
        "interval and the p-value over models. Models, not one model's images, are the unit "
        "a property of the scores has to hold over, so the side-by-side reads these.\n\n"
        + page_files.read_text(os.path.join(d, "fig6_models.md")).rstrip("\n")
        + "\n\n"  # a blank line ends the table: a line after it would render as a row
        + analysis_wall(d, "fig6_models")
    )


def fig6_columns_text(d):
    """What Fig. 6's columns are, per image, and how many images have no scored box."""
    diag = page_files.read_json(os.path.join(d, "fig6_diagnostics.json")) or {}
    share = diag.get("fraction_without_box")
    without = (
        f"; {table_cells.pct(share, 0)} of these images have none, and their score is S_seg alone"
        if table_cells.finite(share)
        else ""
    )
    fig6 = page_files.read_json(os.path.join(d, "fig6_correlation.json")) or {}
    names, counts = fig6.get("names"), fig6.get("num_finite") or {}
    defined = (
        f" (here E_det_loc is defined on {counts['E_det_loc']} and E_det_cls on "
        f"{counts['E_det_cls']} of {fig6.get('num_images', '?')} images)"
        if {"E_det_loc", "E_det_cls"} <= set(counts)
        else ""
    )
    losses = (
        "L_det_cls is the image's CenterNet heat-map focal loss (every cell), L_det_loc "
        "the weighted L1 loss of box size and offset at the ground-truth centres, L_seg the "
        "segmentation cross-entropy, each against the image's labels"
    )
    if "E_det_cls" in (names or ()):
        return (
            "Columns, one value per image: S_loc and S_cls are the largest over the image's "
            "scored boxes (0 without one" + without + "), S_seg and the score as `ours` "
            "computes them; " + losses + " (the training losses); E_det_cls and E_det_loc "
            "are the errors of the detected boxes the scores read: each scored box is matched "
            "to the ground-truth box it overlaps most, E_det_loc is the mean of 1 - IoU over "
            "the scored boxes and E_det_cls the mean cross-entropy of the boxes' class "
            "distributions at the matched class over the boxes with IoU >= 0.5 "
            "(`mtal_jax/analysis/box_errors.py`); they are undefined on an image without such "
            "boxes" + defined + ", so their pairs and readings use the images where they are "
            "defined (a 0 "
            "there would pair with S_loc = S_cls = 0 and make a correlation the scores do not "
            'earn). The paper correlates the scores with "the losses" and reads S_cls and '
            'S_loc against "the classification and localization error in the detected '
            "boxes\"; a CenterNet's training losses live on heat-map cells, not boxes, so both "
            "readings are given.\n"
        )
    return (
        "Columns, one value per image: S_loc and S_cls are the largest over the image's "
        "scored boxes (0 without one" + without + "), S_seg and the score as `ours` computes "
        "them; " + losses + ". The paper correlates "
        "the scores with the error of the detected boxes; these are the training losses, "
        "the nearest quantities the model defines on every image.\n"
    )


def fig6_claims_table(rows):
    """The Fig. 6 readings as a table under the figure."""
    if not rows:
        return ""
    lines = [
        (
            "\nThe paper's readings of Fig. 6, each as a difference of Spearman correlations "
            "that is positive when it holds (a score against the other two scores' correlation "
            "with the same loss; the S_loc-S_seg pair's |rho| against the other pairs'), with "
            "a 95 % bootstrap interval over the images of this one model (2000 resamples):\n"
        ),
        "| reading (paper) | difference [95 % CI] | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {c[len('Fig. 6: ') :]} | {v} | {r} |" for c, (v, r, *_) in rows.items()]
    return "\n".join(lines) + "\n"
