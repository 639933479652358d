"""Files of the paper's analyses (shell): Table II, Figure 6 and Figure 5 from the
per-image columns and maps that ``analysis.collect_loop.collect_split`` gathers.

Each ``write_*`` returns the paths it wrote under ``out_dir``; tables are JSON + Markdown
(+ PNG plot), figures PNG. The pure computations live in ``boxmask_accuracy``,
``correlation`` and ``overlays``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from mtal_jax import jsonio
from mtal_jax.al import diagnostics
from mtal_jax.analysis import boxmask_accuracy, correlation, overlays

SCORE_COLUMNS = {"S_loc": "s_loc", "S_cls": "s_cls", "S_seg": "s_seg", "score": "score"}
LOSS_COLUMNS = {
    "L_det_cls": "loss_det_cls", "L_det_loc": "loss_det_loc", "L_seg": "loss_seg",
    "E_det_cls": "err_det_cls", "E_det_loc": "err_det_loc",
}  # fmt: skip
"""Fig. 6's error columns: the training losses (every heat-map cell) and the errors of the
scored boxes (``box_errors``), which the paper's detection readings name."""
COMPARE_ROW_GAP = 4  # white rows between the checkpoints' rows of one image
COMPARE_IMAGE_GAP = 16  # white rows between the images of fig5_compare.png
PANEL_GAP = 4  # white columns between the panels of one row (overlays.render_panels' gap)


def write_table2(result: dict, taus: tuple[float, ...], out_dir: str) -> list[str]:
    """Table II files: JSON, Markdown and a PNG of mIoU vs tau."""
    seg_classes = list(result["setup"].dataset.seg_classes)
    has_counts = "boxes" in result and np.ndim(result["boxes"]) == 2
    rows = []
    for t, tau in enumerate(taus):
        miou, per_class = boxmask_accuracy.miou_from_counts(
            result["intersection"][t], result["union"][t]
        )
        row = {
            "tau": tau,
            "miou": miou,
            "per_class_iou": dict(zip(seg_classes, per_class.tolist())),
        }
        if has_counts:  # kept boxes per class and the share with an empty BoxMask
            boxes, empty = np.asarray(result["boxes"][t]), np.asarray(result["empty"][t])
            row["per_class_boxes"] = dict(zip(seg_classes, boxes.astype(int).tolist()))
            row["per_class_empty"] = dict(zip(seg_classes, empty.astype(int).tolist()))
        rows.append(row)
    det_classes = sorted({seg_classes[i] for i in result["setup"].dataset.det_to_seg})
    md = [
        "| tau | BoxMask mIoU (%) | " + " | ".join(det_classes) + " |",
        "|---" * (len(det_classes) + 2) + "|",
    ]
    for r in rows:
        cells = [
            f"{100 * r['per_class_iou'][c]:.1f}" if np.isfinite(r["per_class_iou"][c]) else "-"
            for c in det_classes
        ]
        md.append(f"| {r['tau']} | {100 * r['miou']:.1f} | " + " | ".join(cells) + " |")
    md.append("")
    if has_counts:
        md += [
            (
                "Boxes scored per class, and the share whose BoxMask is empty (S_loc = 1 by "
                "definition; a class whose BoxMasks are all empty is not measured by its IoU, "
                "which then holds its ground truth alone):"
            ),
            "",
            "| tau | " + " | ".join(det_classes) + " |",
            "|---" * (len(det_classes) + 1) + "|",
        ]
        for r in rows:
            cells = []
            for c in det_classes:
                n, e = r["per_class_boxes"][c], r["per_class_empty"][c]
                cells.append(f"{n} ({100 * e / n:.0f} % empty)" if n else "0")
            md.append(f"| {r['tau']} | " + " | ".join(cells) + " |")
        md.append("")
    md.append(
        "Paper (nuImages, Table II): 74.7 / 78.4 / 77.9 / 73.2 for tau = 0.1 / 0.3 / 0.5 / 0.7."
    )
    base = os.path.join(out_dir, "table2_boxmask_accuracy")
    jsonio.write_atomic(
        base + ".json", {"rows": rows, "num_images": len(result["columns"]["index"])}
    )
    with open(base + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(list(taus), [100 * r["miou"] for r in rows], "o-", label="this run")
    ax.plot([0.1, 0.3, 0.5, 0.7], [74.7, 78.4, 77.9, 73.2], "s--", label="paper (nuImages)")
    ax.set_xlabel("tau")
    ax.set_ylabel("BoxMask mIoU (%)")
    ax.legend()
    fig.savefig(base + ".png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [base + ext for ext in (".json", ".md", ".png")]


def write_fig6(result: dict, out_dir: str) -> list[str]:
    """Figure 6 files: correlation JSON, Markdown, heat-map PNG and the score diagnostics."""
    cols = result["columns"]
    values = {name: cols[key] for name, key in {**SCORE_COLUMNS, **LOSS_COLUMNS}.items()}
    tables = correlation.correlation_tables(values)
    tables["claims"] = correlation.claim_tests(values)
    base = os.path.join(out_dir, "fig6_correlation")
    jsonio.write_atomic(base + ".json", tables)
    with open(base + ".md", "w", encoding="utf-8") as f:
        f.write(correlation.markdown_table(tables["pearson"], tables["names"], "Pearson") + "\n\n")
        f.write(correlation.markdown_table(tables["spearman"], tables["names"], "Spearman") + "\n")
    correlation.plot_heatmaps(tables, base + ".png")
    paths = [base + ext for ext in (".json", ".md", ".png")]
    if diagnostics.has_components(cols):
        diag = diagnostics.score_diagnostics(cols, weights=result.get("weights", (1, 1, 1)))
        path = os.path.join(out_dir, "fig6_diagnostics.json")
        diagnostics.write(path, diag, context="fig6")
        paths.append(path)
    return paths


def write_fig6_models(results: Sequence[dict], labels: Sequence[str], out_dir: str) -> list[str]:
    """Figure 6's readings over several models (``correlation.across_models``):
    ``fig6_models.json`` and ``fig6_models.md``."""
    per_model = []
    for result in results:
        cols = result["columns"]
        values = {name: cols[key] for name, key in {**SCORE_COLUMNS, **LOSS_COLUMNS}.items()}
        per_model.append(correlation.claim_tests(values, resamples=0))  # statistics only
    across = correlation.across_models(per_model, labels)
    base = os.path.join(out_dir, "fig6_models")
    jsonio.write_atomic(base + ".json", across)
    text = correlation.across_models_markdown(across)
    jsonio.write_file_atomic(base + ".md", lambda f: f.write(text))
    return [base + ".json", base + ".md"]


def _render(maps: dict, setup, background: str) -> np.ndarray:
    """The four Fig. 5 panels of one image's maps: [H, 4 W + 3 gap, 3] uint8."""
    m = maps
    return overlays.render_panels(
        m["image"], m["boxes"], m["box_classes"], m["box_valid"], m["seg_labels"], m["box_masks"],
        np.asarray(setup.dataset.det_to_seg), num_seg_classes=setup.spec.num_seg_classes,
        background=background, gap=PANEL_GAP,
    )  # fmt: skip


def _save_figure(
    blocks: dict[int, np.ndarray], out_dir: str, prefix: str, stacked: str, gap: int
) -> list[str]:
    """Writes ``<prefix>_<index>.png`` per image and ``stacked`` (all, top to bottom)."""
    paths = []
    for index, block in blocks.items():
        paths.append(os.path.join(out_dir, f"{prefix}_{index}.png"))
        overlays.save_png(block, paths[-1])
    if blocks:
        paths.append(os.path.join(out_dir, stacked))
        overlays.save_png(overlays.stack_rows(list(blocks.values()), gap=gap), paths[-1])
    return paths


def write_fig5(result: dict, out_dir: str, *, background: str = "image") -> list[str]:
    """Figure 5 files: one overlay PNG per chosen image and all of them stacked."""
    setup = result["setup"]
    panels = {i: _render(m, setup, background) for i, m in sorted(result["maps"].items())}
    return _save_figure(panels, out_dir, "fig5_overlay", "fig5_overlays.png", COMPARE_ROW_GAP)


def write_fig5_compare(
    results: Sequence[dict], labels: Sequence[str], out_dir: str, *, background: str = "image"
) -> list[str]:
    """Figure 5 across checkpoints: per chosen image, one labelled row of panels per
    checkpoint (``fig5_compare_<index>.png``), and all images stacked (``fig5_compare.png``).

    Args:
      results: ``collect_split`` outputs of the checkpoints (same config and images).
      labels: one text per result.
    """
    width = overlays.label_width(labels)
    blocks = {}
    for index in sorted(results[0]["maps"]):
        panels = [_render(r["maps"][index], r["setup"], background) for r in results]
        block = overlays.compare_rows(panels, labels, width=width, gap=COMPARE_ROW_GAP)
        panel_width = (panels[0].shape[1] - 3 * PANEL_GAP) // 4
        header = overlays.column_header(
            overlays.PANEL_TITLES, panel_width, gap=PANEL_GAP, left=width
        )  # what each column shows, over every image's block
        blocks[index] = np.concatenate([header, block], axis=0)
    return _save_figure(blocks, out_dir, "fig5_compare", "fig5_compare.png", COMPARE_IMAGE_GAP)
