"""Test fixtures from real pixels: the Mapillary Vistas sample re-encoded in other formats.

``../shared/data/mapillary_vistas_vcd_sample`` holds 13 street scenes with true
instances (16-bit PNG, ``class * 256 + index``). ``load_scenes`` downscales them
(image bilinear, labels nearest); the ``write_*`` functions encode them in tmp_path as
nuImages tables, OpenLABEL (TUMTraf-like) files or a COCO folder, and return what a
correct builder must give back: per image id, the boxes (tight boxes of the instance
masks), detection labels and semantic map. The data is non-commercial: it is only
ever written under tmp_path, never into the repository.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import PIL.Image

from mtal_jax.data import nuimages, openlabel, rasterize
from mtal_jax.structs import IGNORE_LABEL
from tests import mask_formats

FOLDER = "mapillary_vistas_vcd_sample"
VCD_KEY = "-3-MmXdwhyIQhtb4-8NqHQ"

# Mapillary class id -> nuImages category (things; everything else is unannotated).
THING_TO_NUIMAGES = {
    55: "vehicle.car",
    61: "vehicle.truck",
    54: "vehicle.bus.rigid",
    60: "vehicle.trailer",
    52: "vehicle.bicycle",
    57: "vehicle.motorcycle",
    59: "vehicle.construction",
    19: "human.pedestrian.adult",
    20: "human.pedestrian.adult",
    21: "human.pedestrian.adult",
    22: "human.pedestrian.adult",
    0: "animal",
    1: "animal",
    34: "static_object.bicycle_rack",
}
SURFACE_TO_NUIMAGES = {13: "flat.driveable_surface", 64: "vehicle.ego"}
# Mapillary class id -> OpenLABEL / COCO type (A9 class names; "ANIMAL" is ignored).
THING_TO_A9 = {
    55: "CAR",
    61: "TRUCK",
    54: "BUS",
    60: "TRAILER",
    52: "BICYCLE",
    57: "MOTORCYCLE",
    59: "OTHER",
    19: "PEDESTRIAN",
    20: "PEDESTRIAN",
    21: "PEDESTRIAN",
    22: "PEDESTRIAN",
    0: "ANIMAL",
    1: "ANIMAL",
}


@dataclasses.dataclass
class Scene:
    key: str
    image: np.ndarray  # [H, W, 3] uint8
    labels: np.ndarray  # [H, W] Mapillary class ids
    instances: np.ndarray  # [H, W] class * 256 + index

    def things(self, class_ids) -> list[tuple[int, int, np.ndarray]]:
        """``(instance value, class id, mask)`` of the instances of ``class_ids``, sorted."""
        result = []
        for value in np.unique(self.instances):
            if int(value) // 256 in class_ids:
                result.append((int(value), int(value) // 256, self.instances == value))
        return result


def load_scenes(shared_data: pathlib.Path, *, width: int = 512) -> list[Scene]:
    """The 13 scenes downscaled to ``width`` pixels (aspect kept)."""
    folder = shared_data / FOLDER
    scenes = []
    for path in sorted((folder / "images").glob("*.jpg")):
        image = PIL.Image.open(path)
        size = (width, round(image.height * width / image.width))
        image.draft("RGB", size)  # Fast JPEG decode at reduced scale.
        image = np.asarray(image.convert("RGB").resize(size, PIL.Image.BILINEAR))
        labels = PIL.Image.open(folder / "labels" / f"{path.stem}.png").resize(
            size, PIL.Image.NEAREST
        )
        instances = PIL.Image.open(folder / "instances" / f"{path.stem}.png").resize(
            size, PIL.Image.NEAREST
        )
        scenes.append(
            Scene(path.stem, image, np.asarray(labels), np.asarray(instances).astype(np.int32))
        )
    return scenes


def _save_png(array: np.ndarray, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array).save(path)


def _expected(boxes, labels, semantic) -> dict:
    return {
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "box_labels": np.asarray(labels, np.int64),
        "segmentation": semantic,
    }


def write_nuimages(
    scenes: list[Scene], root: pathlib.Path, *, table_dir: str = "v1.0-train"
) -> dict:
    """Writes nuImages tables + images; returns sample_data token -> expected example.

    Each scene is one key-camera frame; odd scenes are CAM_BACK (so the default front
    filter keeps the even ones) and every frame also gets one non-key sweep.
    """
    tables = root / table_dir
    tables.mkdir(parents=True)
    names = sorted(set(THING_TO_NUIMAGES.values()) | set(SURFACE_TO_NUIMAGES.values()))
    category = [{"token": f"cat{i:02d}", "name": n, "description": ""} for i, n in enumerate(names)]
    token_of = {c["name"]: c["token"] for c in category}
    sample, sample_data, object_ann, surface_ann, expected = [], [], [], [], {}
    for i, scene in enumerate(scenes):
        channel = "CAM_FRONT" if i % 2 == 0 else "CAM_BACK"
        sd_token, height, width = f"sd{i:04d}", *scene.labels.shape
        filename = f"samples/{channel}/{scene.key}.png"
        _save_png(scene.image, root / filename)
        sample.append(
            {
                "token": f"s{i:04d}",
                "timestamp": i,
                "log_token": "log0",
                "key_camera_token": sd_token,
            }
        )
        for token, key_frame in ((sd_token, True), (f"sweep{i:04d}", False)):
            sample_data.append(
                {
                    "token": token,
                    "sample_token": f"s{i:04d}",
                    "ego_pose_token": "",
                    "calibrated_sensor_token": "",
                    "filename": filename if key_frame else f"sweeps/{channel}/{scene.key}.jpg",
                    "fileformat": "png",
                    "width": width,
                    "height": height,
                    "timestamp": i,
                    "is_key_frame": key_frame,
                    "next": "",
                    "prev": "",
                }
            )
        boxes, labels = [], []
        semantic = np.full((height, width), nuimages.BACKGROUND_ID, np.uint8)
        for class_id, name in SURFACE_TO_NUIMAGES.items():
            mask = scene.labels == class_id
            if mask.any():
                surface_ann.append(
                    {
                        "token": f"su{i}_{class_id}",
                        "sample_data_token": sd_token,
                        "category_token": token_of[name],
                        "mask": mask_formats.encode_nuimages_mask(mask),
                    }
                )
                semantic[mask] = nuimages.SURFACE_TO_SEG[name]
        for value, class_id, mask in scene.things(THING_TO_NUIMAGES):
            name = THING_TO_NUIMAGES[class_id]
            box = rasterize.mask_box(mask)
            object_ann.append(
                {
                    "token": f"o{i}_{value}",
                    "sample_data_token": sd_token,
                    "category_token": token_of[name],
                    "attribute_tokens": [],
                    "bbox": [int(v) for v in box],
                    "mask": mask_formats.encode_nuimages_mask(mask),
                }
            )
            det = nuimages.CATEGORY_TO_DET[name]
            if det is None:
                semantic[mask] = IGNORE_LABEL
            else:
                boxes.append(box)
                labels.append(nuimages.DET_CLASSES.index(det))
                semantic[mask] = nuimages.DET_TO_SEG[labels[-1]]
        expected[sd_token] = {
            **_expected(boxes, labels, semantic),
            "channel": channel,
            "image": scene.image,
        }
    for name, rows in [
        ("category", category),
        ("sample", sample),
        ("sample_data", sample_data),
        ("object_ann", object_ann),
        ("surface_ann", surface_ann),
    ]:
        (tables / f"{name}.json").write_text(json.dumps(rows, indent=1))
    return expected


def a9_semantic(scene: Scene, det_classes: list[str]) -> tuple[list, list, np.ndarray]:
    """Boxes, labels and semantic map of a scene under the A9 mapping (background last)."""
    height, width = scene.labels.shape
    boxes, labels = [], []
    semantic = np.full((height, width), len(det_classes), np.uint8)
    for _, class_id, mask in scene.things(THING_TO_A9):
        name = openlabel.normalize_type(THING_TO_A9[class_id])
        if name in det_classes:
            boxes.append(rasterize.mask_box(mask))
            labels.append(det_classes.index(name))
            semantic[mask] = labels[-1]
        else:
            semantic[mask] = IGNORE_LABEL
    return boxes, labels, semantic


def write_openlabel(scenes: list[Scene], root: pathlib.Path, cameras: tuple[str, str]) -> dict:
    """Writes TUMTraf-like per-frame OpenLABEL files (bbox + RLE ``binary`` masks).

    Scene i goes to split ``val`` when i % 5 >= 3, else ``train``, and camera
    ``cameras[i % 2]``; images under ``<split>/images/<camera>/``, labels under
    ``<split>/labels/<camera>/`` named like the image. Returns image id -> expected.
    """
    expected = {}
    for i, scene in enumerate(scenes):
        split, camera = ("val" if i % 5 >= 3 else "train"), cameras[i % 2]
        stem = f"{1651673053 + i}_000000000_{camera}"
        _save_png(scene.image, root / split / "images" / camera / f"{stem}.png")
        objects = {}
        for value, class_id, mask in scene.things(THING_TO_A9):
            x1, y1, x2, y2 = (float(v) for v in rasterize.mask_box(mask))
            sensor = {"text": [{"name": "sensor_id", "val": camera}]}
            objects[str(value)] = {
                "object_data": {
                    "name": f"{THING_TO_A9[class_id]}_{value}",
                    "type": THING_TO_A9[class_id],
                    "bbox": [
                        {
                            "name": "full_bbox",
                            "val": [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1],
                            "attributes": sensor,
                        }
                    ],
                    "binary": [
                        {
                            "name": "mask",
                            "encoding": "rle",
                            "data_type": "",
                            "val": mask_formats.encode_rle(mask)["counts"],
                            "attributes": sensor,
                        }
                    ],
                }
            }
        document = {
            "openlabel": {
                "metadata": {"schema_version": "1.0.0"},
                "frames": {
                    str(i): {
                        "frame_properties": {"timestamp": i, "image_file_names": [f"{stem}.png"]},
                        "objects": objects,
                    }
                },
            }
        }
        label_path = root / split / "labels" / camera / f"{stem}.json"
        label_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.write_text(json.dumps(document))
        boxes, labels, semantic = a9_semantic(scene, openlabel.A9_CLASSES)
        image_id = f"{split}/labels/{camera}/{stem}/{i}/{camera}"
        expected[image_id] = {
            **_expected(boxes, labels, semantic),
            "split": split,
            "camera": camera,
            "image": scene.image,
        }
    return expected


def write_coco(scenes: list[Scene], root: pathlib.Path, *, semantic_pngs: bool) -> dict:
    """Writes ``annotations/instances_train.json``, ``images/`` (and ``semantic/``).

    Categories are the A9 names (plus "animal", not a detection class when the
    builder gets ``det_categories=A9_CLASSES``); masks are RLE, every third one
    uncompressed. Returns file name -> expected example.
    """
    names = openlabel.A9_CLASSES + ["animal"]
    categories = [{"id": 10 + i, "name": n, "supercategory": ""} for i, n in enumerate(names)]
    images, annotations, expected = [], [], {}
    for i, scene in enumerate(scenes):
        height, width = scene.labels.shape
        file_name = f"{scene.key}.png"
        _save_png(scene.image, root / "images" / file_name)
        images.append({"id": 100 + i, "file_name": file_name, "height": height, "width": width})
        for value, class_id, mask in scene.things(THING_TO_A9):
            x1, y1, x2, y2 = (float(v) for v in rasterize.mask_box(mask))
            rle = mask_formats.encode_rle(mask)
            if len(annotations) % 3 == 2:
                rle = {"size": rle["size"], "counts": _uncompressed_counts(mask)}
            category_id = 10 + names.index(openlabel.normalize_type(THING_TO_A9[class_id]))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 100 + i,
                    "category_id": category_id,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": int(mask.sum()),
                    "iscrowd": 0,
                    "segmentation": rle,
                }
            )
        boxes, labels, semantic = a9_semantic(scene, openlabel.A9_CLASSES)
        if semantic_pngs:
            _save_png(semantic, root / "semantic" / file_name)
        expected[file_name] = {**_expected(boxes, labels, semantic), "image": scene.image}
    document = {"info": {}, "images": images, "annotations": annotations, "categories": categories}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_train.json").write_text(json.dumps(document))
    return expected


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts (column-major runs, starting with zeros)."""
    flat = mask.T.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]]))
    return ([0] if flat[0] else []) + runs.tolist()


def decode(example: dict) -> dict:
    """A data-source example as plain arrays (segmentation [H, W])."""
    image_id = example["image_id"]
    return {
        "image": np.asarray(example["image"]),
        "segmentation": np.asarray(example["segmentation"])[..., 0],
        "boxes": np.asarray(example["boxes"], np.float32).reshape(-1, 4),
        "box_labels": np.asarray(example["box_labels"], np.int64),
        "image_id": image_id.decode() if isinstance(image_id, bytes) else image_id,
    }


def sort_boxes(boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and labels in a canonical order (by label, then coordinates)."""
    order = np.lexsort((*boxes.T[::-1], labels))
    return boxes[order], labels[order]
