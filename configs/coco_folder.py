"""Your own data as a COCO-style folder (``mtal_jax.data.coco_folder``). CPU sized.

Layout of ``--config.data.root`` (the builder's docstring has every rule)::

    annotations/instances_train.json   COCO "images", "annotations", "categories"
    annotations/instances_val.json     the evaluation split (any instances_<split>.json)
    images/<file_name>                 the images the JSON names
    semantic/<stem>.png                optional: 8-bit class ids, 255 = ignore; without
                                       it the segmentation is painted from the masks

Detection classes are the categories (``det_categories`` to keep some, in id order);
segmentation classes the category names + ``"background"`` (``seg_classes``,
``det_to_seg`` to set them). Crowd annotations (``iscrowd`` 1) are regions mAP ignores, as
pycocotools' COCOeval does. A bad record stops preparation with an error naming the file and
the record (``on_error="skip"`` drops and counts them instead).

Choices (ours, stated here): the synthetic default's network, optimizer and passes over the
pool (``configs/default.py``; set ``--config.model.backbone=resnet50`` and
``--config.model.pretrained_backbone=<.pth or .npz>`` for real images on a GPU), input
256x384 (aspect kept, padded), up to 64 boxes per image.

Commands:
  python -m mtal_jax.data summary --config configs/coco_folder.py --data-root /data/mine
  python train.py --config configs/coco_folder.py --workdir runs/mine \
      --config.data.root=/data/mine
  python select.py --config configs/coco_folder.py --config.data.root=/data/mine \
      --checkpoint runs/mine/trial_0/ours/cycle_5 --strategy ours --budget 100 \
      --format coco --output batch_01

Expected: not measured here (no such data ships); cost scales with the pool as for the
synthetic default (docs/regime.md).
"""

from configs import default


def get_config(arg=None):
    config = default.get_config(arg)  # presets (e.g. "quick") as in default.py

    config.data.name = "coco_folder"
    config.data.root = ""  # your folder (required; --config.data.root=...)
    config.data.data_dir = "~/.cache/mtal_jax/tfds"  # where prepared array_record files go
    # Options of the builder (mtal_jax.data.coco_folder.CocoFolder): "splits" ({split:
    # annotation file}), "images_dir" ("images"; "{split}" is replaced), "semantic_dir",
    # "det_categories", "seg_classes", "det_to_seg". None of the synthetic default's.
    config.data.builder_kwargs = {
        "on_error": "raise",  # or "skip": drop bad records, counted in info.metadata
    }
    config.data.train_split = "train"
    config.data.eval_split = "val"
    config.data.image_size = (256, 384)  # network input (H, W), multiples of 32
    config.data.max_boxes = 64
    return config
