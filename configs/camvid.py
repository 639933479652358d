"""CamVid (SegNet 11-class version): real road scenes, boxes from connected components.

Paper setting reproduced: none directly (the paper uses nuImages and A9); CamVid is the
small real-data check of the same protocol (SPEC §9). Data: ``../shared/data/camvid``
(non-commercial research use; never copied into the repository).

Commands:
  python -m mtal_jax.data summary --config configs/camvid.py
  python train.py --config configs/camvid.py --workdir runs/camvid

Data section (read by ``mtal_jax.data.catalog``): 367 train / 233 test images of
240x180; detection classes car, pedestrian, bicyclist (components of at least
``min_area`` pixels); 11 segmentation classes, void ignored. Other sections are the
defaults of ``configs/default.py`` until tuned for CamVid.
"""

from configs import default


def get_config(arg=None):
    config = default.get_config(arg)  # presets (e.g. "quick") as in default.py

    config.data.name = "camvid"
    config.data.root = "../shared/data/camvid"  # relative to the repository root
    config.data.data_dir = "~/.cache/mtal_jax/tfds"  # where prepared array_record files go
    config.data.builder_kwargs = {
        "min_area": 16,  # pixels; 16 at 240x180 = the usual 64 at 480x360
        "on_error": "raise",  # or "skip": drop bad frames, counted in info.metadata
    }
    config.data.train_split = "train"
    config.data.eval_split = "test"
    config.data.image_size = (192, 256)  # network input (H, W): 180x240 scaled by 16/15
    config.data.max_boxes = 32  # the busiest CamVid frame has 16 boxes (min_area 16)
    return config
