"""Label Studio import of a selection: tasks with the model's pre-annotations (pure).

One task per selected image in Label Studio's JSON task format (its guide "Import
pre-annotated data"):

  {"data": {"image": URL, "disagreement": URL, "image_id": ..., "rank": ..., "score": ...,
            <the selection's score components>, "consistency": {...}, "boxes": [...]},
   "predictions": [{"model_version": ..., "score": ..., "result": [...]}]}

``result`` holds one ``rectanglelabels`` region per scored detection (x, y, width, height
in percent of the image, the detection confidence as ``score``) and one ``brushlabels``
region per segmentation class present in the predicted segmentation (Label Studio's brush
RLE, ``export.brush_rle``; ``score`` = mean softmax confidence over its pixels). The
labeling config (``labeling_config``) names the controls these results refer to:
``box`` (RectangleLabels, detection classes), ``segmentation`` (BrushLabels,
segmentation classes), both on the image ``image``; the disagreement map is shown as a
second image. ``data.consistency`` holds the image's consistency scores and
``data.boxes`` each box's S_loc / S_cls / S_box next to its result id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax import saxutils

import numpy as np

from mtal_jax.analysis import overlays
from mtal_jax.export import brush_rle, disagreement, frame

BOX_CONTROL = "box"
SEG_CONTROL = "segmentation"
IMAGE_OBJECT = "image"
MAP_OBJECT = "disagreement"


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def labeling_config(det_classes: Sequence[str], seg_classes: Sequence[str]) -> str:
    """The labeling config (XML) of the exported tasks.

    Args:
      det_classes: C_det detection class names (RectangleLabels).
      seg_classes: C_seg segmentation class names (BrushLabels).

    Returns:
      The ``<View>`` XML text.
    """
    colours = overlays.palette(len(seg_classes))
    det_colours = overlays.palette(len(seg_classes) + len(det_classes))[len(seg_classes) :]
    attr = saxutils.quoteattr
    lines = ["<View>", f"  <Header value={attr('Image to annotate')}/>"]
    lines.append(f'  <Image name="{IMAGE_OBJECT}" value="$image" zoom="true"/>')
    lines.append(f'  <RectangleLabels name="{BOX_CONTROL}" toName="{IMAGE_OBJECT}">')
    lines += [
        f"    <Label value={attr(n)} background={attr(_hex(c))}/>"
        for n, c in zip(det_classes, det_colours)
    ]
    lines.append("  </RectangleLabels>")
    lines.append(f'  <BrushLabels name="{SEG_CONTROL}" toName="{IMAGE_OBJECT}">')
    lines += [
        f"    <Label value={attr(n)} background={attr(_hex(c))}/>"
        for n, c in zip(seg_classes, colours)
    ]
    lines.append("  </BrushLabels>")
    lines.append(f"  <Header value={attr('Why this image was selected')}/>")
    lines.append(f'  <Header value={attr(disagreement.LEGEND)} size="6"/>')
    lines.append(f'  <Image name="{MAP_OBJECT}" value="${MAP_OBJECT}"/>')
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _rectangle(result_id, box_xyxy, label, score, width, height) -> dict[str, Any]:
    x1, y1, x2, y2 = np.clip(np.asarray(box_xyxy, np.float64), 0, [width, height] * 2)
    return {
        "id": result_id,
        "type": "rectanglelabels",
        "from_name": BOX_CONTROL,
        "to_name": IMAGE_OBJECT,
        "original_width": int(width),
        "original_height": int(height),
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x1 / width,
            "y": 100.0 * y1 / height,
            "width": 100.0 * (x2 - x1) / width,
            "height": 100.0 * (y2 - y1) / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
        "score": float(score),
    }


def _brush(result_id, mask, label, score) -> dict[str, Any]:
    height, width = mask.shape
    return {
        "id": result_id,
        "type": "brushlabels",
        "from_name": SEG_CONTROL,
        "to_name": IMAGE_OBJECT,
        "original_width": int(width),
        "original_height": int(height),
        "image_rotation": 0,
        "value": {"format": "rle", "rle": brush_rle.encode(mask), "brushlabels": [label]},
        "score": float(score),
    }


def task(
    item: dict[str, Any],
    *,
    det_classes: Sequence[str],
    seg_classes: Sequence[str],
    image_url: str,
    map_url: str,
    model_version: str,
) -> dict[str, Any]:
    """The Label Studio task of one selected image.

    Args:
      item: ``export.directory`` item: ``row`` (the selection row: rank, image_id, scores),
        ``boxes`` [K, 4] pixels of the exported image, ``det_scores`` [K], ``det_labels`` [K],
        ``box_valid`` [K], ``s_loc``/``s_cls``/``s_box`` [K], ``seg_labels_full`` and
        ``seg_confidence_full`` [H, W], ``consistency`` (dict of image scores).
      det_classes: detection class names.
      seg_classes: segmentation class names.
      image_url: ``data.image``.
      map_url: ``data.disagreement``.
      model_version: ``predictions[0].model_version``.

    Returns:
      The task dict (JSON-serialisable).
    """
    row = item["row"]
    seg = frame.full(item, "seg_labels_full")
    conf = frame.full(item, "seg_confidence_full")
    height, width = seg.shape
    rank = int(row["rank"])
    results, boxes = [], []
    for k in np.flatnonzero(np.asarray(item["box_valid"], bool)):
        rid = f"r{rank}_box{k}"
        label = det_classes[int(item["det_labels"][k])]
        results.append(
            _rectangle(rid, item["boxes"][k], label, item["det_scores"][k], width, height)
        )
        boxes.append(
            {
                "result_id": rid,
                "label": label,
                "confidence": float(item["det_scores"][k]),
                "s_loc": float(item["s_loc"][k]),
                "s_cls": float(item["s_cls"][k]),
                "s_box": float(item["s_box"][k]),
            }
        )
    for c in np.unique(seg):
        mask = seg == c
        results.append(
            _brush(f"r{rank}_seg{c}", mask, seg_classes[int(c)], float(conf[mask].mean()))
        )
    data = {"image": image_url, MAP_OBJECT: map_url}
    data.update({k: v for k, v in row.items()})
    data["consistency"] = dict(item["consistency"])
    data["boxes"] = boxes
    prediction = {"model_version": model_version, "result": results}
    if results:
        prediction["score"] = float(np.mean([r["score"] for r in results]))
    return {"data": data, "predictions": [prediction]}
