"""A generic folder (COCO instances JSON + semantic PNGs) as a TFDS builder: bring your own data.

Layout of ``root``::

    annotations/instances_<split>.json   COCO "images", "annotations", "categories"
    images/<file_name>                   (``images_dir``; ``{split}`` is replaced)
    semantic/<file_name stem>.png        optional (``semantic_dir``): 8-bit class ids,
                                         255 = ignore, same size as the image

Detection: each non-crowd annotation's ``bbox`` ``[x, y, w, h]`` -> xyxy, clipped to
the image; classes are ``det_categories`` (default every category, in id order);
annotations of other categories give no box. A crowd annotation (``iscrowd`` 1) of a
detection class is a crowd region (``crowd_boxes``, ``crowd_labels``): not an object to
find, and the detections inside it are ignored by mAP, as pycocotools' COCOeval does.

Segmentation classes: ``seg_classes`` (default the category names in id order +
``"background"``). When the ``semantic_dir`` folder exists every image needs its PNG
there; otherwise the map is painted from the annotations' masks (polygons or RLE,
rasterised as pycocotools does; largest first; a mask gets the segmentation class of
its category name, or ``IGNORE_LABEL`` when ``seg_classes`` has no such name;
``"background"`` elsewhere; boxes without a mask -> ignore), and an image without any
mask gets an all-ignore map.

Streaming: the annotation file is scanned once (``json_records``) to index the byte
spans of each image's annotations; an image's annotations are re-read when its example
is written.
"""

from __future__ import annotations

import collections
import os
import pathlib
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import (
    cache,
    coco_classes,
    errors,
    examples,
    features,
    files,
    json_records,
    rasterize,
)
from mtal_jax.structs import IGNORE_LABEL

_ANNOTATIONS_GLOB = "annotations/instances_*.json"


def _id(row):
    """The record's id for messages (None when the record is not an object)."""
    return row.get("id") if isinstance(row, dict) else None


def _categories(path: pathlib.Path) -> dict[int, str]:
    """COCO category id -> name (ids sorted)."""
    result = {}
    for _, _, row in json_records.iter_records(path, key="categories"):
        record = f"category {_id(row)!r:.80}"
        category_id = examples.record_id(
            examples.field(row, "id", path, record), what="category id", path=path, record=record
        )
        examples.check_new_key(result, category_id, what="category id", path=path, record=record)
        result[category_id] = json_records.fix_text(str(examples.field(row, "name", path, record)))
    return dict(sorted(result.items(), key=lambda item: (str(type(item[0])), item[0])))


class CocoFolder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """COCO-style folder; options are part of the prepared cache's identity."""

    name = "coco_folder"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "COCO instances + optional semantic PNGs.",
        "1.1.0": (
            "Crowd annotations of detection classes kept as crowd regions (ignored by mAP, as "
            "COCOeval): they need a valid bbox, and their pixels take det_to_seg like the "
            "objects of their class."
        ),
    }
    code_path = None  # Not a TFDS dataset package (see camvid.Camvid).

    def __init__(
        self,
        *,
        root: str | os.PathLike | None = None,
        splits: dict[str, str] | None = None,
        images_dir: str = "images",
        semantic_dir: str = "semantic",
        det_categories: list[str] | tuple[str, ...] | None = None,
        seg_classes: list[str] | tuple[str, ...] | None = None,
        det_to_seg: list[int] | tuple[int, ...] | None = None,
        on_error: str = "raise",
        **kwargs,
    ):
        """Args:
        root: the folder (None only to read a prepared dataset).
        splits: split name -> COCO JSON relative to root; default every
          ``annotations/instances_<split>.json``.
        images_dir: image folder relative to root (``{split}`` is replaced).
        semantic_dir: semantic PNG folder relative to root (``{split}`` is replaced).
        det_categories: category names that are detection classes (C_det, in this
          order); default all categories in id order.
        seg_classes: C_seg segmentation class names; default category names + background.
        det_to_seg: [C_det] segmentation id of each detection class; default by name.
        on_error: "raise" or "skip" (see ``mtal_jax.data.errors``).
        **kwargs: ``tfds.core.GeneratorBasedBuilder`` arguments (``data_dir``, ...).
        """
        self.options = {
            "root": cache.resolve_root(root),
            "splits": dict(splits) if splits is not None else None,
            "images_dir": images_dir,
            "semantic_dir": semantic_dir,
            "det_categories": list(det_categories) if det_categories is not None else None,
            "seg_classes": list(seg_classes) if seg_classes is not None else None,
            "det_to_seg": list(det_to_seg) if det_to_seg is not None else None,
            "on_error": errors.check_policy(on_error),
        }
        self._classes = None
        super().__init__(**cache.builder_kwargs(self.options, kwargs))

    def _split_paths(self) -> dict[str, pathlib.Path]:
        root = pathlib.Path(cache.check_root(self.options["root"], self.name))
        if self.options["splits"] is not None:
            return {s: root / p for s, p in self.options["splits"].items()}
        paths = sorted(root.glob(_ANNOTATIONS_GLOB))
        if not paths:
            raise errors.DatasetError(
                f"no COCO files {_ANNOTATIONS_GLOB}", path=root, reason=errors.MISSING_FILE
            )
        return {p.stem.removeprefix("instances_"): p for p in paths}

    def classes(self) -> dict:
        """Class names and maps (``category_to_det``, ``category_to_seg``) from the files."""
        if self._classes is not None:
            return self._classes
        paths = self._split_paths()
        first = next(iter(paths.values()))
        categories = _categories(first)
        for path in paths.values():
            if _categories(path) != categories:
                raise examples.malformed(
                    f"categories differ from those of {first}", path, "categories"
                )
        self._classes = coco_classes.resolve_classes(
            categories,
            det_categories=self.options["det_categories"],
            seg_classes=self.options["seg_classes"],
            det_to_seg=self.options["det_to_seg"],
            path=first,
        )
        return self._classes

    def _info(self) -> tfds.core.DatasetInfo:
        if self.options["root"] is not None:
            c = self.classes()
            metadata = features.make_metadata(c["det_classes"], c["seg_classes"], c["det_to_seg"])
        else:  # Reading a prepared dataset: the stored metadata replaces this.
            metadata = tfds.core.MetadataDict()
        return cache.dataset_info(
            self,
            metadata,
            description=__doc__,
            homepage="https://cocodataset.org/#format-data",
            crowd=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Local files only.
        return {s: self._generate_examples(s, p) for s, p in self._split_paths().items()}

    def _generate_examples(self, split: str, path: pathlib.Path):
        log = errors.SkipLog(self.options["on_error"], self.name, split)
        root = pathlib.Path(self.options["root"])
        images_dir = root / self.options["images_dir"].format(split=split)
        semantic_dir = root / self.options["semantic_dir"].format(split=split)
        spans = collections.defaultdict(list)
        for offset, length, row in json_records.iter_records(path, key="annotations"):
            try:
                record = f"annotation {_id(row)!r:.80}"
                image_id = examples.record_id(
                    examples.field(row, "image_id", path, record),
                    what="image_id",
                    path=path,
                    record=record,
                )
            except errors.DatasetError as e:
                log.skip(e, kind="object")  # Belongs to no image.
                continue
            spans[image_id].append((offset, length))
        seen, as_text = {}, {}
        with open(path, "rb") as f:
            for _, _, image in json_records.iter_records(path, key="images"):
                record = f"image {_id(image)!r:.80}"
                try:
                    image_id = examples.record_id(
                        examples.field(image, "id", path, record),
                        what="image id",
                        path=path,
                        record=record,
                    )
                    examples.check_new_key(
                        seen, image_id, what="image id", path=path, record=record
                    )
                    examples.check_new_key(  # 1 and "1": one example key
                        as_text, str(image_id), what="image id (as text)", path=path,
                        record=record,
                    )  # fmt: skip
                    anns = [
                        json_records.read_record(f, o, n, path=str(path))
                        for o, n in spans.get(image_id, ())
                    ]
                    example = self._example(
                        path, image, anns, images_dir, semantic_dir, record, log
                    )
                except errors.DatasetError as e:
                    log.skip(e, kind="frame")
                    continue
                log.written += 1
                yield str(image_id), example
        # annotations whose image_id names no image (never silently dropped)
        by_text = {str(i): i for i in seen}
        for image_id in sorted(set(spans) - set(seen), key=str):
            twin = by_text.get(str(image_id))
            hint = (
                f"; image {twin!r} has that id as a {type(twin).__name__}, the annotation "
                f"as a {type(image_id).__name__}: write both the same way"
                if twin is not None
                else ""
            )
            log.skip(
                errors.DatasetError(
                    f"{len(spans[image_id])} annotation(s) name image_id {image_id!r:.80}, "
                    f"which no image of this file has{hint}",
                    path=path, record=f"annotations of image_id {image_id!r:.80}",
                    reason=errors.MALFORMED_RECORD,
                ),
                kind="object",
            )  # fmt: skip
        self.info.metadata["skipped"][split] = log.finish(path)

    def _example(self, path, image, anns, images_dir, semantic_dir, record, log):
        file_name = examples.field(image, "file_name", path, record)
        file_name = json_records.fix_text(file_name) if isinstance(file_name, str) else file_name
        root = self.options["root"]
        image_path = files.join_inside(root, images_dir, file_name, path=path, record=record)
        encoded, height, width = files.read_image(image_path, record=record)
        examples.check_size(
            (
                examples.field(image, "height", path, record),
                examples.field(image, "width", path, record),
            ),
            (height, width),
            path=path,
            record=record,
            what=f"COCO images[].height/width of {file_name}",
        )
        classes = self.classes()
        boxes, labels, layers, unmasked = [], [], [], []
        crowd_boxes, crowd_labels = [], []
        for ann in anns:
            ann_record = f"{record} annotation {_id(ann)!r:.80}"
            mask = self._mask(ann, height, width, path, ann_record)
            crowd = bool(ann.get("iscrowd"))
            try:
                det, box, clipped = self._classify(ann, classes, height, width, path, ann_record)
                label = classes["category_to_seg"][ann["category_id"]]
            except errors.DatasetError as e:
                log.skip(e, kind="object")  # Skipped: no box, its pixels are ignored.
                det, box, label = None, None, IGNORE_LABEL
            if det is not None:
                (crowd_boxes if crowd else boxes).append(box)
                (crowd_labels if crowd else labels).append(det)
                log.clipped_boxes += clipped
                label = classes["det_to_seg"][det]
            if mask is not None:
                layers.append((mask, label))
            elif box is not None and not crowd:  # a crowd region without a mask paints nothing
                unmasked.append(box)
        if semantic_dir.is_dir():
            semantic_path = files.join_inside(
                root, semantic_dir, file_name, path=path, record=record, what="semantic PNG"
            )
            segmentation = self._semantic_png(semantic_path, (height, width), record)
        elif layers:
            layers.sort(key=lambda layer: -int(layer[0].sum()))
            background = classes["seg_classes"].index("background")
            segmentation = rasterize.paint_semantic(
                height, width, background=background, layers=layers, unmasked_boxes=unmasked
            )
        else:
            segmentation = np.full((height, width), IGNORE_LABEL, np.uint8)
        return examples.make_example(
            image=encoded,
            segmentation=segmentation,
            boxes=boxes,
            box_labels=labels,
            image_id=file_name,
            crowd_boxes=crowd_boxes,
            crowd_labels=crowd_labels,
        )

    def _classify(self, ann, classes, height, width, path, record):
        """Returns (detection id or None, box or None, clipped). A crowd annotation of a
        detection class gives its region like any box; one of another category gives no box
        (its bbox is not read: it is only pixels)."""
        category_id = examples.field(ann, "category_id", path, record)
        if not isinstance(category_id, (int, str)) or category_id not in classes["category_to_det"]:
            raise errors.DatasetError(
                f"category_id {category_id} is not in categories",
                path=path,
                record=record,
                reason=errors.UNKNOWN_CATEGORY,
            )
        det = classes["category_to_det"][category_id]
        if det is None and ann.get("iscrowd"):
            return None, None, False
        x, y, w, h = _xywh(examples.field(ann, "bbox", path, record), path, record)
        box, clipped = examples.clip_box(
            [x, y, x + w, y + h], height, width, path=path, record=record
        )
        return det, box, clipped

    def _mask(self, ann, height, width, path, record) -> np.ndarray | None:
        segmentation = ann.get("segmentation") if isinstance(ann, dict) else None
        if not segmentation:
            return None
        if isinstance(segmentation, dict):
            examples.check_size(
                segmentation.get("size", ()),
                (height, width),
                path=path,
                record=record,
                what="RLE segmentation",
            )
            return rasterize.decode_rle(segmentation, path=path, record=record)
        return rasterize.coco_polygons_mask(segmentation, height, width, path=path, record=record)

    def _semantic_png(self, image_relative: pathlib.Path, image_hw, record) -> np.ndarray:
        png_path = image_relative.with_suffix(".png")
        labels = files.read_label_png(png_path, record=record)
        examples.check_size(
            labels.shape, image_hw, path=png_path, record=record, what="semantic PNG"
        )
        num_classes = len(self.classes()["seg_classes"])
        bad = (labels >= num_classes) & (labels != IGNORE_LABEL)
        if bad.any():
            raise errors.DatasetError(
                f"class ids {sorted(set(labels[bad].tolist()))[:10]} outside [0, {num_classes}) "
                f"and not {IGNORE_LABEL}",
                path=png_path,
                record=record,
                reason=errors.BAD_MASK,
            )
        return labels.astype(np.uint8)


def _xywh(bbox, path, record) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError) as e:
        raise examples.malformed(f"bbox {bbox!r} is not [x, y, w, h]", path, record) from e
    return x, y, w, h


def prepare(data_dir: str, root: str, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """Prepares a COCO-style folder from ``root`` into ``data_dir`` (if not already there).

    Args:
      data_dir: where the prepared array_record files go.
      root: the folder.
      **builder_kwargs: ``CocoFolder`` options (``splits``, ``images_dir``,
        ``semantic_dir``, ``det_categories``, ``seg_classes``, ``det_to_seg``, ``on_error``).

    Returns:
      The prepared builder (``builder.as_data_source(split)``).
    """
    return cache.download_and_prepare(CocoFolder(data_dir=data_dir, root=root, **builder_kwargs))
