"""nuImages (official table layout) as a TFDS builder in the common example format.

Layout of ``root`` (as the nuImages download)::

    v1.0-train/ v1.0-val/ (v1.0-mini/)   tables: sample.json, sample_data.json,
        object_ann.json, surface_ann.json, category.json (calibrated_sensor.json,
        sensor.json optional: camera channel; else taken from the file path)
    samples/<CHANNEL>/*.jpg               images; sample_data.filename is relative to root

One example per key-camera frame (``sample.key_camera_token``), optionally only the
cameras in ``cameras`` (default the front camera, as in the paper).

Classes: the nuScenes detection mapping (``CATEGORY_TO_DET``) gives 10 detection
classes; categories it leaves out (animal, stroller, wheelchair, debris, ambulance,
ego vehicle, ...) give no box and their pixels get ``IGNORE_LABEL``. The semantic
map is the 10 classes + driveable_surface + background, painted from the masks:
surfaces first, then objects from the largest to the smallest mask (small objects
stay visible); objects without a mask mark their box as ignore where no other mask
lies. Boxes are the table's ``bbox`` ``[xmin, ymin, xmax, ymax]`` clipped to the image.

Bad input (``mtal_jax.data.errors``): an unknown category, a box outside the image or
a record without ``bbox`` drops that object (no box, its mask pixels ignored); a mask
that does not decode or has another size than the image, or a missing or corrupt
image, drops the frame, since a wrong mask would corrupt the whole semantic map.

Streaming: tables are scanned record by record (``json_records``); only the tokens
of the chosen frames and the byte spans of their annotations are indexed, and each
frame's annotations are re-read from disk when its example is written.
"""

from __future__ import annotations

import os
import pathlib
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import (
    cache,
    errors,
    examples,
    features,
    files,
    json_records,
    nuimages_tables,
    rasterize,
)
from mtal_jax.structs import IGNORE_LABEL

DET_CLASSES = [
    "car",
    "truck",
    "trailer",
    "bus",
    "construction_vehicle",
    "bicycle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "barrier",
]
SEG_CLASSES = DET_CLASSES + ["driveable_surface", "background"]
DET_TO_SEG = list(range(len(DET_CLASSES)))
DRIVEABLE_ID, BACKGROUND_ID = 10, 11

# nuImages category -> detection class, or None: known, no box, pixels ignored.
CATEGORY_TO_DET: dict[str, str | None] = {
    "vehicle.car": "car",
    "vehicle.truck": "truck",
    "vehicle.trailer": "trailer",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.construction": "construction_vehicle",
    "vehicle.bicycle": "bicycle",
    "vehicle.motorcycle": "motorcycle",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "movable_object.trafficcone": "traffic_cone",
    "movable_object.barrier": "barrier",
    "animal": None,
    "human.pedestrian.personal_mobility": None,
    "human.pedestrian.stroller": None,
    "human.pedestrian.wheelchair": None,
    "movable_object.debris": None,
    "movable_object.pushable_pullable": None,
    "static_object.bicycle_rack": None,
    "vehicle.emergency.ambulance": None,
    "vehicle.emergency.police": None,
    "vehicle.ego": None,
}
# Surface category -> segmentation id.
SURFACE_TO_SEG = {"flat.driveable_surface": DRIVEABLE_ID, "vehicle.ego": IGNORE_LABEL}
DEFAULT_SPLITS = {"train": "v1.0-train", "val": "v1.0-val", "mini": "v1.0-mini"}


class Nuimages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """nuImages from local tables and images; options are part of the cache identity."""

    name = "nuimages"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Key-camera frames, nuScenes detection classes."
    }
    code_path = None  # Not a TFDS dataset package (see camvid.Camvid).

    def __init__(
        self,
        *,
        root: str | os.PathLike | None = None,
        splits: dict[str, str] | None = None,
        cameras: list[str] | tuple[str, ...] | None = ("CAM_FRONT",),
        on_error: str = "raise",
        **kwargs,
    ):
        """Args:
        root: the nuImages folder (None only to read a prepared dataset).
        splits: split name -> table folder under root; default the present ones of
          ``DEFAULT_SPLITS``.
        cameras: camera channels to keep (key-camera frames only); None keeps all.
        on_error: "raise" or "skip" (see ``mtal_jax.data.errors``).
        **kwargs: ``tfds.core.GeneratorBasedBuilder`` arguments (``data_dir``, ...).
        """
        self.options = {
            "root": cache.resolve_root(root),
            "splits": dict(splits) if splits is not None else None,
            "cameras": sorted(cameras) if cameras is not None else None,
            "on_error": errors.check_policy(on_error),
        }
        # sweeps/: non-key frames, never read
        super().__init__(**cache.builder_kwargs(self.options, kwargs, skip_dirs=("sweeps",)))

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = features.make_metadata(DET_CLASSES, SEG_CLASSES, DET_TO_SEG)
        return cache.dataset_info(
            self, metadata, description=__doc__, homepage="https://www.nuscenes.org/nuimages"
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Local files only.
        root = pathlib.Path(cache.check_root(self.options["root"], self.name))
        splits = self.options["splits"]
        if splits is None:
            splits = {
                s: d for s, d in DEFAULT_SPLITS.items() if (root / d / "sample.json").is_file()
            }
        if not splits:
            raise errors.DatasetError(
                f"no table folder ({', '.join(DEFAULT_SPLITS.values())}) with sample.json",
                path=root,
                reason=errors.MISSING_FILE,
            )
        return {s: self._generate_examples(root, root / d, s) for s, d in splits.items()}

    def _generate_examples(self, root: pathlib.Path, tables: pathlib.Path, split: str):
        log = errors.SkipLog(self.options["on_error"], self.name, split)
        categories = nuimages_tables.read_categories(tables / "category.json")
        frames, listed = nuimages_tables.read_frames(tables, self.options["cameras"])
        spans = {}
        for table in ("object_ann", "surface_ann"):
            spans[table] = nuimages_tables.index_spans(tables / f"{table}.json", frames, listed)
        with (
            open(tables / "object_ann.json", "rb") as objects_file,
            open(tables / "surface_ann.json", "rb") as surfaces_file,
        ):
            opened = {"object_ann": objects_file, "surface_ann": surfaces_file}
            for token, frame in frames.items():
                try:
                    anns = {
                        table: [
                            json_records.read_record(opened[table], o, n, path=opened[table].name)
                            for o, n in spans[table].get(token, ())
                        ]
                        for table in spans
                    }
                    example = self._example(root, tables, token, frame, anns, categories, log)
                except errors.DatasetError as e:
                    log.skip(e, kind="frame")
                    continue
                log.written += 1
                yield token, example
        self.info.metadata["skipped"][split] = log.finish(tables)

    def _example(self, root, tables, token, frame, anns, categories, log):
        record = f"sample_data {token}"
        data_path = tables / "sample_data.json"
        image_path = files.join_inside(root, root, frame["filename"], path=data_path, record=record)
        image, height, width = files.read_image(image_path, record=record)
        examples.check_size(
            (frame["height"], frame["width"]),
            (height, width),
            path=data_path,
            record=record,
            what=f"sample_data height/width of {frame['filename']}",
        )
        surface_layers, object_layers, boxes, labels, unmasked = [], [], [], [], []
        for table, rows in anns.items():
            path = tables / f"{table}.json"
            for row in rows:
                record = f"{table} {nuimages_tables.record_token(row)}"
                mask = self._mask(row, (height, width), path, record)  # Bad mask: frame error.
                try:
                    seg_label, det, box, clipped = self._classify(
                        table, row, categories, (height, width), path, record
                    )
                except errors.DatasetError as e:
                    log.skip(e, kind="object")  # Skipped: no box, its pixels are ignored.
                    seg_label, det = IGNORE_LABEL, None
                if det is not None:
                    boxes.append(box)
                    labels.append(det)
                    log.clipped_boxes += clipped
                if mask is not None:
                    layers = surface_layers if table == "surface_ann" else object_layers
                    layers.append((mask, seg_label))
                elif det is not None:
                    unmasked.append(box)
        object_layers.sort(key=lambda layer: -int(layer[0].sum()))
        segmentation = rasterize.paint_semantic(
            height,
            width,
            background=BACKGROUND_ID,
            layers=surface_layers + object_layers,
            unmasked_boxes=unmasked,
        )
        return examples.make_example(
            image=image,
            segmentation=segmentation,
            boxes=boxes,
            box_labels=labels,
            image_id=token,
        )

    def _classify(self, table, row, categories, image_hw, path, record):
        """Returns (segmentation label, detection id or None, box or None, clipped)."""
        name = self._category_name(row, categories, path, record)
        known = SURFACE_TO_SEG if table == "surface_ann" else CATEGORY_TO_DET
        if name not in known:
            raise errors.DatasetError(
                f"unknown category {name!r}",
                path=path,
                record=record,
                reason=errors.UNKNOWN_CATEGORY,
            )
        if table == "surface_ann":
            return SURFACE_TO_SEG[name], None, None, False
        if CATEGORY_TO_DET[name] is None:  # Known, outside the detection classes.
            return IGNORE_LABEL, None, None, False
        box, clipped = examples.clip_box(
            examples.field(row, "bbox", path, record), *image_hw, path=path, record=record
        )
        det = DET_CLASSES.index(CATEGORY_TO_DET[name])
        return DET_TO_SEG[det], det, box, clipped

    def _category_name(self, row, categories, path, record) -> str:
        category_token = examples.field(row, "category_token", path, record)
        if not isinstance(category_token, (int, str)) or category_token not in categories:
            raise errors.DatasetError(
                f"category_token {category_token} is not in category.json",
                path=path,
                record=record,
                reason=errors.UNKNOWN_CATEGORY,
            )
        return categories[category_token]

    def _mask(self, row, image_hw, path, record) -> np.ndarray | None:
        mask = row.get("mask") if isinstance(row, dict) else None
        if mask is None:
            return None
        size = mask.get("size", ()) if isinstance(mask, dict) else ()
        examples.check_size(size, image_hw, path=path, record=record, what="mask")
        return rasterize.decode_nuimages_mask(mask, path=path, record=record)


def prepare(data_dir: str, root: str, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """Prepares nuImages from ``root`` into ``data_dir`` (if not already there).

    Args:
      data_dir: where the prepared array_record files go.
      root: the nuImages folder.
      **builder_kwargs: ``Nuimages`` options (``splits``, ``cameras``, ``on_error``).

    Returns:
      The prepared builder (``builder.as_data_source(split)``).
    """
    return cache.download_and_prepare(Nuimages(data_dir=data_dir, root=root, **builder_kwargs))
