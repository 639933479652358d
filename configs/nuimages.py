"""nuImages, front camera: the paper's main benchmark (Sec. IV, Fig. 3, Table I).

Paper setting reproduced: key-camera frames of the front camera (13,187 train / 3,249
val images), detection classes car, truck, trailer, bus, construction_vehicle, bicycle,
motorcycle, pedestrian, traffic_cone, barrier; segmentation = those + driveable_surface
+ background. Users supply the official files (tables ``v1.0-train``/``v1.0-val`` and
``samples/``): nothing is downloaded.

Commands:
  python -m mtal_jax.data summary --config configs/nuimages.py --data-root /data/nuimages
  python train.py --config configs/nuimages.py --workdir runs/nuimages \
      --config.data.root=/data/nuimages

Other sections are the defaults of ``configs/default.py`` until tuned for nuImages.
"""

from configs import default


def get_config(arg=None):
    config = default.get_config(arg)  # presets (e.g. "quick") as in default.py

    config.data.name = "nuimages"
    config.data.root = ""  # the nuImages folder (required; --config.data.root=...)
    config.data.data_dir = "~/.cache/mtal_jax/tfds"  # where prepared array_record files go
    config.data.builder_kwargs = {
        "splits": {"train": "v1.0-train", "val": "v1.0-val"},  # split -> table folder
        "cameras": ["CAM_FRONT"],  # key-camera frames of these channels (paper: front)
        "on_error": "raise",  # or "skip": drop bad frames/objects, counted in info.metadata
    }
    config.data.train_split = "train"
    config.data.eval_split = "val"
    config.data.image_size = (288, 512)  # network input (H, W): 900x1600 scaled by 0.32
    config.data.max_boxes = 64
    # Schedule: the paper's ratio (30 000 steps of batch 4 per cycle = ~1.8 passes over the
    # pool, reference 10x that) at batch 16; GPU sized. Scale steps with your pool size.
    config.train.steps = 7500  # ~67k CAM_FRONT key frames x 1.8 / 16
    config.train.initial_steps = 0  # 0 = train.steps
    config.train.full_steps = 75000
    config.train.lr_warmup_steps = 500
    config.eval.every_steps = 2500
    config.checkpoint.every_steps = 2500
    return config
