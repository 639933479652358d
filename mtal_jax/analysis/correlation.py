"""Correlation of the scores with the per-image losses and with each other (paper Fig. 6).

Host-side NumPy: Pearson's r and Spearman's rho (Pearson on average ranks) of every pair of
per-image columns, plus a heat-map figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


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
      values: name -> [N] per-image values (same N for all).

    Returns:
      {"names": [...], "num_images": n, "pearson": [[...]], "spearman": [[...]]} (lists, JSON
      ready; NaN stays NaN).
    """
    names = list(values)
    x = np.stack([np.asarray(values[n], np.float64) for n in names], axis=1)  # [N, D]
    x = x[np.all(np.isfinite(x), axis=1)]
    return {
        "names": names,
        "num_images": int(x.shape[0]),
        "pearson": pearson_matrix(x).tolist(),
        "spearman": spearman_matrix(x).tolist(),
    }


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
