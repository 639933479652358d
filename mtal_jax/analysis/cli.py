"""The paper's analyses on a trained checkpoint (shell): Table II, Figure 6, Figure 5.

  python -m mtal_jax.analysis.cli --config configs/default.py --checkpoint RUN_DIR \
      --out_dir analysis/ [--analyses table2,fig6,fig5] [--taus 0.1,0.3,0.5,0.7] \
      [--max_images 0] [--overlay_images 0,1,2,3] [--pool RUN/trial_0/cycle_0/pool.json] \
      [--overlay_background image|gray]

Figure 5 as in the paper, several models after the last AL cycle (one labelled row each):

  python -m mtal_jax.analysis.cli --config configs/camvid.py --analyses fig5 \
      --checkpoint runs/camvid/trial_0/random/cycle_5,runs/camvid/trial_0/cald/cycle_5,runs/camvid/trial_0/ours/cycle_5 \
      [--labels random,cald,ours] --overlay_images 0,1,2,3 --overlay_background gray \
      --out_dir docs/figures/camvid_fig5

``RUN_DIR`` is a training run directory holding ``train/best`` (e.g.
``workdir/trial_0/cycle_0`` or ``workdir/reference``), as for ``select.py``. The images
are the config's eval split (``config.eval.max_images`` or ``--max_images`` of them). The
BoxMasks and scores are those of selection: the strategy ``--strategy`` (default ``ours``,
or an alias of it in ``config.al.strategy.kwargs``) is built by
``al.experiment.make_strategy`` from the same ``config.al.strategy.kwargs`` (tau,
det_score_threshold, cls_divergence, weights, ...) and scored by the same functions
(``analysis.collect``). Writes to ``--out_dir``:

* ``table2_boxmask_accuracy.{json,md,png}``: BoxMask mIoU against the ground truth of the
  box's class inside the detected boxes, per tau (paper Table II);
* ``fig6_correlation.{json,md,png}``: Pearson / Spearman correlation of S_loc, S_cls, S_seg
  (and the combined score) with the per-image detection classification, detection
  localisation and segmentation losses, with the classification and localisation errors of
  the detected boxes (``box_errors``) and with each other (paper Fig. 6), and the score
  diagnostics of ``al.diagnostics`` (``fig6_diagnostics.json``);
* ``fig5_overlay_<index>.png`` and ``fig5_overlays.png``: boxes, segmentation, BoxMasks and
  the disagreement map of the chosen images (paper Fig. 5).

Fig. 6's readings over several models, e.g. each trial's cycle-0 model on its own pool
(``fig6_models.{json,md}``: each model's statistics, mean, 95 % t interval and p-value over
models):

  python -m mtal_jax.analysis.cli --config configs/default.py --analyses fig6 \
      --checkpoint runs/repro_synthetic/trial_0/cycle_0,runs/repro_synthetic/trial_1/cycle_0 \
      --pool runs/repro_synthetic/trial_0/cycle_0/pool.json,runs/repro_synthetic/trial_1/cycle_0/pool.json \
      --out_dir docs/results/synthetic

With several comma-separated ``--checkpoint`` run dirs only ``--analyses fig5`` or
``--analyses fig6`` is allowed; fig6 writes ``fig6_models.{json,md}`` (above), fig5 writes
``fig5_compare_<index>.png`` and ``fig5_compare.png`` instead: per chosen image,
one row of the four panels per checkpoint, each behind a strip with its label (``--labels``,
default: the strategy folder of ``.../<strategy>/cycle_<k>``, else the run dir's name).
``--overlay_background gray`` draws the panels on flat gray instead of the photo, so the
figure holds model outputs only and may be committed (CamVid's pixels are non-commercial).

Every call also records its wall time in ``--out_dir``'s ``analysis_wall.json`` (``wall_times``:
per analysis, the seconds of the call that last wrote it, dataset and model loading included,
the analyses run with it, the checkpoints, the machine's load and the date; fig6 over
several models under ``fig6_models``), which the results page quotes.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Sequence

from mtal_jax import runtime

if __name__ == "__main__":
    runtime.configure_host_devices()

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from mtal_jax.al import experiment
from mtal_jax.analysis import overlays, wall_times

ANALYSES = ("table2", "fig6", "fig5")


def default_label(checkpoint: str) -> str:
    """Row label of a run dir: ``<strategy>`` for ``.../<strategy>/cycle_<k>``, else its name.

    Examples:
      >>> default_label("runs/camvid/trial_0/ours/cycle_5/")
      'ours'
      >>> default_label("workdir/reference")
      'reference'
    """
    path = os.path.normpath(checkpoint)
    name = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(path))
    if re.fullmatch(r"cycle_\d+", name) and parent:
        return parent
    return name


def check_checkpoints(
    checkpoints: Sequence[str],
    labels: Sequence[str] | None,
    analyses: Sequence[str],
    pools: Sequence[str] = (),
) -> list[str]:
    """Validates the checkpoint / label / analysis / pool combination and returns the labels.

    Raises:
      ValueError: no checkpoint, a label or pool count that differs from the checkpoint
        count (one pool serves every checkpoint), or several checkpoints with analyses other
        than fig5 alone or fig6 alone.
    """
    if not checkpoints:
        raise ValueError("--checkpoint names no run dir")
    if labels is not None and len(labels) != len(checkpoints):
        raise ValueError(
            f"--labels has {len(labels)} entries ({','.join(labels)}) but --checkpoint has "
            f"{len(checkpoints)} run dirs; give one label per checkpoint"
        )
    if len(pools) > 1 and len(pools) != len(checkpoints):
        raise ValueError(
            f"--pool has {len(pools)} entries but --checkpoint has {len(checkpoints)} run dirs; "
            "give one pool.json per checkpoint, or one for all"
        )
    if len(checkpoints) > 1 and set(analyses) not in ({"fig5"}, {"fig6"}):
        raise ValueError(
            f"{len(checkpoints)} checkpoints are only compared in fig5 (one figure) or in fig6 "
            "(its readings over the models), one of the two per call, but --analyses asks for "
            f"{','.join(sorted(analyses))}; run the others once per checkpoint"
        )
    return list(labels) if labels is not None else [default_label(c) for c in checkpoints]


def run(
    config: ml_collections.ConfigDict,
    checkpoint: str | Sequence[str],
    out_dir: str,
    *,
    analyses: tuple[str, ...] = ANALYSES,
    taus: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7),
    max_images: int = 0,
    overlay_images: tuple[int, ...] = (0, 1, 2, 3),
    pool_json: str | Sequence[str] | None = None,
    progress: bool = True,
    labels: Sequence[str] | None = None,
    overlay_background: str = "image",
    strategy: str = "ours",
) -> list[str]:
    """Runs the chosen analyses and returns the written paths (``wall_times.WALL_FILE`` last).

    ``checkpoint`` is one run dir, or a sequence of them; several run dirs allow only
    ``analyses=("fig5",)``, which writes the comparison figure
    (``figures.write_fig5_compare``), or ``analyses=("fig6",)``, which writes Fig. 6's
    readings over the models (``figures.write_fig6_models``; e.g. each trial's cycle-0 model,
    each on its own ``pool_json``).
    ``pool_json``: one path, or one per checkpoint.

    Raises:
      ValueError: unknown analyses or background, or see ``check_checkpoints``.
    """
    with runtime.input_checks():  # the user's flags: one line from the command line
        unknown = set(analyses) - set(ANALYSES)
        if unknown:
            raise ValueError(f"unknown analyses {sorted(unknown)}; valid: {', '.join(ANALYSES)}")
        if overlay_background not in overlays.BACKGROUNDS:
            raise ValueError(
                f"overlay_background {overlay_background!r} is not one of "
                f"{', '.join(overlays.BACKGROUNDS)}"
            )
        checkpoints = [checkpoint] if isinstance(checkpoint, str) else list(checkpoint)
        pools = [pool_json] if isinstance(pool_json, str) else list(pool_json or [])
        labels = check_checkpoints(checkpoints, labels, analyses, pools)
    pools = pools * len(checkpoints) if len(pools) == 1 else pools or [None] * len(checkpoints)
    # Here, not above: they import JAX (seconds), which --help and bad flags need not wait for.
    from mtal_jax.analysis import collect_loop, figures

    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    if len(checkpoints) > 1:
        setup = experiment.build_setup(config)  # one dataset and model; weights per checkpoint
        fig6 = "fig6" in analyses
        results = []
        for c, pool in zip(checkpoints, pools):
            results.append(collect_loop.collect_split(
                config, c, taus=taus, max_images=max_images,
                overlay_images=() if fig6 else overlay_images, pool_json=pool,
                progress=progress, setup=setup, scan=fig6, strategy=strategy,
            ))  # fmt: skip
        if fig6:
            paths = figures.write_fig6_models(results, labels, out_dir)
        else:
            paths = figures.write_fig5_compare(
                results, labels, out_dir, background=overlay_background
            )
        seconds = time.perf_counter() - t0
        names = ("fig6_models",) if fig6 else analyses  # the one-model fig6 keeps its entry
        return paths + [wall_times.record_wall(out_dir, names, checkpoints, seconds)]
    result = collect_loop.collect_split(
        config, checkpoints[0], taus=taus, max_images=max_images,
        overlay_images=overlay_images if "fig5" in analyses else (), pool_json=pools[0],
        progress=progress, strategy=strategy,
    )  # fmt: skip
    paths = []
    if "table2" in analyses:
        paths += figures.write_table2(result, taus, out_dir)
    if "fig6" in analyses:
        paths += figures.write_fig6(result, out_dir)
    if "fig5" in analyses:
        paths += figures.write_fig5(result, out_dir, background=overlay_background)
    return paths + [
        wall_times.record_wall(out_dir, analyses, checkpoints, time.perf_counter() - t0)
    ]


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _strings(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    runtime.setup(config.mesh)
    for path in run(
        config,
        _strings(_CHECKPOINT.value),
        _OUT_DIR.value,
        analyses=tuple(_strings(_ANALYSES.value)),
        taus=_floats(_TAUS.value),
        max_images=_MAX_IMAGES.value,
        overlay_images=_ints(_OVERLAY_IMAGES.value),
        pool_json=_strings(_POOL.value or ""),
        progress=_PROGRESS.value and sys.stderr.isatty(),  # bars on a terminal only
        labels=None if _LABELS.value is None else _strings(_LABELS.value),
        overlay_background=_OVERLAY_BACKGROUND.value,
        strategy=_STRATEGY.value,
    ):
        print(path)


if __name__ == "__main__":
    _ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.append(_ROOT)  # configs/ imports from the repo root
    _CONFIG = config_flags.DEFINE_config_file(
        "config",
        os.path.join(_ROOT, "configs", "default.py"),
        "Config the checkpoint was trained with.",
        lock_config=True,
    )
    _CHECKPOINT = flags.DEFINE_string(
        "checkpoint",
        None,
        "Training run dir (holding train/best); several comma-separated ones compare them "
        "in fig5 (only fig5 allowed then).",
        required=True,
    )
    _LABELS = flags.DEFINE_string(
        "labels",
        None,
        "Comma-separated row labels, one per --checkpoint (default: the strategy folder of "
        ".../<strategy>/cycle_<k>, else the run dir's name).",
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
    _OVERLAY_BACKGROUND = flags.DEFINE_enum(
        "overlay_background",
        "image",
        list(overlays.BACKGROUNDS),
        "Fig. 5 panels on the photo (image) or on flat gray (gray: model outputs only, "
        "committable).",
    )
    _POOL = flags.DEFINE_string(
        "pool",
        None,
        "A cycle's pool.json: analyse its unlabeled training images instead of the eval split "
        "(several checkpoints: one comma-separated pool.json per checkpoint, or one for all).",
    )
    _PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")
    _STRATEGY = flags.DEFINE_string(
        "strategy",
        "ours",
        "Strategy whose BoxMasks and scores are analysed: ours or an alias of it in "
        "config.al.strategy.kwargs (e.g. an ours_kl with cls_divergence='kl').",
    )
    runtime.run_main(main)
