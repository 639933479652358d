"""Per-split counts of a prepared dataset: images and boxes per class (without decoding
pixels), and segmentation class frequencies with median-frequency class weights."""

from __future__ import annotations

import collections

import numpy as np
import tensorflow_datasets as tfds

from mtal_jax.data import errors, features


def summarize(builder: tfds.core.DatasetBuilder) -> dict:
    """Counts the images and boxes of every split of a prepared builder.

    Returns:
      ``{"splits": {split: {"images": N, "boxes_per_class": {class name: n}}}}`` with
      every detection class listed (zeros included), in class order; datasets with crowd
      regions (COCO ``iscrowd``) also give ``"crowd_regions_per_class"`` alike.
    """
    det_classes = features.read_metadata(builder.info)["det_classes"]
    skip = {"image": tfds.decode.SkipDecoding(), "segmentation": tfds.decode.SkipDecoding()}
    splits = {}
    crowd = "crowd_labels" in builder.info.features
    for split in builder.info.splits:
        source = builder.as_data_source(split, decoders=skip)
        counts, crowd_counts = collections.Counter(), collections.Counter()
        for i in range(len(source)):
            example = source[i]
            counts.update(np.asarray(example["box_labels"]).tolist())
            if crowd:
                crowd_counts.update(np.asarray(example["crowd_labels"]).tolist())
        splits[split] = {
            "images": len(source),
            "boxes_per_class": {name: int(counts[c]) for c, name in enumerate(det_classes)},
        }
        if crowd:
            splits[split]["crowd_regions_per_class"] = {
                name: int(crowd_counts[c]) for c, name in enumerate(det_classes)
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


def median_frequency_weights(builder: tfds.core.DatasetBuilder, split: str) -> dict:
    """Median-frequency balancing of the segmentation classes of ``split`` (Eigen & Fergus,
    ICCV 2015; SegNet's class weighting on CamVid): ``freq(c)`` = pixels of class c over
    the pixels of the images where c appears, ``w(c) = median(freq) / freq(c)``.

    Void / padding pixels (``IGNORE_LABEL``) are not counted. A class absent from the split
    gets weight 0 (there is nothing to weigh).

    Returns:
      ``{"split": split, "images": N, "classes": [names], "pixels": [C_seg] counts,
      "frequency": [C_seg], "weights": [C_seg] (rounded to 4 decimals)}``.
    """
    seg_classes = features.read_metadata(builder.info)["seg_classes"]
    k = len(seg_classes)
    source = builder.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
    pixels = np.zeros(k, np.int64)
    present_total = np.zeros(k, np.int64)  # pixels of the images where the class appears
    for i in range(len(source)):
        labels = np.asarray(source[i]["segmentation"]).reshape(-1)
        counts = np.bincount(labels[labels < k], minlength=k)[:k]
        pixels += counts
        present_total += np.where(counts > 0, counts.sum(), 0)
    freq = np.where(present_total > 0, pixels / np.maximum(present_total, 1), 0.0)
    median = float(np.median(freq[freq > 0])) if np.any(freq > 0) else 0.0
    weights = np.where(freq > 0, median / np.where(freq > 0, freq, 1.0), 0.0)
    return {
        "split": split,
        "images": len(source),
        "classes": list(seg_classes),
        "pixels": pixels.tolist(),
        "frequency": [round(float(f), 6) for f in freq],
        "weights": [round(float(w), 4) for w in weights],
    }
