"""A9 / TUMTraf (OpenLABEL 1.0 labels): the paper's second benchmark (Sec. IV, Fig. 4).

Paper setting reproduced: camera images of the A9 gantry bridges with 2D boxes and
instance masks; classes car, truck, trailer, van, motorcycle, bus, pedestrian,
bicycle, emergency_vehicle, other; segmentation = those + background. Users supply the
label JSONs and images: nothing is downloaded.

Layout (``mtal_jax.data.openlabel``): label files per split matched by the globs of
``splits`` (relative to root), images found by the names the labels give or by the
label file's stem anywhere under root.

Commands:
  python -m mtal_jax.data summary --config configs/a9.py --data-root /data/a9
  python train.py --config configs/a9.py --workdir runs/a9 --config.data.root=/data/a9

Other sections are the defaults of ``configs/default.py`` until tuned for A9.
"""

from configs import default


def get_config(arg=None):
    config = default.get_config(arg)  # presets (e.g. "quick") as in default.py

    config.data.name = "a9"
    config.data.root = ""  # the A9 / TUMTraf folder (required; --config.data.root=...)
    config.data.data_dir = "~/.cache/mtal_jax/tfds"  # where prepared array_record files go
    config.data.builder_kwargs = {
        "splits": {"train": "train/**/*.json", "val": "val/**/*.json"},  # split -> label glob
        "cameras": None,  # e.g. ["s040_camera_basler_north_16mm"]; None keeps every camera
        "class_map": {},  # extra type -> class (or None to ignore), e.g. {"dontcare": None}
        "on_error": "raise",  # or "skip": drop bad frames/objects, counted in info.metadata
    }
    config.data.train_split = "train"
    config.data.eval_split = "val"
    config.data.image_size = (320, 512)  # network input (H, W): 1200x1920 scaled by 4/15
    config.data.max_boxes = 64
    # Schedule: the paper's ratio (30 000 steps of batch 4 per cycle = ~1.8 passes over the
    # pool, reference 10x that) at batch 16; GPU sized. Scale steps with your pool size.
    config.train.steps = 1000  # ~1.8 passes over a pool of ~9000 frames at batch 16
    config.train.initial_steps = 0  # 0 = train.steps
    config.train.full_steps = 10000
    config.train.lr_warmup_steps = 200
    config.eval.every_steps = 500
    config.checkpoint.every_steps = 500
    return config
