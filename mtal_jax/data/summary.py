"""Per-split counts of a prepared dataset (images, boxes per class), without decoding pixels."""

from __future__ import annotations

import collections

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import errors, features


def summarize(builder: tfds.core.DatasetBuilder) -> dict:
    """Counts the images and boxes of every split of a prepared builder.

    Returns:
      ``{"splits": {split: {"images": N, "boxes_per_class": {class name: n}}}}`` with
      every detection class listed (zeros included), in class order.
    """
    det_classes = features.read_metadata(builder.info)["det_classes"]
    skip = {"image": tfds.decode.SkipDecoding(), "segmentation": tfds.decode.SkipDecoding()}
    splits = {}
    for split in builder.info.splits:
        source = builder.as_data_source(split, decoders=skip)
        counts = collections.Counter()
        for i in range(len(source)):
            counts.update(np.asarray(source[i]["box_labels"]).tolist())
        splits[split] = {
            "images": len(source),
            "boxes_per_class": {name: int(counts[c]) for c, name in enumerate(det_classes)},
        }
    return {"splits": splits}


def skipped_lines(builder: tfds.core.DatasetBuilder) -> list[str]:
    """Human-readable lines about what preparation skipped or clipped (empty if nothing)."""
    lines = []
    for split, report in errors.read_skips(builder.info).items():
        if report.get("frames") or report.get("objects") or report.get("clipped_boxes"):
            lines.append(
                f"{split}: skipped frames {report.get('frames', {})}, objects "
                f"{report.get('objects', {})}; clipped boxes {report.get('clipped_boxes', 0)}"
            )
            lines.extend(f"  e.g. {message}" for message in report.get("examples", {}).values())
    return lines
