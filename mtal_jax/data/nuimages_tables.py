"""The nuImages tables, read for the ``nuimages`` builder (docs/design.md §5).

A table folder (``v1.0-<split>/``) gives the builder: the category names
(category.json), the chosen key-camera frames (sample.json, sample_data.json; the camera
from calibrated_sensor.json and sensor.json when present, else from the file path) and
the byte spans of each frame's records in object_ann.json and surface_ann.json, so that
its annotations are re-read from disk only when its example is written. Tables are
scanned record by record (``json_records``). A row that names no row of the table it
points into is a ``MALFORMED_RECORD`` error: its frame or annotation would vanish.
"""

from __future__ import annotations

import collections
import pathlib

from mtal_jax.data import examples, files, json_records


def record_token(row) -> str | None:
    """The record's token for messages (None when the record is not an object)."""
    return f"{row.get('token')!s:.80}" if isinstance(row, dict) else None


def _key(row, name: str, path, record):
    """A token-valued field (a string or a number; anything else is malformed)."""
    return examples.record_id(
        examples.field(row, name, path, record), what=name, path=path, record=record
    )


def _channel(filename: str) -> str:
    """Camera channel from ``samples/<CHANNEL>/<file>`` (the parent folder name)."""
    return pathlib.PurePosixPath(filename).parent.name


def read_categories(path: pathlib.Path) -> dict[str, str]:
    """Category token -> name, from category.json."""
    table = files.read_json(path)
    if not isinstance(table, list):
        raise examples.malformed("expected a list of categories", path, None)
    names = {}
    for row in table:
        name = examples.field(row, "name", path, record_token(row))
        if not isinstance(name, str):
            raise examples.malformed(
                f"category name {name!r:.80} is not a string", path, record_token(row)
            )
        token = _key(row, "token", path, None)
        examples.check_new_key(  # a second row would rename the first's objects
            names, token, what="category token", path=path, record=f"category {token}"
        )
        names[token] = name
    return names


def read_frames(tables: pathlib.Path, cameras: list[str] | None) -> tuple[dict[str, dict], set]:
    """Token -> {filename, width, height} of the chosen key-camera frames, in table
    order, and every token of sample_data.json (what the annotations may name).

    Args:
      tables: the table folder.
      cameras: camera channels to keep; None keeps all.
    """
    sample_path, data_path = tables / "sample.json", tables / "sample_data.json"
    key_tokens = set()
    for _, _, row in json_records.iter_records(sample_path):
        key_tokens.add(_key(row, "key_camera_token", sample_path, record_token(row)))
    channels = _sensor_channels(tables)
    frames, seen, listed = {}, {}, set()
    for _, _, row in json_records.iter_records(data_path):
        token = _key(row, "token", data_path, None)
        listed.add(token)
        if token not in key_tokens:
            continue
        filename = examples.field(row, "filename", data_path, token)
        if not isinstance(filename, str):
            raise examples.malformed(f"filename {filename!r:.80} is not a string", data_path, token)
        filename = json_records.fix_text(filename)
        if channels is not None:
            sensor = _key(row, "calibrated_sensor_token", data_path, token)
            if sensor not in channels:  # the frame would vanish as camera None
                raise examples.malformed(
                    f"calibrated_sensor_token {sensor!r:.80} names no row of "
                    "calibrated_sensor.json", data_path, token,
                )  # fmt: skip
            channel = channels[sensor]
        else:
            channel = _channel(filename)
        if cameras is not None and channel not in cameras:
            continue
        examples.check_new_key(
            seen, token, what="sample_data token", path=data_path, record=f"sample_data {token}"
        )
        frames[token] = {
            "filename": filename,
            "width": examples.field(row, "width", data_path, token),
            "height": examples.field(row, "height", data_path, token),
        }
    if dangling := sorted(key_tokens - listed, key=str):
        raise examples.malformed(
            f"{len(dangling)} key_camera_token(s) name no row of sample_data.json (e.g. "
            f"{dangling[0]!r:.80}): those samples would vanish",
            sample_path, None,
        )  # fmt: skip
    return frames, listed


def _sensor_channels(tables: pathlib.Path) -> dict[str, str] | None:
    """calibrated_sensor token -> channel, or None when the sensor tables are absent."""
    cs_path, sensor_path = tables / "calibrated_sensor.json", tables / "sensor.json"
    if not (cs_path.is_file() and sensor_path.is_file()):
        return None
    tables = {}
    for table_path in (sensor_path, cs_path):
        tables[table_path] = files.read_json(table_path)
        if not isinstance(tables[table_path], list):
            raise examples.malformed("expected a list of records", table_path, None)
    sensors = {
        _key(s, "token", sensor_path, None): examples.field(
            s, "channel", sensor_path, record_token(s)
        )
        for s in tables[sensor_path]
    }
    out = {}
    for cs in tables[cs_path]:
        token = _key(cs, "token", cs_path, None)
        sensor = _key(cs, "sensor_token", cs_path, record_token(cs))
        if sensor not in sensors:
            raise examples.malformed(
                f"sensor_token {sensor!r:.80} names no row of sensor.json", cs_path, token
            )
        out[token] = sensors[sensor]
    return out


def index_spans(path: pathlib.Path, frames: dict, listed: set) -> dict[str, list[tuple[int, int]]]:
    """sample_data token -> byte spans of its records in ``path`` (chosen frames only).

    Raises:
      DatasetError: a record names a sample_data token that ``listed`` (every token of
        sample_data.json) lacks: its annotation would vanish.
    """
    spans = collections.defaultdict(list)
    for offset, length, row in json_records.iter_records(path):
        token = _key(row, "sample_data_token", path, record_token(row))
        if token in frames:
            spans[token].append((offset, length))
        elif token not in listed:
            raise examples.malformed(
                f"sample_data_token {token!r:.80} names no row of sample_data.json", path,
                record_token(row),
            )  # fmt: skip
    return spans
