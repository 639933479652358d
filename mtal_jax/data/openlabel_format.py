"""Parsing ASAM OpenLABEL 1.0 JSON (A9 / TUMTraf, VCD, ASAM examples) into frames of 2D labels.

What is read (everything else, e.g. cuboids, is ignored):

* ``openlabel.frames[<id>].objects[<oid>].object_data`` and the static
  ``openlabel.objects[<oid>].object_data`` (applies to every frame; a file without
  ``frames`` is one frame with id ``"static"``).
* ``bbox`` entries: ``val = [x_center, y_center, width, height]`` in pixels -> xyxy.
* ``poly2d`` entries (``MODE_POLY2D_ABSOLUTE`` or no mode): ``val = [x0, y0, x1, y1,
  ...]`` pixel-index contours, with an optional OpenCV-style ``hierarchy`` for holes.
  All poly2d entries of one object and camera form its mask.
* ``binary`` entries with ``encoding: "rle"``: a COCO RLE mask, ``val`` either the
  compressed counts string (size = the image) or ``{"size": [h, w], "counts": ...}``.
* Object type: ``object_data.type`` of the frame (TUMTraf) or the object's ``type``.
* Camera of an entry: its ``coordinate_system`` or ``stream``, else the text
  attribute ``sensor_id`` (TUMTraf), else the file's only camera stream, else None.
* Image file candidates: ``frame_properties.image_file_names`` (list, or dict by
  camera), ``frame_properties.image_file_name``, the camera stream's ``uri``.
* Image size hint: the camera stream's ``stream_properties`` (``width``/``height`` or
  ``intrinsics_pinhole.width_px``/``height_px``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mtal_jax.data import errors, examples

SUPPORTED_POLY2D_MODES = (None, "MODE_POLY2D_ABSOLUTE")
STATIC_FRAME = "static"


@dataclasses.dataclass
class LabeledObject:
    """One object as seen by one camera in one frame.

    Attributes:
      object_id: the OpenLABEL object key.
      type: the object type as written (class mapping is the builder's job).
      boxes_xyxy: [4] float64 boxes, one per ``bbox`` entry.
      contours: ``(val, hierarchy or None)`` per ``poly2d`` entry.
      rles: COCO RLE values of ``binary`` entries.
    """

    object_id: str
    type: str
    boxes_xyxy: list = dataclasses.field(default_factory=list)
    contours: list = dataclasses.field(default_factory=list)
    rles: list = dataclasses.field(default_factory=list)

    @property
    def has_mask(self) -> bool:
        return bool(self.contours or self.rles)


@dataclasses.dataclass
class Frame:
    """The labels of one (frame, camera) pair, i.e. of one image.

    Attributes:
      frame_id: OpenLABEL frame key (``"static"`` for files without frames).
      camera: coordinate system / stream name, or None when the file names none.
      objects: labeled objects with at least one 2D entry for this camera.
      image_names: candidate image file names from the file, most specific first.
      size_hw: (height, width) from the stream properties, or None.
      multi_frame: True when the file holds several frames.
    """

    frame_id: str
    camera: str | None
    objects: list[LabeledObject]
    image_names: list[str]
    size_hw: tuple[int, int] | None
    multi_frame: bool = False


def _dict(value, what: str, path, record) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise examples.malformed(
            f"{what} is a {type(value).__name__}, expected an object", path, record
        )
    return value


def _list(value, what: str, path, record) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise examples.malformed(
            f"{what} is a {type(value).__name__}, expected a list", path, record
        )
    return value


def cxcywh_to_xyxy(val, *, path, record) -> np.ndarray:
    """OpenLABEL ``bbox`` val ``[x_center, y_center, width, height]`` -> [4] xyxy."""
    try:
        cx, cy, w, h = (float(v) for v in val)
    except (TypeError, ValueError) as e:
        raise examples.malformed(f"bbox val {val!r} is not 4 numbers", path, record) from e
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _entry_camera(entry: dict, default: str | None) -> str | None:
    for key in ("coordinate_system", "stream"):
        if entry.get(key):
            return str(entry[key])
    attributes = entry.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("text"), list):
        for text in attributes["text"]:
            if isinstance(text, dict) and text.get("name") == "sensor_id" and text.get("val"):
                return str(text["val"])
    return default


def _camera_streams(root: dict, path) -> dict[str, dict]:
    streams = _dict(root.get("streams"), "streams", path, "streams")
    return {
        name: s for name, s in streams.items() if isinstance(s, dict) and s.get("type") == "camera"
    }


def _size_hint(stream: dict | None, path, camera) -> tuple[int, int] | None:
    props = (stream or {}).get("stream_properties")
    props = props if isinstance(props, dict) else {}
    pinhole = props.get("intrinsics_pinhole")
    pinhole = pinhole if isinstance(pinhole, dict) else {}
    for w_key, h_key, holder in (("width", "height", props), ("width_px", "height_px", pinhole)):
        if holder.get(w_key) and holder.get(h_key):
            try:
                return int(holder[h_key]), int(holder[w_key])
            except (TypeError, ValueError, OverflowError) as e:
                raise examples.malformed(
                    f"image size {holder[w_key]!r}x{holder[h_key]!r}", path, f"stream {camera}"
                ) from e
    return None


def _image_names(frame_properties: dict, stream: dict | None, camera: str | None) -> list[str]:
    names = []
    listed = frame_properties.get("image_file_names")
    if isinstance(listed, dict):
        if camera in listed:
            names.append(listed[camera])
    elif isinstance(listed, list):
        matching = [n for n in listed if camera and camera in str(n)]
        names.extend(matching or listed)
    if frame_properties.get("image_file_name"):
        names.append(frame_properties["image_file_name"])
    if stream and stream.get("uri"):
        names.append(stream["uri"])
    return [str(n) for n in names if n]


def _add_entries(
    per_camera: dict, object_id: str, obj_type: str, object_data: dict, default_camera, path, record
) -> None:
    """Adds the 2D entries of one object's ``object_data`` to ``per_camera[camera][object_id]``."""

    def target(entry) -> LabeledObject:
        camera = _entry_camera(entry, default_camera)
        objects = per_camera.setdefault(camera, {})
        return objects.setdefault(object_id, LabeledObject(object_id, obj_type))

    for entry in _list(object_data.get("bbox"), "bbox", path, record):
        entry = _dict(entry, "bbox entry", path, record)
        target(entry).boxes_xyxy.append(cxcywh_to_xyxy(entry.get("val"), path=path, record=record))
    for entry in _list(object_data.get("poly2d"), "poly2d", path, record):
        entry = _dict(entry, "poly2d entry", path, record)
        mode = entry.get("mode")
        if mode not in SUPPORTED_POLY2D_MODES or entry.get("closed") is False:
            raise errors.DatasetError(
                f"poly2d {entry.get('name')!r} mode {mode!r} closed={entry.get('closed')!r}: only "
                "closed MODE_POLY2D_ABSOLUTE polygons are supported masks",
                path=path,
                record=record,
                reason=errors.BAD_MASK,
            )
        target(entry).contours.append((entry.get("val"), entry.get("hierarchy")))
    for entry in _list(object_data.get("binary"), "binary", path, record):
        entry = _dict(entry, "binary entry", path, record)
        if str(entry.get("encoding", "")).lower() == "rle":
            target(entry).rles.append(entry.get("val"))


def parse(data, *, path, cameras: list[str] | None = None) -> list[Frame]:
    """Parses one OpenLABEL document into per-(frame, camera) labels.

    Args:
      data: the loaded JSON (``{"openlabel": {...}}``).
      path: the file, for error messages.
      cameras: keep only these cameras (None: all, including entries without one).

    Returns:
      Frames in file order (frame keys as written), cameras sorted by name. The
      cameras of a frame are those its entries name; a frame without entries gives
      one frame per camera stream of the file (or one without camera).

    Raises:
      DatasetError: ``malformed_json`` without an ``openlabel`` object,
        ``malformed_record`` for malformed objects or boxes, ``bad_mask`` for
        unsupported polygons.
    """
    if not isinstance(data, dict) or not isinstance(data.get("openlabel"), dict):
        raise errors.DatasetError(
            "not an OpenLABEL document (no top-level 'openlabel' object)",
            path=path,
            reason=errors.MALFORMED_JSON,
        )
    root = data["openlabel"]
    streams = _camera_streams(root, path)
    default_camera = next(iter(streams)) if len(streams) == 1 else None
    objects = _dict(root.get("objects"), "objects", path, "objects")
    frames = _dict(root.get("frames"), "frames", path, "frames")
    frame_items = list(frames.items()) or [(STATIC_FRAME, {})]
    result = []
    for frame_id, frame in frame_items:
        frame = _dict(frame, "frame", path, f"frame {frame_id}")
        frame_objects = _dict(frame.get("objects"), "frame objects", path, f"frame {frame_id}")
        per_camera: dict[str | None, dict[str, LabeledObject]] = {}
        for object_id in list(objects) + [k for k in frame_objects if k not in objects]:
            record = f"frame {frame_id} object {object_id}"
            static = _dict(objects.get(object_id), "object", path, record)
            dynamic = _dict(frame_objects.get(object_id), "frame object", path, record)
            dynamic_data = _dict(dynamic.get("object_data"), "object_data", path, record)
            obj_type = dynamic_data.get("type") or static.get("type")
            for object_data in (static.get("object_data"), dynamic_data):
                object_data = _dict(object_data, "object_data", path, record)
                if not any(object_data.get(k) for k in ("bbox", "poly2d", "binary")):
                    continue
                if not isinstance(obj_type, str) or not obj_type:
                    raise examples.malformed("object has no type", path, record)
                _add_entries(
                    per_camera, str(object_id), obj_type, object_data, default_camera, path, record
                )
        properties = _dict(
            frame.get("frame_properties"), "frame_properties", path, f"frame {frame_id}"
        )
        if None in per_camera and len(streams) > 1:  # whose image would be a guess
            raise examples.malformed(
                f"{len(per_camera[None])} object entries name no camera (coordinate_system) "
                f"while the file has {len(streams)} camera streams ({', '.join(streams)}): "
                "name the camera of each entry", path, f"frame {frame_id}",
            )  # fmt: skip
        # An unlabeled frame is still an image: one per camera stream (or one without camera).
        frame_cameras = list(per_camera) or list(streams) or [None]
        for camera in sorted(frame_cameras, key=lambda c: (c is None, c or "")):
            if cameras is not None and camera not in cameras:
                continue
            stream = streams.get(camera) if camera is not None else None
            result.append(
                Frame(
                    frame_id=str(frame_id),
                    camera=camera,
                    objects=list(per_camera.get(camera, {}).values()),
                    image_names=_image_names(properties, stream, camera),
                    size_hw=_size_hint(stream, path, camera),
                    multi_frame=len(frame_items) > 1,
                )
            )
    return result
