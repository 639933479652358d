"""``select.py --format label-studio|coco --output DIR``: the export folder (shell).

Both formats write, into a new (or empty) ``DIR``:

  images/<rank>_<image id>.png                 the selected images at their original size
                                               (the predictions mapped to it, export.frame)
  disagreement/<rank>_<image id>_disagreement.png   the disagreement map of each image
                                               (``export.disagreement``)
  selection.json                               the ranked selection (as ``--format json``)
                                               plus each image's consistency scores
  README.md                                    what the folder holds and how to import it

and then ``tasks.json`` + ``labeling_config.xml`` (label-studio, ``export.label_studio``)
or ``annotations/instances_default.json`` + ``cvat_labels.json`` (coco, ``export.coco``).
The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np
import tqdm

from mtal_jax import jsonio
from mtal_jax.al import experiment
from mtal_jax.analysis import overlays
from mtal_jax.export import coco, disagreement, frame, label_studio, predictions

FORMATS = ("label-studio", "coco")

_COMPONENTS = ("score", "s_seg", "s_loc_max", "s_cls_max", "s_box_max", "num_boxes")


def check_output(path: str) -> None:
    """Fails early unless ``path`` is a new or empty directory.

    Raises:
      ValueError: ``path`` is a file, or a directory that is not empty.
    """
    if os.path.isdir(path):
        if os.listdir(path):
            raise ValueError(
                f"--output {path} is a directory that is not empty; give a new or empty one"
            )
    elif os.path.lexists(path):
        raise ValueError(f"--output {path} exists and is not a directory (an export is a folder)")


def file_stem(rank: int, image_id: str) -> str:
    """``<rank:04d>_<image id>`` with characters other than ``A-Za-z0-9._-`` as ``_``."""
    return f"{rank:04d}_" + re.sub(r"[^A-Za-z0-9._-]", "_", str(image_id))[:120]


def _readme(fmt: str, url_prefix: str) -> str:
    head = [
        f"# Selection export ({fmt})",
        "",
        "Images chosen by `select.py` for annotation, with the model's predictions as",
        "pre-annotations. `selection.json` ranks them (rank 1 = most informative) with",
        "their scores. Images are the originals, at their own size; the predictions",
        "(made on a resized copy) are mapped to them.",
        "",
        disagreement.LEGEND,
        "",
    ]
    if fmt == "coco":
        body = [
            "Import into CVAT: create a task with the files of `images/` and the labels of",
            "`annotations/instances_default.json` (its categories), then Actions > Upload",
            "annotations > COCO 1.0 with a zip of this folder's `annotations/` (and `images/`).",
            "Each detection is a box (a rectangle) and its BoxMask (a mask), both iscrowd 0;",
            "the segmentation of each class outside those masks is one iscrowd 1 mask per",
            "class. CVAT keeps only the attributes its labels declare: to keep each",
            "detection's confidence, give the task (or project) the labels of",
            "`cvat_labels.json` (Labels > Raw: paste the file), which declare a `score`",
            "attribute (number) on every label, before uploading the annotations.",
        ]
    else:
        body = [
            "Import into Label Studio: create a project with the labeling config",
            "`labeling_config.xml`, make the images reachable and import `tasks.json`.",
            f"The image URLs start with `{url_prefix}`; with the default, serve local files:",
            "",
            "    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true \\",
            "    LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<the folder that holds this one> \\",
            "    label-studio start",
            "",
            "and add a Local files storage for this folder in the project settings (or",
            "re-export with `--image_url_prefix` pointing to where the files are served).",
            "The pre-annotations are the predictions of model version `mtal_jax <strategy>",
            "<run>/<checkpoint>`: choose it in the project's prediction settings to show",
            "them to annotators.",
        ]
    return "\n".join(head + body) + "\n"


def write(
    fmt: str,
    output: str,
    *,
    setup: experiment.Setup,
    config: ml_collections.ConfigDict,
    variables: dict,
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    strategy: str,
    image_url_prefix: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Writes the export folder of the selection ``rows``.

    Args:
      fmt: one of ``FORMATS``.
      output: the folder (new or empty).
      setup: experiment setup.
      config: the config.
      variables: model variables of the checkpoint that selected.
      rows: the selection rows of ``select_cli.run`` (rank order; ``index``, ``image_id``,
        ``rank`` and the strategy's scores).
      meta: strategy, checkpoint, budget, seed (into ``selection.json``).
      strategy: the selection strategy's name.
      image_url_prefix: label-studio: URL prefix of ``images/`` and ``disagreement/``
        (default ``/data/local-files/?d=<folder name>/``, Label Studio's local files).
      progress: progress bar.

    Returns:
      The items written (one per row: the row, file names and the predictions).

    Raises:
      ValueError: unknown format, or ``output`` not new or empty.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    check_output(output)
    output = os.path.abspath(output)
    tmp = f"{output}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("images", "disagreement"):
        os.makedirs(os.path.join(tmp, sub))
    dataset = setup.dataset
    det_to_seg = np.asarray(dataset.det_to_seg, np.int32)
    records = predictions.predict_images(
        setup, config, variables, [int(r["index"]) for r in rows], strategy=strategy
    )
    items = []
    for row, record in tqdm.tqdm(
        zip(rows, records), total=len(rows), desc="export", leave=False, disable=not progress
    ):
        if record["index"] != int(row["index"]):
            raise RuntimeError("export predictions came back out of order")
        stem = file_stem(int(row["rank"]), row["image_id"])
        file_name, map_name = f"{stem}.png", f"{stem}_disagreement.png"
        image = record.pop("image")  # written now; not kept for the whole selection
        overlays.save_png(image, os.path.join(tmp, "images", file_name))
        code_map = overlays.disagreement_codes(
            record["seg_labels"], record["box_masks"], record["box_classes"],
            record["box_valid"], det_to_seg,
        )  # fmt: skip
        overlays.save_png(
            disagreement.render(
                image, frame.from_grid(record, code_map), record["boxes"],
                record["box_valid"], record["box_masks"],
            ),
            os.path.join(tmp, "disagreement", map_name),
        )  # fmt: skip
        consistency = {
            k: float(record["image_scores"][k]) for k in _COMPONENTS if k in record["image_scores"]
        }
        items.append(
            dict(record, row=dict(row), file_name=file_name, map_name=map_name,
                 consistency=consistency)
        )  # fmt: skip
    if len(items) != len(rows):
        raise RuntimeError(f"export predicted {len(items)} of {len(rows)} images")
    selection = dict(meta, format=fmt)
    selection["selected"] = [
        dict(it["row"], file_name=it["file_name"], disagreement=it["map_name"],
             consistency=it["consistency"], height=frame.size(it)[0], width=frame.size(it)[1])
        for it in items
    ]  # fmt: skip
    jsonio.write_atomic(os.path.join(tmp, "selection.json"), selection)
    prefix = image_url_prefix
    if prefix is None:  # the folder name URL-encoded: "batch 01", "a&b" or "#1" stay whole
        prefix = f"/data/local-files/?d={urllib.parse.quote(os.path.basename(output))}/"
    elif not prefix.endswith(("/", "=")):
        prefix += "/"
    if fmt == "label-studio":
        # the checkpoint's run and folder ("repro_camvid/reference"): the version to pick
        # in the project's prediction settings, told apart from another run's export
        checkpoint = os.path.normpath(os.path.abspath(str(meta.get("checkpoint", ""))))
        run = "/".join(checkpoint.split(os.sep)[-2:])
        version = f"mtal_jax {strategy} {run}"
        tasks = [
            label_studio.task(
                it, det_classes=dataset.det_classes, seg_classes=dataset.seg_classes,
                image_url=f"{prefix}images/{it['file_name']}",
                map_url=f"{prefix}disagreement/{it['map_name']}", model_version=version,
            )
            for it in items
        ]  # fmt: skip
        jsonio.write_atomic(os.path.join(tmp, "tasks.json"), tasks, compact=True)
        with open(os.path.join(tmp, "labeling_config.xml"), "w", encoding="utf-8") as f:
            f.write(label_studio.labeling_config(dataset.det_classes, dataset.seg_classes))
    else:
        doc = coco.instances(
            items, seg_classes=dataset.seg_classes, det_to_seg=det_to_seg,
            description=f"mtal_jax selection ({strategy}), model pre-annotations",
        )  # fmt: skip
        jsonio.write_atomic(
            os.path.join(tmp, "annotations", "instances_default.json"), doc, compact=True
        )
        jsonio.write_atomic(
            os.path.join(tmp, "cvat_labels.json"), coco.cvat_labels(dataset.seg_classes)
        )
    with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
        f.write(_readme(fmt, prefix))
    if os.path.isdir(output):
        os.rmdir(output)  # empty (check_output); replaced by the complete folder
    os.replace(tmp, output)
    return items
