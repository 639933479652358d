"""grain input pipeline over a TFDS data source (in-process, random access).

* ``preprocess``: one decoded example -> fixed-size arrays (resize keeping the aspect
  ratio, pad bottom/right; boxes padded to ``max_boxes`` with a valid mask; padding
  pixels get ``IGNORE_LABEL``; optional horizontal flip). Bad input raises ``DataError``
  naming the dataset, the record and the problem.
* ``make_train_dataset``: a ``grain.MapDataset`` whose element ``s`` is the batch of
  training step ``s``. The order is a pure function of (seed, indices, step), so a
  resumed run neither replays nor skips batches. ``indices`` is the labeled pool.
* ``iterate_eval``: fixed-size batches over a list of indices, the last one padded with
  ``valid = False`` (big_vision ``pad_shard_unpad``).
* ``read_threads``: how many threads read ahead (``iterate_train``, ``iterate_eval``): 2
  where the host's CPU trains, up to 8 where it feeds an accelerator.

Box policy (documented clip): boxes are clipped to the image; a box with NaN/inf
coordinates, x2 <= x1 or y2 <= y1 (degenerate) or no area left inside the image is an
error. When an image holds more than ``max_boxes`` boxes the largest ``max_boxes`` are
kept and the drop is counted in the example's ``num_dropped_boxes``; evaluation reads such
an image's ground truth again with all its boxes (``ground_truth``, ``train.evaluate``), so
mAP counts them. Crowd regions (COCO ``iscrowd``, ``data/features.py``) are checked like
boxes and never enter a batch; ``num_crowd_boxes`` counts them, and evaluation reads them
the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import grain
import numpy as np
import PIL.Image

from mtal_jax.structs import IGNORE_LABEL

log = logging.getLogger(__name__)


class DataError(ValueError):
    """An example that cannot be used, with the record and the problem in the message."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the network needs from every example.

    Attributes:
      image_hw: (H, W) network input size, both divisible by 32.
      max_boxes: M, boxes per image after padding.
      num_det_classes: C_det (labels must lie in [0, C_det)).
      num_seg_classes: C_seg (mask ids in [0, C_seg) or IGNORE_LABEL).
      name: dataset name used in error messages.
    """

    image_hw: tuple[int, int]
    max_boxes: int
    num_det_classes: int
    num_seg_classes: int
    name: str = "dataset"


def _record(spec: Spec, index: int, example: dict) -> str:
    image_id = example.get("image_id", b"?")
    if isinstance(image_id, bytes):
        image_id = image_id.decode("utf-8", "replace")
    return f"{spec.name}[{index}] (image_id={image_id!r})"


def validate(
    example: dict, spec: Spec, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checks one decoded example and returns (image, seg, boxes, labels), boxes clipped.

    Raises:
      DataError: wrong image shape/dtype, mask of another size, unknown class id,
        NaN or degenerate boxes (or crowd regions), boxes outside the image.
    """
    where = _record(spec, index, example)
    image = np.asarray(example["image"])
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise DataError(f"{where}: image must be [H, W, 3] uint8, got {image.shape} {image.dtype}")
    seg = np.asarray(example["segmentation"])
    seg = seg[..., 0] if seg.ndim == 3 else seg
    if seg.shape != image.shape[:2]:
        raise DataError(
            f"{where}: segmentation {seg.shape} and image {image.shape[:2]} differ in size"
        )
    bad = (seg >= spec.num_seg_classes) & (seg != IGNORE_LABEL)
    if bad.any():
        raise DataError(
            f"{where}: unknown segmentation class id(s) {sorted(set(np.unique(seg[bad]).tolist()))} "
            f"(valid: 0..{spec.num_seg_classes - 1} or {IGNORE_LABEL})"
        )
    boxes, labels = _checked_boxes(example, "", where, spec, image.shape[:2])
    if "crowd_boxes" in example:
        _checked_boxes(example, "crowd_", where, spec, image.shape[:2])
    return image, seg, boxes, labels


def _checked_boxes(
    example: dict, prefix: str, where: str, spec: Spec, image_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The example's ``<prefix>boxes`` [M, 4] float32 clipped to the image and their
    ``<prefix>box_labels`` (``crowd_labels`` for the crowd regions) [M] int64, checked.

    Raises:
      DataError: labels and boxes of different lengths, NaN, unknown class ids,
        degenerate boxes, boxes entirely outside the image.
    """
    what, whats = ("crowd region", "crowd region(s)") if prefix else ("box", "box(es)")
    boxes = np.asarray(example[prefix + "boxes"], np.float32).reshape(-1, 4)
    labels = example[prefix + "labels" if prefix else "box_labels"]
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if len(labels) != len(boxes):
        raise DataError(f"{where}: {len(boxes)} {whats} but {len(labels)} labels")
    if not np.isfinite(boxes).all():
        raise DataError(
            f"{where}: {what} coordinates contain NaN or inf: {boxes[~np.isfinite(boxes).all(1)]}"
        )
    unknown = (labels < 0) | (labels >= spec.num_det_classes)
    if unknown.any():
        raise DataError(
            f"{where}: unknown detection class id(s) {labels[unknown].tolist()} of {whats} "
            f"(valid: 0..{spec.num_det_classes - 1})"
        )
    degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if degenerate.any():
        raise DataError(
            f"{where}: degenerate {whats} (x2 <= x1 or y2 <= y1): {boxes[degenerate].tolist()}"
        )
    h, w = image_hw
    clipped = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
    outside = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    if outside.any():
        raise DataError(
            f"{where}: {whats} entirely outside the {w}x{h} image: {boxes[outside].tolist()}"
        )
    return clipped, labels


def _content_hw(image_hw: tuple[int, int], spec: Spec) -> tuple[int, int]:
    """(nh, nw): the size an image of ``image_hw`` is resized to (aspect kept, fits the
    network input ``spec.image_hw``)."""
    (hh, ww), (h0, w0) = spec.image_hw, image_hw
    scale = min(hh / h0, ww / w0)
    return max(1, min(hh, round(h0 * scale))), max(1, min(ww, round(w0 * scale)))


def _resize_boxes(boxes: np.ndarray, image_hw: tuple[int, int], content_hw) -> np.ndarray:
    """[N, 4] xyxy boxes in pixels of an ``image_hw`` image -> pixels of it resized to
    ``content_hw`` (float32)."""
    (h0, w0), (nh, nw) = image_hw, content_hw
    return (boxes * np.array([nw / w0, nh / h0, nw / w0, nh / h0], np.float32)).astype(np.float32)


def ground_truth(example: dict, spec: Spec, index: int) -> dict[str, np.ndarray]:
    """Every ground-truth box and crowd region of one example in network input pixels,
    as evaluation reads them: none dropped, no padding, no flip.

    Args:
      example: decoded example (as for ``preprocess``).
      spec: target sizes and class counts.
      index: the example's position in its split (for errors).

    Returns:
      ``boxes`` [M, 4] float32 xyxy, ``labels`` [M] int64, ``crowd_boxes`` [K, 4] float32
      and ``crowd_labels`` [K] int64 (K = 0 without crowd regions).

    Raises:
      DataError: as ``validate``.
    """
    image, _, boxes, labels = validate(example, spec, index)
    image_hw = image.shape[:2]
    content_hw = _content_hw(image_hw, spec)
    where = _record(spec, index, example)
    if "crowd_boxes" in example:
        crowd, crowd_labels = _checked_boxes(example, "crowd_", where, spec, image_hw)
    else:
        crowd, crowd_labels = np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)
    return {
        "boxes": _resize_boxes(boxes, image_hw, content_hw),
        "labels": labels,
        "crowd_boxes": _resize_boxes(crowd, image_hw, content_hw),
        "crowd_labels": crowd_labels,
    }


def preprocess(
    example: dict, spec: Spec, index: int, *, flip: bool = False
) -> dict[str, np.ndarray]:
    """Validates, resizes (aspect kept), pads and optionally flips one example.

    Args:
      example: decoded TFDS example (common format, ``data/features.py``).
      spec: target sizes and class counts.
      index: the example's position in its split (pool index), for errors and ``index``.
      flip: mirror left-right (after resizing, before padding).

    Returns:
      dict of ``images`` [H, W, 3] uint8, ``boxes`` [M, 4] float32 xyxy, ``box_labels`` [M]
      int32, ``box_valid`` [M] bool, ``seg_labels`` [H, W] int32, ``valid`` bool,
      ``index`` int32, ``content_hw`` [2] int32 (resized size before padding),
      ``num_dropped_boxes`` int32 and ``num_crowd_boxes`` int32 (crowd regions, not in
      the batch: ``ground_truth`` reads them).
    """
    image, seg, boxes, labels = validate(example, spec, index)
    hh, ww = spec.image_hw
    h0, w0 = image.shape[:2]
    nh, nw = _content_hw((h0, w0), spec)
    if (nh, nw) != (h0, w0):
        image = np.asarray(PIL.Image.fromarray(image).resize((nw, nh), PIL.Image.BILINEAR))
        seg = np.asarray(
            PIL.Image.fromarray(seg.astype(np.uint8)).resize((nw, nh), PIL.Image.NEAREST)
        )
        boxes = _resize_boxes(boxes, (h0, w0), (nh, nw))
    if flip:
        image, seg = image[:, ::-1], seg[:, ::-1]
        boxes = np.stack([nw - boxes[:, 2], boxes[:, 1], nw - boxes[:, 0], boxes[:, 3]], -1)
    out_image = np.zeros((hh, ww, 3), np.uint8)
    out_image[:nh, :nw] = image
    out_seg = np.full((hh, ww), IGNORE_LABEL, np.int32)
    out_seg[:nh, :nw] = seg
    m = spec.max_boxes
    dropped = max(0, len(boxes) - m)
    if dropped:
        keep = np.argsort(
            -(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"
        )[:m]
        boxes, labels = boxes[np.sort(keep)], labels[np.sort(keep)]
    n = len(boxes)
    out_boxes = np.zeros((m, 4), np.float32)
    out_boxes[:n] = boxes
    out_labels = np.zeros((m,), np.int32)
    out_labels[:n] = labels
    return {
        "images": out_image,
        "boxes": out_boxes,
        "box_labels": out_labels,
        "box_valid": np.arange(m) < n,
        "seg_labels": out_seg,
        "valid": np.bool_(True),
        "index": np.int32(index),
        "content_hw": np.array([nh, nw], np.int32),
        "num_dropped_boxes": np.int32(dropped),
        "num_crowd_boxes": np.int32(len(example.get("crowd_labels", ()))),
    }


def padding_example(spec: Spec) -> dict[str, np.ndarray]:
    """An all-zero example with ``valid`` False and ``index`` -1 (fills partial batches)."""
    hh, ww = spec.image_hw
    m = spec.max_boxes
    return {
        "images": np.zeros((hh, ww, 3), np.uint8),
        "boxes": np.zeros((m, 4), np.float32),
        "box_labels": np.zeros((m,), np.int32),
        "box_valid": np.zeros((m,), bool),
        "seg_labels": np.full((hh, ww), IGNORE_LABEL, np.int32),
        "valid": np.bool_(False),
        "index": np.int32(-1),
        "content_hw": np.zeros((2,), np.int32),
        "num_dropped_boxes": np.int32(0),
        "num_crowd_boxes": np.int32(0),
    }


class _TrainOrder:
    """Random-access source: element i is example ``indices[perm_e[i % n]]``, e = i // n.

    Each epoch has its own permutation, derived from (seed, epoch) only.
    """

    def __init__(self, source: Any, indices: np.ndarray, seed: int, length: int):
        self._source, self._indices, self._seed, self._length = source, indices, seed, length
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i: int) -> tuple[int, dict]:
        n = len(self._indices)
        epoch = int(i) // n
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self._seed, epoch]).permutation(n)
        index = int(self._indices[self._perms[epoch][int(i) % n]])
        return index, self._source[index]


def _collate(examples: Sequence[dict]) -> dict[str, np.ndarray]:
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def make_train_dataset(
    source: Any,
    indices: Sequence[int],
    spec: Spec,
    *,
    batch_size: int,
    num_steps: int,
    seed: int,
    flip: bool = True,
) -> grain.MapDataset:
    """Training batches: ``ds[s]`` is the batch of step ``s`` (0 <= s < num_steps).

    Args:
      source: random-access data source (``tfds.data_source`` / ``as_data_source``).
      indices: the labeled pool (indices into ``source``).
      spec: sizes and classes.
      batch_size: global batch size.
      num_steps: length of the dataset in batches.
      seed: data seed (fold the cycle into it).
      flip: random horizontal flip with probability 0.5 (deterministic per element).

    Raises:
      ValueError: when ``indices`` is empty.
    """
    indices = np.asarray(indices, np.int64)
    if len(indices) == 0:
        raise ValueError("cannot train on an empty labeled pool")
    order = _TrainOrder(source, indices, seed, num_steps * batch_size)

    def prep(item, rng: np.random.Generator):
        index, example = item
        return preprocess(example, spec, index, flip=bool(flip and rng.random() < 0.5))

    ds = grain.MapDataset.source(order).random_map(prep, seed=seed)
    return ds.batch(batch_size, batch_fn=_collate)


def read_threads(backend: str | None = None, cpu_count: int | None = None) -> int:
    """In-process read-ahead threads of the input pipeline: 2 where the network trains on
    the host's CPU (its cores do the training), one per core up to 8 on an accelerator,
    where the host only feeds it and a 2-thread pipeline is slower than the step
    (docs/benchmarks.md, "Input pipeline"). Threads read ahead only: every batch is the
    same whatever their number.

    Args:
      backend: JAX backend name (default ``jax.default_backend()``).
      cpu_count: the host's cores (default ``os.cpu_count()``).
    """
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend == "cpu":
        return 2
    return max(2, min(8, cpu_count or os.cpu_count() or 2))


def read_options(threads: int | None = None) -> grain.ReadOptions:
    """grain's read-ahead: ``threads`` threads (default ``read_threads()``) and a buffer of
    at least 4 elements and at least one per thread (a smaller buffer would leave threads
    idle, and grain warns about it on every iterator: the 8 threads of a GPU host's
    pipeline read with 4 until 2026-12-06)."""
    threads = threads or read_threads()
    return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(4, threads))


def iterate_train(
    ds: grain.MapDataset, start_step: int, *, prefetch_threads: int | None = None
) -> Iterator[dict]:
    """Iterates ``ds`` from ``start_step`` with in-process read-ahead threads
    (``prefetch_threads``, default ``read_threads()``)."""
    it = ds.slice(slice(start_step, None)).to_iter_dataset(read_options(prefetch_threads))
    return iter(it)


def iterate_eval(
    source: Any,
    indices: Sequence[int],
    spec: Spec,
    *,
    batch_size: int,
    prefetch_threads: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields fixed-size batches over ``indices`` in order (read ahead by
    ``prefetch_threads`` threads, default ``read_threads()``).

    Negative indices and the missing tail of the last batch become padding examples
    (``valid`` False, ``index`` -1), so callers can pre-pad (multi-process scoring).
    """
    indices = np.asarray(indices, np.int64)
    num_batches = -(-len(indices) // batch_size)

    def load(b: int) -> dict[str, np.ndarray]:
        chunk = indices[b * batch_size : (b + 1) * batch_size]
        examples = [
            preprocess(source[int(i)], spec, int(i)) if i >= 0 else padding_example(spec)
            for i in chunk
        ]
        examples += [padding_example(spec)] * (batch_size - len(examples))
        return _collate(examples)

    ds = grain.MapDataset.range(num_batches).map(load)
    yield from ds.to_iter_dataset(read_options(prefetch_threads))
