"""The paper's analyses on a trained checkpoint (shell): Table II, Figure 6, Figure 5.

  python -m mtal_jax.analysis.cli --config configs/default.py --checkpoint RUN_DIR \
      --out_dir analysis/ [--analyses table2,fig6,fig5] [--taus 0.1,0.3,0.5,0.7] \
      [--max_images 0] [--overlay_images 0,1,2,3] [--pool RUN/trial_0/cycle_0/pool.json]

``RUN_DIR`` is a training run directory holding ``train/best`` (e.g.
``workdir/trial_0/cycle_0`` or ``workdir/reference``), as for ``select.py``. The images
are the config's eval split (``config.eval.max_images`` or ``--max_images`` of them). The
BoxMask settings come from ``config.al.strategy.kwargs["ours"]`` (tau, crop_size,
context_margin, crop_chunk, eps, weights). Writes to ``--out_dir``:

* ``table2_boxmask_accuracy.{json,md,png}``: BoxMask mIoU against the ground truth of the
  box's class inside the detected boxes, per tau (paper Table II);
* ``fig6_correlation.{json,md,png}``: Pearson / Spearman correlation of S_loc, S_cls, S_seg
  (and the combined score) with the per-image detection classification, detection
  localisation and segmentation losses and with each other (paper Fig. 6);
* ``fig5_overlay_<index>.png`` and ``fig5_overlays.png``: boxes, segmentation, BoxMasks and
  the disagreement map of the chosen images (paper Fig. 5).
"""

from __future__ import annotations

import os
import sys

from mtal_jax import runtime

if __name__ == "__main__":
    runtime.configure_host_devices()

import jax
import ml_collections
import numpy as np
import tqdm
from absl import app, flags
from ml_collections import config_flags

from mtal_jax import jsonio
from mtal_jax.al import experiment, select_cli
from mtal_jax.analysis import boxmask_accuracy, collect, correlation, overlays
from mtal_jax.data import pipeline
from mtal_jax.train import evaluate

ANALYSES = ("table2", "fig6", "fig5")
SCORE_COLUMNS = {"S_loc": "s_loc", "S_cls": "s_cls", "S_seg": "s_seg", "score": "score"}
LOSS_COLUMNS = {"L_det_cls": "loss_det_cls", "L_det_loc": "loss_det_loc", "L_seg": "loss_seg"}
_OURS_KEYS = ("crop_size", "context_margin", "crop_chunk", "eps")
_MAP_KEYS = ("seg_labels", "box_masks", "boxes", "box_classes", "box_valid")


def collect_split(
    config: ml_collections.ConfigDict,
    checkpoint: str,
    *,
    taus: tuple[float, ...],
    max_images: int = 0,
    overlay_images: tuple[int, ...] = (),
    pool_json: str | None = None,
    progress: bool = True,
) -> dict:
    """Runs the analysis function over the eval split, or over the unlabeled training
    images of ``pool_json`` (a cycle's ``pool.json``: Fig. 6 on the cycle-0 pool).

    Returns:
      {"columns": name -> [N] per-image values (valid images, in split order), "index": [N],
       "intersection"/"union": [len(taus), C_seg], "maps": {index: dict of maps},
       "setup": experiment.Setup}.
    """
    setup = experiment.build_setup(config)
    variables = select_cli.load_variables(config, setup, checkpoint)
    ours = dict(config.al.strategy.kwargs.get("ours", {})) if config.al.strategy.kwargs else {}
    kwargs = dict(
        decode_kwargs=experiment.decode_kwargs(config),
        det_to_seg=np.asarray(setup.dataset.det_to_seg, np.int32),
        loss_weights=setup.train_cfg.loss_weights,
        taus=taus,
        tau=float(ours.get("tau", 0.3)),
        weights=tuple(ours.get("weights", (1.0, 1.0, 1.0))),
        **{k: ours[k] for k in _OURS_KEYS if k in ours},
    )
    analysis_fn = jax.jit(collect.make_analysis_fn(setup.model, **kwargs))
    if pool_json:
        source = setup.dataset.sources[config.data.train_split]
        labeled = np.zeros(len(source), bool)
        labeled[np.asarray(jsonio.read(pool_json)["labeled_ids"], np.int64)] = True
        indices = np.flatnonzero(~labeled)
    else:
        source = setup.dataset.sources[config.data.eval_split]
        indices = np.arange(len(source))
    limit = max_images or config.eval.max_images
    indices = indices[:limit] if limit else indices
    n = len(indices)
    batch_size = config.eval.batch_size
    per_image: dict[str, list] = {}
    inter = union = 0.0
    batches = pipeline.iterate_eval(source, indices, setup.spec, batch_size=batch_size)
    for host in tqdm.tqdm(
        batches, total=-(-n // batch_size), desc="analysis", disable=not progress
    ):
        out = jax.device_get(analysis_fn(variables, evaluate.to_batch(host)))
        keep = np.asarray(out["valid"], bool)
        for key in ("index", *SCORE_COLUMNS.values(), *LOSS_COLUMNS.values(), "num_boxes"):
            per_image.setdefault(key, []).append(np.asarray(out[key])[keep])
        inter = inter + np.asarray(out["iou_intersection"], np.float64)
        union = union + np.asarray(out["iou_union"], np.float64)
    maps = {}
    if overlay_images:
        chosen = [i for i in overlay_images if 0 <= i < len(source)]
        host = next(pipeline.iterate_eval(source, chosen, setup.spec, batch_size=len(chosen)))
        maps_fn = jax.jit(collect.make_analysis_fn(setup.model, return_maps=True, **kwargs))
        out = jax.device_get(maps_fn(variables, evaluate.to_batch(host)))
        for row, index in enumerate(chosen):
            maps[index] = {k: np.asarray(out[k][row]) for k in _MAP_KEYS}
            maps[index]["image"] = host["images"][row]
    columns = {k: np.concatenate(v) for k, v in per_image.items()}
    return {"columns": columns, "intersection": inter, "union": union, "maps": maps, "setup": setup}


def write_table2(result: dict, taus: tuple[float, ...], out_dir: str) -> list[str]:
    """Table II files: JSON, Markdown and a PNG of mIoU vs tau."""
    seg_classes = list(result["setup"].dataset.seg_classes)
    rows = []
    for t, tau in enumerate(taus):
        miou, per_class = boxmask_accuracy.miou_from_counts(
            result["intersection"][t], result["union"][t]
        )
        rows.append(
            {"tau": tau, "miou": miou, "per_class_iou": dict(zip(seg_classes, per_class.tolist()))}
        )
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
    """Figure 6 files: correlation JSON, Markdown and heat-map PNG."""
    cols = result["columns"]
    values = {name: cols[key] for name, key in {**SCORE_COLUMNS, **LOSS_COLUMNS}.items()}
    tables = correlation.correlation_tables(values)
    base = os.path.join(out_dir, "fig6_correlation")
    jsonio.write_atomic(base + ".json", tables)
    with open(base + ".md", "w", encoding="utf-8") as f:
        f.write(correlation.markdown_table(tables["pearson"], tables["names"], "Pearson") + "\n\n")
        f.write(correlation.markdown_table(tables["spearman"], tables["names"], "Spearman") + "\n")
    correlation.plot_heatmaps(tables, base + ".png")
    return [base + ext for ext in (".json", ".md", ".png")]


def write_fig5(result: dict, out_dir: str) -> list[str]:
    """Figure 5 files: one overlay PNG per chosen image and all of them stacked."""
    setup = result["setup"]
    paths, panels = [], []
    for index, m in sorted(result["maps"].items()):
        panel = overlays.render_panels(
            m["image"], m["boxes"], m["box_classes"], m["box_valid"], m["seg_labels"], m["box_masks"],
            np.asarray(setup.dataset.det_to_seg), num_seg_classes=setup.spec.num_seg_classes,
        )  # fmt: skip
        path = os.path.join(out_dir, f"fig5_overlay_{index}.png")
        overlays.save_png(panel, path)
        paths.append(path)
        panels.append(panel)
    if panels:
        spacer = np.full((4, panels[0].shape[1], 3), 255, np.uint8)
        stacked = np.concatenate([x for p in panels for x in (p, spacer)][:-1], axis=0)
        paths.append(os.path.join(out_dir, "fig5_overlays.png"))
        overlays.save_png(stacked, paths[-1])
    return paths


def run(
    config: ml_collections.ConfigDict,
    checkpoint: str,
    out_dir: str,
    *,
    analyses: tuple[str, ...] = ANALYSES,
    taus: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7),
    max_images: int = 0,
    overlay_images: tuple[int, ...] = (0, 1, 2, 3),
    pool_json: str | None = None,
    progress: bool = True,
) -> list[str]:
    """Runs the chosen analyses and returns the written paths."""
    unknown = set(analyses) - set(ANALYSES)
    if unknown:
        raise ValueError(f"unknown analyses {sorted(unknown)}; valid: {', '.join(ANALYSES)}")
    os.makedirs(out_dir, exist_ok=True)
    result = collect_split(
        config, checkpoint, taus=taus, max_images=max_images,
        overlay_images=overlay_images if "fig5" in analyses else (), pool_json=pool_json,
        progress=progress,
    )  # fmt: skip
    paths = []
    if "table2" in analyses:
        paths += write_table2(result, taus, out_dir)
    if "fig6" in analyses:
        paths += write_fig6(result, out_dir)
    if "fig5" in analyses:
        paths += write_fig5(result, out_dir)
    return paths


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    runtime.setup(config.mesh)
    for path in run(
        config,
        _CHECKPOINT.value,
        _OUT_DIR.value,
        analyses=tuple(a.strip() for a in _ANALYSES.value.split(",") if a.strip()),
        taus=_floats(_TAUS.value),
        max_images=_MAX_IMAGES.value,
        overlay_images=_ints(_OVERLAY_IMAGES.value),
        pool_json=_POOL.value,
        progress=_PROGRESS.value,
    ):
        print(path)


if __name__ == "__main__":
    _ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.append(_ROOT)  # configs/ imports from the repo root
    _CONFIG = config_flags.DEFINE_config_file(
        "config",
        os.path.join(_ROOT, "configs", "default.py"),
        "Config the checkpoint was trained with.",
    )
    _CHECKPOINT = flags.DEFINE_string(
        "checkpoint", None, "Training run dir (holding train/best).", required=True
    )
    _OUT_DIR = flags.DEFINE_string("out_dir", "analysis", "Output directory.")
    _ANALYSES = flags.DEFINE_string(
        "analyses", ",".join(ANALYSES), "Comma-separated subset of table2,fig6,fig5."
    )
    _TAUS = flags.DEFINE_string("taus", "0.1,0.3,0.5,0.7", "BoxMask thresholds of Table II.")
    _MAX_IMAGES = flags.DEFINE_integer(
        "max_images", 0, "Eval images to use (0 = config.eval.max_images or all)."
    )
    _OVERLAY_IMAGES = flags.DEFINE_string(
        "overlay_images", "0,1,2,3", "Eval-split indices drawn in Fig. 5."
    )
    _POOL = flags.DEFINE_string(
        "pool",
        None,
        "A cycle's pool.json: analyse its unlabeled training images instead of the eval split.",
    )
    _PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")
    app.run(main)
