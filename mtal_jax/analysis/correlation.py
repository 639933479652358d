"""Correlation of the scores with the per-image losses and with each other (paper Fig. 6).

Host-side NumPy: Pearson's r and Spearman's rho (Pearson on average ranks) of every pair of
per-image columns, plus a heat-map figure, and ``claim_tests``: the paper's four readings of
its Fig. 6 as differences of Spearman correlations with bootstrap intervals over images;
``across_models``: the same readings over several models (one per trial), with a t interval
over models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mtal_jax import significance


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), 0-based."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=len(values))
    counts = np.bincount(inverse, minlength=len(values))
    return (sums / counts)[inverse]


def pearson_matrix(columns: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of columns.

    Args:
      columns: [N, D] float, one row per image.

    Returns:
      [D, D] float64; NaN in the rows and columns of constant columns.
    """
    x = np.asarray(columns, np.float64)
    x = x - x.mean(axis=0)
    norm = np.sqrt(np.sum(x * x, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (x.T @ x) / np.outer(norm, norm)
    corr = np.where(np.outer(norm > 0, norm > 0), corr, np.nan)
    return np.clip(corr, -1.0, 1.0)


def spearman_matrix(columns: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of every pair of columns ([N, D] -> [D, D])."""
    x = np.asarray(columns, np.float64)
    return pearson_matrix(np.stack([_ranks(x[:, d]) for d in range(x.shape[1])], axis=1))


def correlation_tables(values: Mapping[str, Sequence[float]]) -> dict:
    """Pearson and Spearman matrices of named per-image columns (NaN rows dropped).

    Args:
      values: name -> [N] per-image values (same N for all); NaN where undefined.

    Returns:
      {"names": [...], "num_images": n, "num_finite": {name: n}, "pearson": [[...]],
      "spearman": [[...]]} (lists, JSON ready; each pair over the images where both are
      finite; NaN stays NaN).
    """
    names = list(values)
    x = np.stack([np.asarray(values[n], np.float64) for n in names], axis=1)  # [N, D]
    finite = np.isfinite(x)
    return {
        "names": names,
        "num_images": int(np.sum(np.any(finite, axis=1))),
        "num_finite": {n: int(c) for n, c in zip(names, np.sum(finite, axis=0))},
        "pearson": _pairwise(x, pearson_matrix).tolist(),
        "spearman": _pairwise(x, spearman_matrix).tolist(),
    }


def _pairwise(x: np.ndarray, matrix_fn) -> np.ndarray:
    """``matrix_fn`` ([N, 2] -> [2, 2]) of every pair of columns of ``x`` [N, D], each over
    the rows where both are finite (a column undefined on some images, such as an error of
    the detected boxes, is read where it is defined): [D, D], NaN with under 3 such rows."""
    d = x.shape[1]
    out = np.full((d, d), np.nan)
    finite = np.isfinite(x)
    for i in range(d):
        for j in range(i, d):
            rows = finite[:, i] & finite[:, j]
            if np.sum(rows) >= 3:
                out[i, j] = out[j, i] = matrix_fn(x[rows][:, [i, j]])[0, 1]
    return out


# The paper's readings of Fig. 6 (Sec. IV-E): (claim, kind, arguments). "best": the score
# correlates with the loss more than either other score does; "least": of the three score
# pairs, this one has the correlation of smallest magnitude. The paper correlates the scores
# with "the losses" and reads S_cls and S_loc against "the classification and localization
# error in the detected boxes"; a CenterNet's training losses are defined on heat-map cells,
# not boxes, so both readings are tested: against the training losses (L_det_*) and against
# the errors of the scored boxes (E_det_*, ``box_errors``; on the images where defined).
FIG6_CLAIMS = (
    ("S_seg measures the segmentation loss best", "best", ("S_seg", "L_seg")),
    ("S_cls measures the detection classification loss best", "best", ("S_cls", "L_det_cls")),
    ("S_loc measures the detection localization loss best", "best", ("S_loc", "L_det_loc")),
    (
        "S_cls measures the classification error of the detected boxes best",
        "best",
        ("S_cls", "E_det_cls"),
    ),
    (
        "S_loc measures the localization error of the detected boxes best",
        "best",
        ("S_loc", "E_det_loc"),
    ),
    ("S_loc and S_seg are the least correlated pair of scores", "least", ("S_loc", "S_seg")),
)
_SCORES = ("S_loc", "S_cls", "S_seg")


def _claim_statistic(rho: np.ndarray, index: dict, kind: str, args: tuple) -> float:
    """The difference that is positive when the claim holds, from a Spearman matrix."""
    if kind == "best":
        score, loss = args
        others = [rho[index[o], index[loss]] for o in _SCORES if o != score]
        return float(rho[index[score], index[loss]] - max(others))
    pair = {args, args[::-1]}
    magnitudes = {
        (a, b): abs(rho[index[a], index[b]])
        for i, a in enumerate(_SCORES)
        for b in _SCORES[i + 1 :]
    }
    mine = next(v for k, v in magnitudes.items() if k in pair)
    return float(min(v for k, v in magnitudes.items() if k not in pair) - mine)


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def across_models(per_model: Sequence[Sequence[dict]], labels: Sequence[str]) -> dict:
    """The Fig. 6 readings over several models (e.g. each trial's cycle-0 model on its own
    unlabeled pool): each model's statistic, and their mean with a 95 % t interval and
    p-value over models (``significance.t_interval``). Between models is where a reading has
    to hold to be a property of the scores rather than of one trained network; the bootstrap
    of ``claim_tests`` only resamples one model's images.

    Args:
      per_model: [M] ``claim_tests`` outputs, one per model, in ``FIG6_CLAIMS`` order.
      labels: [M] model names.

    Returns:
      ``{"models": labels, "num_images": [M], "claims": [{"claim", "per_model": [M],
      "mean", "ci95", "trials", "p_value"}]}`` (``trials``: models with a finite
      statistic).

    Raises:
      ValueError: ``labels`` and ``per_model`` differ in length.
    """
    if len(labels) != len(per_model):
        raise ValueError(f"{len(labels)} labels for {len(per_model)} models")
    claims = []
    for j, (claim, _, _) in enumerate(FIG6_CLAIMS):
        stats = [float(m[j]["statistic"]) for m in per_model]
        claims.append({"claim": claim, "per_model": stats, **significance.t_interval(stats)})
    return {
        "models": list(labels),
        "num_images": [int(m[0]["num_images"]) if m else 0 for m in per_model],
        "claims": claims,
    }


def across_models_markdown(result: dict) -> str:
    """The ``across_models`` readings as a table: one column per model, then the mean with
    its interval and p-value."""
    models = result["models"]
    lines = [
        "| reading (paper) | " + " | ".join(models) + " | mean [95 % CI] | p |",
        "|---|" + "---|" * len(models) + "---|---|",
    ]
    for c in result["claims"]:
        cells = [f"{v:+.2f}" if _finite(v) else "—" for v in c["per_model"]]
        lines.append(
            f"| {c['claim']} | " + " | ".join(cells)
            + f" | {significance.format_interval(c, 2)}"
            + f" | {significance.format_p(c.get('p_value'))} |"
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def claim_tests(
    values: Mapping[str, Sequence[float]], *, resamples: int = 2000, seed: int = 0
) -> list[dict]:
    """The paper's Fig. 6 readings (``FIG6_CLAIMS``) tested on one model's per-image values.

    Each claim becomes a difference of Spearman correlations that is positive when it holds
    ("best": rho(score, loss) minus the larger rho of the other two scores with that loss;
    "least": the smallest |rho| of the other two score pairs minus this pair's |rho|), with a
    95 % percentile bootstrap interval over images (``resamples`` resamples of the N images
    with replacement, ranks recomputed in each) and the p-value that inverts it: twice the
    smaller share of resamples on either side of 0, ``2 min(k_<=0 + 1, k_>=0 + 1) / (R + 1)``
    capped at 1 (the +1 keeps it above 0 and errs on the conservative side; its resolution is
    about 2 / R). The interval is over images of one model: it says what this model's pool
    supports, not how the reading varies between trials.

    Args:
      values: name -> [N] per-image values; needs S_loc, S_cls, S_seg and the losses named
        in ``FIG6_CLAIMS``. Each claim reads the images where its columns are all finite
        (its ``num_images``).
      resamples: bootstrap resamples.
      seed: of the resampling.

    Returns:
      ``[{"claim", "statistic", "ci95": [lo, hi], "p_value", "num_images", "resamples"}]``
      in ``FIG6_CLAIMS`` order (NaN statistic and p when a column is missing or constant, or
      fewer than 3 images have the claim's columns).
    """
    names = list(values)
    x = np.stack([np.asarray(values[n], np.float64) for n in names], axis=1)  # [N, D]
    rng = np.random.default_rng(seed)
    out = []
    nan = float("nan")
    for claim, kind, args in FIG6_CLAIMS:
        used = list(dict.fromkeys((*_SCORES, *args)))
        cols = np.zeros((0, len(used)))
        if set(used) <= set(names):  # the images where the claim's columns are all defined
            cols = x[:, [names.index(n) for n in used]]
            cols = cols[np.all(np.isfinite(cols), axis=1)]
        if len(cols) < 3:  # a column missing, or too few images: no reading
            out.append({"claim": claim, "statistic": nan, "ci95": [nan, nan], "p_value": nan,
                        "num_images": len(cols), "resamples": 0})  # fmt: skip
            continue
        index = {n: i for i, n in enumerate(used)}
        statistic = _claim_statistic(spearman_matrix(cols), index, kind, args)
        boot = np.array([
            _claim_statistic(
                spearman_matrix(cols[rng.integers(0, len(cols), len(cols))]), index, kind, args
            )
            for _ in range(resamples)
        ])  # fmt: skip
        finite = boot[np.isfinite(boot)]
        lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
        sides = min(np.sum(finite <= 0), np.sum(finite >= 0)) + 1
        p = min(1.0, 2 * sides / (len(finite) + 1)) if len(finite) else np.nan
        out.append(
            {
                "claim": claim,
                "statistic": statistic,
                "ci95": [float(lo), float(hi)],
                "p_value": float(p),
                "num_images": len(cols),
                "resamples": int(resamples),
            }
        )
    return out


def markdown_table(matrix: Sequence[Sequence[float]], names: Sequence[str], title: str) -> str:
    """A Markdown table of a correlation matrix (two decimals)."""
    lines = [f"**{title}**", "", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name, row in zip(names, matrix):
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines)


def plot_heatmaps(tables: dict, path: str) -> None:
    """Saves the Pearson and Spearman matrices side by side as a PNG heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = tables["names"]
    fig, axes = plt.subplots(1, 2, figsize=(2.4 + 1.1 * len(names) * 2, 1.6 + 0.9 * len(names)))
    for ax, kind in zip(axes, ("pearson", "spearman")):
        m = np.asarray(tables[kind], np.float64)
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(
                    j,
                    i,
                    "" if np.isnan(m[i, j]) else f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                )
        ax.set_title(f"{kind.capitalize()} (n = {tables['num_images']})")
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
