"""A9 / TUMTraf (and any OpenLABEL 1.0 labels) as a TFDS builder in the common format.

Layout of ``root``: OpenLABEL JSON label files selected per split by a glob
(``splits``, default ``train/**/*.json``, ``val/**/*.json``, ``test/**/*.json``, the
present ones; or every ``**/*.json`` as ``train`` when none of those exists), and the
images anywhere under ``root`` (or ``images_dir``). One example per (label file,
frame, camera); parsing rules in ``openlabel_format``.

The image of a frame is the first that exists of: ``image_template`` (a path under
root formatted with ``stem``, ``frame`` (int when numeric) and ``camera``), the file
names the label file gives (``image_file_names``, stream ``uri``), and, for
single-frame files, the label file's stem; each name is tried relative to the label
file, to root, then by file name (any image extension) in an index of the image files.

Keep ``data_dir`` outside ``root`` (the default glob would also match TFDS's own JSON).

Classes: object types are normalised (lower case, ``-`` and spaces to ``_``) and
mapped by ``class_map`` (default: each of ``det_classes`` to itself; the A9 classes
by default). A type mapped to None is known but not detected: no box, its mask pixels
and box get ``IGNORE_LABEL`` (e.g. KITTI ``DontCare``). Segmentation classes are the
detection classes + background, painted from the instance masks (largest first);
objects without a mask mark their box as ignore; an image without any mask has no
segmentation labels, so its whole map is ``IGNORE_LABEL``.
"""

from __future__ import annotations

import os
import pathlib
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import cache, errors, examples, features, files, openlabel_format, rasterize
from mtal_jax.structs import IGNORE_LABEL

A9_CLASSES = [
    "car",
    "truck",
    "trailer",
    "van",
    "motorcycle",
    "bus",
    "pedestrian",
    "bicycle",
    "emergency_vehicle",
    "other",
]
DEFAULT_SPLITS = {"train": "train/**/*.json", "val": "val/**/*.json", "test": "test/**/*.json"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def normalize_type(name: str) -> str:
    """``"EMERGENCY VEHICLE"`` / ``"Emergency-Vehicle"`` -> ``"emergency_vehicle"``."""
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


class Openlabel(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """OpenLABEL labels + images from a local folder; options are part of the cache identity."""

    name = "openlabel"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "2D boxes, poly2d / RLE instance masks, camera selection."
    }
    code_path = None  # Not a TFDS dataset package (see camvid.Camvid).

    def __init__(
        self,
        *,
        root: str | os.PathLike | None = None,
        splits: dict[str, str] | None = None,
        cameras: list[str] | tuple[str, ...] | None = None,
        det_classes: list[str] | tuple[str, ...] = tuple(A9_CLASSES),
        class_map: dict[str, str | None] | None = None,
        images_dir: str | None = None,
        image_template: str | None = None,
        on_error: str = "raise",
        **kwargs,
    ):
        """Args:
        root: the dataset folder (None only to read a prepared dataset).
        splits: split name -> glob of label files relative to root.
        cameras: coordinate systems / streams / sensor ids to keep; None keeps all.
        det_classes: C_det detection class names.
        class_map: normalised object type -> detection class name or None (ignored);
          added to the identity map of ``det_classes``.
        images_dir: folder (relative to root) holding the images; default root.
        image_template: e.g. ``"images/{camera}/{frame:06d}.png"``; tried first.
        on_error: "raise" or "skip" (see ``mtal_jax.data.errors``).
        **kwargs: ``tfds.core.GeneratorBasedBuilder`` arguments (``data_dir``, ...).
        """
        det_classes = [str(c) for c in det_classes]
        mapping = {normalize_type(c): c for c in det_classes}
        for key, value in (class_map or {}).items():
            if value is not None and value not in det_classes:
                raise ValueError(
                    f"class_map[{key!r}] = {value!r} is not in det_classes {det_classes}"
                )
            mapping[normalize_type(key)] = value
        if det_classes and all(v is None for v in mapping.values()):
            raise ValueError(
                f"class_map maps every type (and each of det_classes {det_classes}) to None: "
                "no object would become a box"
            )
        self.options = {
            "root": cache.resolve_root(root),
            "splits": dict(splits) if splits is not None else None,
            "cameras": sorted(cameras) if cameras is not None else None,
            "det_classes": det_classes,
            "class_map": mapping,
            "images_dir": images_dir,
            "image_template": image_template,
            "on_error": errors.check_policy(on_error),
        }
        super().__init__(**cache.builder_kwargs(self.options, kwargs))

    def _info(self) -> tfds.core.DatasetInfo:
        det_classes = self.options["det_classes"]
        metadata = features.make_metadata(
            det_classes, det_classes + ["background"], list(range(len(det_classes)))
        )
        return cache.dataset_info(
            self,
            metadata,
            description=__doc__,
            homepage="https://www.asam.net/standards/detail/openlabel/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Local files only.
        root = pathlib.Path(cache.check_root(self.options["root"], self.name))
        globs = self.options["splits"]
        if globs is None:
            globs = {s: g for s, g in DEFAULT_SPLITS.items() if next(root.glob(g), None)}
            globs = globs or {"train": "**/*.json"}
        label_files = {s: sorted(root.glob(g)) for s, g in globs.items()}
        empty = [f"{s} ({globs[s]})" for s, paths in label_files.items() if not paths]
        if empty:
            raise errors.DatasetError(
                f"no label files for split(s) {', '.join(empty)}",
                path=root,
                reason=errors.MISSING_FILE,
            )
        index = _image_index(root / (self.options["images_dir"] or ""))
        return {
            s: self._generate_examples(root, paths, index, s) for s, paths in label_files.items()
        }

    def _generate_examples(self, root: pathlib.Path, label_paths, index, split: str):
        log = errors.SkipLog(self.options["on_error"], self.name, split)
        for label_path in label_paths:
            try:
                frames = openlabel_format.parse(
                    files.read_json(label_path), path=label_path, cameras=self.options["cameras"]
                )
            except errors.DatasetError as e:
                log.skip(e, kind="frame")
                continue
            for frame in frames:
                stem = label_path.relative_to(root).with_suffix("")
                key = f"{stem}/{frame.frame_id}/{frame.camera}"
                try:
                    example = self._example(root, label_path, frame, index, key, log)
                except errors.DatasetError as e:
                    log.skip(e, kind="frame")
                    continue
                log.written += 1
                yield key, example
        self.info.metadata["skipped"][split] = log.finish(root)

    def _example(self, root, label_path, frame, index, image_id, log):
        record = f"frame {frame.frame_id} camera {frame.camera}"
        image_path = self._find_image(root, label_path, frame, index, record)
        image, height, width = files.read_image(image_path, record=record)
        if frame.size_hw is not None:
            examples.check_size(
                frame.size_hw,
                (height, width),
                path=label_path,
                record=record,
                what=f"the stream's image size (image {image_path.name})",
            )
        det_classes, mapping = self.options["det_classes"], self.options["class_map"]
        boxes, labels, layers, unmasked = [], [], [], []
        any_mask = False
        for obj in frame.objects:
            obj_record = f"{record} object {obj.object_id}"
            mask = self._mask(obj, height, width, label_path, obj_record)
            any_mask |= mask is not None
            det = None
            try:
                det = self._classify(obj, mapping, det_classes, label_path, obj_record)
                obj_boxes = obj.boxes_xyxy or (
                    [rasterize.mask_box(mask)] if mask is not None else []
                )
                obj_boxes = [b for b in obj_boxes if b is not None]
                if det is not None and not obj_boxes:
                    raise errors.DatasetError(
                        "object has no bbox and an empty mask",
                        path=label_path,
                        record=obj_record,
                        reason=errors.MALFORMED_RECORD,
                    )
                clipped = [
                    examples.clip_box(b, height, width, path=label_path, record=obj_record)
                    for b in obj_boxes
                ]
            except errors.DatasetError as e:
                log.skip(e, kind="object")  # Skipped: no box, its pixels are ignored.
                det, clipped = None, []
            seg_label = det if det is not None else IGNORE_LABEL
            if det is not None:
                for box, was_clipped in clipped:
                    boxes.append(box)
                    labels.append(det)
                    log.clipped_boxes += was_clipped
            if mask is not None:
                layers.append((mask, seg_label))
            else:
                unmasked.extend(box for box, _ in clipped)
        if any_mask:
            layers.sort(key=lambda layer: -int(layer[0].sum()))
            segmentation = rasterize.paint_semantic(
                height, width, background=len(det_classes), layers=layers, unmasked_boxes=unmasked
            )
        else:
            segmentation = np.full((height, width), IGNORE_LABEL, np.uint8)
        return examples.make_example(
            image=image,
            segmentation=segmentation,
            boxes=boxes,
            box_labels=labels,
            image_id=image_id,
        )

    def _classify(self, obj, mapping, det_classes, path, record) -> int | None:
        name = normalize_type(obj.type)
        if name not in mapping:
            raise errors.DatasetError(
                f"unknown object type {obj.type!r} (normalised {name!r}); add it to class_map",
                path=path,
                record=record,
                reason=errors.UNKNOWN_CATEGORY,
            )
        return None if mapping[name] is None else det_classes.index(mapping[name])

    def _mask(self, obj, height, width, path, record) -> np.ndarray | None:
        if not obj.has_mask:
            return None
        mask = np.zeros((height, width), bool)
        if obj.contours:
            hierarchy = [h for _, h in obj.contours]
            mask |= rasterize.contour_mask(
                [c for c, _ in obj.contours],
                height,
                width,
                hierarchy=None if any(h is None for h in hierarchy) else hierarchy,
                path=path,
                record=record,
            )
        for rle in obj.rles:
            if not isinstance(rle, dict):
                rle = {"size": [height, width], "counts": rle}
            size = rle.get("size", ())
            examples.check_size(
                tuple(size) if isinstance(size, (list, tuple)) else size,
                (height, width),
                path=path,
                record=record,
                what="RLE mask",
            )
            mask |= rasterize.decode_rle(rle, path=path, record=record)
        return mask

    def _find_image(self, root, label_path, frame, index, record) -> pathlib.Path:
        names = []
        if self.options["image_template"]:
            frame_id = int(frame.frame_id) if frame.frame_id.isdigit() else frame.frame_id
            try:
                names.append(
                    self.options["image_template"].format(
                        stem=label_path.stem, frame=frame_id, camera=frame.camera
                    )
                )
            except (KeyError, IndexError, ValueError, TypeError) as e:
                raise errors.DatasetError(
                    f"image_template {self.options['image_template']!r} does not fit this "
                    f"frame (stem {label_path.stem!r}, frame {frame_id!r}, camera "
                    f"{frame.camera!r}; placeholders: stem, frame, camera): "
                    f"{type(e).__name__}: {e}",
                    path=label_path, record=record, reason=errors.MALFORMED_RECORD,
                ) from None  # fmt: skip
        names += frame.image_names
        if not frame.multi_frame:
            names.append(label_path.stem)
        for name in names:
            for base in (label_path.parent, root):
                try:  # Names leading out of root are not opened (only looked up by name).
                    candidate = files.join_inside(root, base, name, path=label_path, record=record)
                    if candidate.is_file():
                        return candidate
                except (errors.DatasetError, OSError):  # OSError: e.g. a name too long.
                    continue
            found = index.get(pathlib.PurePath(name).name) or index.get(_stem(name))
            if found and len(found) > 1:  # the same name in several folders
                # the one in a folder named like the label file's, else refused (never a guess)
                near = [c for c in found if c.parent.name == label_path.parent.name]
                if len(near) != 1:
                    raise errors.DatasetError(
                        f"image name {name!r} is ambiguous: {len(found)} images have it "
                        f"({', '.join(str(c) for c in found[:4])}); set image_template or "
                        "images_dir so that each label file names one image",
                        path=label_path, record=record, reason=errors.MISSING_FILE,
                    )  # fmt: skip
                found = near
            if found:
                return found[0]
        raise errors.DatasetError(
            f"no image found (tried {names}; by name and stem under {root})",
            path=label_path,
            record=record,
            reason=errors.MISSING_FILE,
        )


def _stem(name: str) -> str:
    path = pathlib.PurePath(name)
    return path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name


def _image_index(folder: pathlib.Path) -> dict[str, list[pathlib.Path]]:
    """File name and stem -> the paths of the images under ``folder`` that have it."""
    index: dict[str, list[pathlib.Path]] = {}
    for directory, _, names in sorted(files.walk(folder)):  # linked folders too
        for name in sorted(names):
            if pathlib.PurePath(name).suffix.lower() in IMAGE_EXTENSIONS:
                path = pathlib.Path(directory) / name
                for key in dict.fromkeys((name, _stem(name))):
                    index.setdefault(key, []).append(path)
    return index


def prepare(data_dir: str, root: str, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """Prepares an OpenLABEL dataset (A9 / TUMTraf defaults) from ``root`` into ``data_dir``.

    Args:
      data_dir: where the prepared array_record files go.
      root: the dataset folder.
      **builder_kwargs: ``Openlabel`` options (``splits``, ``cameras``, ``det_classes``,
        ``class_map``, ``images_dir``, ``image_template``, ``on_error``).

    Returns:
      The prepared builder (``builder.as_data_source(split)``).
    """
    return cache.download_and_prepare(Openlabel(data_dir=data_dir, root=root, **builder_kwargs))
