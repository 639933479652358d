"""CamVid (SegNet 11-class version) as a TFDS builder in the common example format.

Layout of ``root`` (the SegNet release of CamVid)::

    train.txt, test.txt (, val.txt)   lines "<image path> <label path>" relative to root
    train/*.png, trainannot/*.png, ...  RGB images and 8-bit label maps (ids 0..11)

Segmentation: the 11 classes below; Void (11) becomes ``IGNORE_LABEL``. Detection:
CamVid has no instances, so boxes are the 4-connected components of Car (8),
Pedestrian (9) and Bicyclist (10) with at least ``min_area`` pixels
(``components.component_boxes``); they are approximate (touching objects merge).
"""

from __future__ import annotations

import os
import pathlib
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import cache, components, errors, examples, features, files
from mtal_jax.structs import IGNORE_LABEL

SEG_CLASSES = [
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
]
DET_CLASSES = ["car", "pedestrian", "bicyclist"]
DET_TO_SEG = [8, 9, 10]
VOID_ID = 11
SPLITS = ("train", "val", "test")


class Camvid(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """CamVid from a local folder; options are part of the prepared cache's identity."""

    name = "camvid"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Boxes from connected components; void -> ignore."
    }
    # Not a TFDS dataset package, so no checksums file next to the code; tfds's lookup
    # of one needs the `importlib_resources` backport, not a declared dependency.
    code_path = None

    def __init__(
        self,
        *,
        root: str | os.PathLike | None = None,
        min_area: int = 16,
        on_error: str = "raise",
        **kwargs,
    ):
        """Args:
        root: the CamVid folder (None only to read an already prepared dataset).
        min_area: smallest connected component (pixels) that gives a box; 16 at
          240x180 matches the usual 64 at 480x360.
        on_error: "raise" or "skip" (see ``mtal_jax.data.errors``).
        **kwargs: ``tfds.core.GeneratorBasedBuilder`` arguments (``data_dir``, ...).
        """
        self.options = {
            "root": cache.resolve_root(root),
            "min_area": int(min_area),
            "on_error": errors.check_policy(on_error),
        }
        super().__init__(**cache.builder_kwargs(self.options, kwargs))

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = features.make_metadata(DET_CLASSES, SEG_CLASSES, DET_TO_SEG)
        return cache.dataset_info(
            self,
            metadata,
            description=__doc__,
            homepage="http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Local files only.
        root = pathlib.Path(cache.check_root(self.options["root"], self.name))
        splits = {
            s: self._generate_examples(root, s) for s in SPLITS if (root / f"{s}.txt").is_file()
        }
        if not splits:
            raise errors.DatasetError(
                f"no split list ({', '.join(s + '.txt' for s in SPLITS)}) found",
                path=root,
                reason=errors.MISSING_FILE,
            )
        return splits

    def _generate_examples(self, root: pathlib.Path, split: str):
        log = errors.SkipLog(self.options["on_error"], self.name, split)
        list_path = root / f"{split}.txt"
        seen = {}
        with list_path.open("rb") as f:  # Decoded line by line: a bad line is one bad record.
            for line_number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    line = _decode_line(raw, list_path, line_number)
                    key, example = self._example(root, list_path, line_number, line)
                    examples.check_new_key(
                        seen, key, what="image name", path=list_path, record=f"line {line_number}"
                    )
                except errors.DatasetError as e:
                    log.skip(e, kind="frame")
                    continue
                log.written += 1
                yield key, example
        self.info.metadata["skipped"][split] = log.finish(list_path)

    def _example(self, root: pathlib.Path, list_path: pathlib.Path, line_number: int, line: str):
        record = f"line {line_number}"
        parts = line.split()
        if len(parts) != 2:
            raise errors.DatasetError(
                f"expected '<image> <label>', got {line.strip()!r}",
                path=list_path,
                record=record,
                reason=errors.MALFORMED_RECORD,
            )
        # A leading "/" means the dataset folder, and so does SegNet's own list prefix
        # "/SegNet/CamVid/" (its release's lists); ".." may not leave it.
        image_path, label_path = (
            files.join_inside(root, root, _relative(p), path=list_path, record=record, what=w)
            for p, w in zip(parts, ("image", "label map"))
        )
        image, height, width = files.read_image(image_path, record=record)
        labels = files.read_label_png(label_path, record=record)
        examples.check_size(
            labels.shape, (height, width), path=label_path, record=record, what="label map"
        )
        if labels.max(initial=0) > VOID_ID:
            raise errors.DatasetError(
                f"label ids up to {int(labels.max())}; CamVid has 0..{VOID_ID}",
                path=label_path,
                record=record,
                reason=errors.BAD_MASK,
            )
        boxes, box_labels = components.component_boxes(
            labels, DET_TO_SEG, min_area=self.options["min_area"]
        )
        segmentation = np.where(labels == VOID_ID, IGNORE_LABEL, labels).astype(np.uint8)
        image_id = image_path.stem
        return image_id, examples.make_example(
            image=image,
            segmentation=segmentation,
            boxes=list(boxes),
            box_labels=list(box_labels),
            image_id=image_id,
        )


def _decode_line(raw: bytes, list_path: pathlib.Path, line_number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.DatasetError(
            f"line is not UTF-8 text (byte {e.start}: {raw[e.start : e.start + 1]!r})",
            path=list_path,
            record=f"line {line_number}",
            reason=errors.MALFORMED_RECORD,
        ) from e


def prepare(data_dir: str, root: str, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """Prepares CamVid from ``root`` into ``data_dir`` (if not already there).

    Args:
      data_dir: where the prepared array_record files go.
      root: the CamVid folder.
      **builder_kwargs: ``Camvid`` options (``min_area``, ``on_error``).

    Returns:
      The prepared builder (``builder.as_data_source(split)``).
    """
    return cache.download_and_prepare(Camvid(data_dir=data_dir, root=root, **builder_kwargs))


_SEGNET_PREFIX = "/SegNet/CamVid/"


def _relative(entry: str) -> str:
    """A list entry relative to the dataset folder: without SegNet's ``/SegNet/CamVid/``
    prefix or a leading ``/``."""
    entry = entry.removeprefix(_SEGNET_PREFIX)
    return entry.lstrip("/")
