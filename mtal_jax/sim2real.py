"""Sim-to-real pretraining: backbone and neck trained on the embedded synthetic scenes.

The multi-task network is trained on the synthetic generator (``configs/default.py``'s
data, no download) rendered at the *target* config's input size, with the target's
backbone and neck, and the backbone and neck of the best checkpoint are written to the
target's ``config.model.pretrained_backbone`` (``models.pretrained`` format, neck keys
prefixed ``neck/``). The target's runs then start from them; its heads stay randomly
initialised, because the class sets differ (the generator's segmentation classes overlap
CamVid's: sky, building, road, sidewalk, vegetation, car, pedestrian, cyclist, sign).

  python -m mtal_jax.sim2real --config configs/camvid.py
  python -m mtal_jax.sim2real --config configs/camvid.py --steps 3000 --workdir runs/s2r_3k \
      --out runs/s2r_3k.npz

``--init_backbone`` starts the synthetic training from other backbone weights instead of a
random initialisation, e.g. ImageNet ones (``--init_backbone=imagenet:efficientnet_lite0``
for a target with ``model.backbone = "efficientnet_lite0"``; ``models.pretrained``).

Deterministic (the synthetic scenes and the batch order are functions of their seeds) and
resumable: the synthetic run lives in ``--workdir`` (default ``<out>.run/``) and running the
same command again continues it; when the run is complete it only rewrites the weights.
Next to the weights, ``<out>.json`` records what produced them (steps, image size,
backbone, the synthetic eval metrics).
"""

from mtal_jax import runtime

runtime.configure_host_devices()

import json
import logging
import os
import time

import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from mtal_jax import jsonio, workdir_lock
from mtal_jax.al import experiment

# models.pretrained and train.loop (JAX: seconds) are imported where used, so that --help
# and bad flags answer at once.

log = logging.getLogger("mtal_jax.sim2real")  # also under python -m (runtime.setup sets mtal_jax.*)

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/camvid.py", "Target config: input size, backbone, neck, weights path."
)
_SYNTHETIC = config_flags.DEFINE_config_file(
    "synthetic_config", "configs/default.py", "Synthetic config: data and training settings."
)
_OUT = flags.DEFINE_string(
    "out", "", "Weights file (.npz) to write; default the target's model.pretrained_backbone."
)
_WORKDIR = flags.DEFINE_string(
    "workdir", "", "Run directory of the synthetic training (default <out>.run; resumed)."
)
_STEPS = flags.DEFINE_integer("steps", 1200, "Training steps on the synthetic pool (batch 16).")
_SEED = flags.DEFINE_integer("seed", 0, "Training seed.")
_EVAL_IMAGES = flags.DEFINE_integer(
    "eval_images", 200, "Synthetic eval images (the best checkpoint is chosen on them)."
)
_FURNITURE = flags.DEFINE_bool(
    "street_furniture",
    False,
    "Render the synthetic scenes with lamp posts and fences (two more segmentation classes, "
    "synthetic_classes.FURNITURE_CLASSES), which real road scenes such as CamVid's have.",
)
_INIT = flags.DEFINE_string(
    "init_backbone",
    "",
    "Backbone weights the synthetic training starts from (a file or a models.pretrained."
    "PACKAGED key such as imagenet:efficientnet_lite0); default a random initialisation.",
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")


def synthetic_config(
    target: ml_collections.ConfigDict,
    synthetic: ml_collections.ConfigDict,
    *,
    eval_images: int,
    street_furniture: bool = False,
    init_backbone: str = "",
) -> ml_collections.ConfigDict:
    """The synthetic config rendered at the target's input size with the target's network.

    Args:
      target: the config whose runs will load the weights (``data.image_size``,
        ``model.backbone``, ``model.neck_channels``, ``model.head_channels``).
      synthetic: a ``synthetic_driving`` config (``configs/default.py``).
      eval_images: synthetic eval images (0 = the whole eval split).
      street_furniture: render lamp posts and fences too (``synthetic_scene.render_scene``).
      init_backbone: backbone weights to start from ("" = random initialisation).

    Returns:
      A copy of ``synthetic`` with scenes of ``target.data.image_size`` pixels, the target's
      network and ``init_backbone`` as its pretrained weights.

    Raises:
      ValueError: ``synthetic`` is not a synthetic-data config.
    """
    if synthetic.data.name != "synthetic_driving":
        raise ValueError(
            f"--synthetic_config must use the embedded synthetic data, got data.name "
            f"{synthetic.data.name!r}"
        )
    cfg = ml_collections.ConfigDict(synthetic.to_dict())
    h, w = (int(x) for x in target.data.image_size)
    cfg.data.builder_kwargs = dict(cfg.data.builder_kwargs) | {"height": h, "width": w}
    if street_furniture:
        cfg.data.builder_kwargs["street_furniture"] = True
    cfg.data.image_size = (h, w)
    cfg.model.backbone = target.model.backbone
    cfg.model.neck_channels = target.model.neck_channels
    cfg.model.head_channels = target.model.head_channels
    cfg.model.pretrained_backbone = init_backbone
    cfg.eval.max_images = eval_images
    cfg.mesh = ml_collections.ConfigDict(target.mesh.to_dict())
    return cfg


def pretrain(
    target: ml_collections.ConfigDict,
    synthetic: ml_collections.ConfigDict,
    *,
    out: str,
    workdir: str,
    steps: int,
    seed: int = 0,
    eval_images: int = 200,
    street_furniture: bool = False,
    init_backbone: str = "",
    progress: bool = True,
) -> dict:
    """Trains on the synthetic scenes (resuming ``workdir``) and writes backbone and neck.

    Args:
      target: the config that will load the weights.
      synthetic: the synthetic data and training config.
      out: the ``.npz`` to write (atomically; its folder is created).
      workdir: the synthetic run's directory (resumed when it holds a checkpoint).
      steps: training steps (> 0).
      seed: training seed.
      eval_images: synthetic eval images.
      street_furniture: render lamp posts and fences too (``synthetic_config``).
      init_backbone: backbone weights to start from (``synthetic_config``).
      progress: show a progress bar.

    Returns:
      The provenance record also written to ``<out>.json``.

    Raises:
      ValueError: ``steps`` < 1, ``out`` not a ``.npz`` path, or a non-synthetic ``synthetic``.
      workdir_lock.WorkdirLockedError: another process is running the same pretraining.
    """
    from mtal_jax.models import pretrained
    from mtal_jax.train import loop

    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if not out.endswith(".npz"):
        raise ValueError(f"the weights file must end in .npz, got {out!r}")
    cfg = synthetic_config(
        target, synthetic, eval_images=eval_images, street_furniture=street_furniture,
        init_backbone=init_backbone,
    )  # fmt: skip
    setup = experiment.build_setup(cfg)
    log.info(
        "sim-to-real: %d synthetic scenes at %s, %s backbone, %d steps -> %s (run in %s)",
        setup.pool_size, tuple(cfg.data.image_size), cfg.model.backbone, steps, out, workdir,
    )  # fmt: skip
    # one process per run (a second one is refused at once, naming the holder)
    with workdir_lock.hold(workdir):
        t0 = time.time()
        src = setup.dataset.sources
        result = loop.train(
            setup.model, experiment.train_config(cfg, num_steps=steps, seed=seed),
            workdir=workdir, spec=setup.spec, train_source=src[cfg.data.train_split],
            train_indices=np.arange(setup.pool_size), eval_source=src[cfg.data.eval_split],
            eval_indices=setup.eval_indices, mesh=setup.mesh, progress=progress,
        )  # fmt: skip
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        tmp = out[: -len(".npz")] + ".tmp.npz"
        pretrained.save_backbone(result.variables, tmp, neck=True)
        os.replace(tmp, out)
        record = {
            "weights": os.path.abspath(out),
            "image_size": list(cfg.data.image_size),
            "backbone": cfg.model.backbone,
            "neck_channels": int(cfg.model.neck_channels),
            "synthetic_builder_kwargs": dict(cfg.data.builder_kwargs),
            "init_backbone": init_backbone,
            "steps": steps,
            "seed": seed,
            "best_step": result.step,
            "synthetic_eval_images": len(setup.eval_indices),
            "synthetic_metrics": result.metrics,
            "wall_s_this_call": time.time() - t0,
            "run_dir": os.path.abspath(workdir),
        }
        jsonio.write_atomic(out[: -len(".npz")] + ".json", record)
    return record


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    target = _CONFIG.value
    out = os.path.expanduser(_OUT.value or target.model.pretrained_backbone)
    if not out.endswith(".npz"):
        from mtal_jax.models import pretrained

        raise app.UsageError(
            f"the weights file must be a .npz path (set --out or the target's "
            f"config.model.pretrained_backbone), got {out!r}"
            + (" (packaged weights: the target loads them directly, no sim-to-real needed)"
               if out in pretrained.PACKAGED else "")
        )  # fmt: skip
    workdir = os.path.expanduser(_WORKDIR.value) or out[: -len(".npz")] + ".run"
    runtime.setup(target.mesh)
    record = pretrain(
        target, _SYNTHETIC.value, out=out, workdir=workdir, steps=_STEPS.value,
        seed=_SEED.value, eval_images=_EVAL_IMAGES.value, street_furniture=_FURNITURE.value,
        init_backbone=_INIT.value, progress=_PROGRESS.value,
    )  # fmt: skip
    m = record["synthetic_metrics"]
    print(
        f"wrote {out} (backbone + neck; synthetic eval at step {record['best_step']}: "
        f"mAP {m['map']:.4f} AP50 {m['ap50']:.4f} mIoU {m['miou']:.4f})"
    )
    print(json.dumps({k: record[k] for k in ("steps", "image_size", "backbone")}))


if __name__ == "__main__":
    runtime.run_main(main)
