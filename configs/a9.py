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
    return config
