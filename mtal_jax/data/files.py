"""Reading the user's files (images, label PNGs, JSON) with errors that name the file."""

from __future__ import annotations

import io
import json
import os
import pathlib

import numpy as np
import PIL.Image

from mtal_jax.data import errors

_PASS_THROUGH_FORMATS = ("JPEG", "PNG")


def walk(root: str | os.PathLike, prune=None):
    """``os.walk(root)`` that also enters linked folders (a dataset's images are often a
    link to where they are stored), each real folder once, so a link to an ancestor cannot
    loop; ``dirs`` come sorted.

    Args:
      root: the folder.
      prune: ``(directory, name) -> bool``, True for a subfolder to leave out.

    Yields:
      ``(directory, dirs, names)`` as ``os.walk``.
    """
    seen = {os.path.realpath(root)}
    for directory, dirs, names in os.walk(root, followlinks=True):
        kept = []
        for d in sorted(dirs):
            real = os.path.realpath(os.path.join(directory, d))
            if real in seen or (prune is not None and prune(directory, d)):
                continue
            seen.add(real)
            kept.append(d)
        dirs[:] = kept
        yield directory, dirs, names


def _missing(path: pathlib.Path, record: str | None, what: str) -> errors.DatasetError:
    return errors.DatasetError(
        f"{what} file not found", path=path, record=record, reason=errors.MISSING_FILE
    )


def _open_image(path: pathlib.Path, record: str | None, what: str) -> tuple[bytes, PIL.Image.Image]:
    try:
        is_file = path.is_file()
        data = path.read_bytes() if is_file else b""
    except (OSError, ValueError) as e:  # A name too long, a NUL byte, unreadable...
        raise errors.DatasetError(
            f"cannot read {what} file ({type(e).__name__}: {e})",
            path=path,
            record=record,
            reason=errors.MISSING_FILE,
        ) from e
    if not is_file:
        raise _missing(path, record, what)
    try:
        image = PIL.Image.open(io.BytesIO(data))
        image.load()  # Decodes everything: truncated files fail here, not later.
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as e:
        raise errors.DatasetError(
            f"cannot decode {what} ({type(e).__name__}: {e})",
            path=path,
            record=record,
            reason=errors.CORRUPT_IMAGE,
        ) from e
    return data, image


def join_inside(
    root: str | os.PathLike,
    base: str | os.PathLike,
    name,
    *,
    path: str | os.PathLike,
    record: str | None,
    what: str = "image",
) -> pathlib.Path:
    """``base / name`` for a file name read from an annotation, refused before it is opened
    when it leaves the dataset folder.

    The check is lexical (``..`` and absolute paths), so symbolic links inside the dataset
    folder still work.

    Args:
      root: the dataset folder the file must lie in.
      base: the folder ``name`` is relative to (``root`` or below).
      name: the file name from the annotation.
      path, record: the annotation file and record, for errors.
      what: what the file is, for errors.

    Raises:
      DatasetError: ``malformed_record`` when ``name`` is not a non-empty string,
        ``unsafe_path`` when it is absolute or leads out of ``root``.
    """
    if not isinstance(name, str) or not name or "\0" in name:
        raise errors.DatasetError(
            f"{what} file name {name!r:.100} is not a non-empty string",
            path=path,
            record=record,
            reason=errors.MALFORMED_RECORD,
        )
    root = os.path.normpath(os.path.abspath(root))
    joined = os.path.normpath(os.path.join(os.path.abspath(base), name))
    if os.path.isabs(name) or os.path.commonpath([root, joined]) != root:
        raise errors.DatasetError(
            f"{what} path {name!r:.200} is absolute or leads out of the dataset folder {root}; "
            "annotation paths must be relative and stay inside it",
            path=path,
            record=record,
            reason=errors.UNSAFE_PATH,
        )
    return pathlib.Path(joined)


def read_image(path: str | os.PathLike, *, record: str | None = None) -> tuple[bytes, int, int]:
    """Reads and fully decodes an RGB image.

    Args:
      path: image file (any format PIL reads).
      record: the record that references the file, for error messages.

    Returns:
      ``(encoded, height, width)``: ``encoded`` is the file's own bytes when it is an
      RGB JPEG or PNG (no re-encoding), else the image converted to RGB and encoded
      as PNG; either is accepted by the ``image`` feature.

    Raises:
      DatasetError: missing file (``missing_file``), or truncated or corrupt image
        (``corrupt_image``).
    """
    path = pathlib.Path(path)
    data, image = _open_image(path, record, "image")
    if image.format in _PASS_THROUGH_FORMATS and image.mode == "RGB":
        return data, image.height, image.width
    if image.mode.startswith(("I", "F")):  # 16/32-bit integers or floats: PIL clamps them
        raise errors.DatasetError(
            f"image has mode {image.mode!r} (one channel of 16/32-bit integers or floats), "
            "whose range PIL's RGB conversion clamps to 0-255; store it as 8-bit RGB",
            path=path, record=record, reason=errors.CORRUPT_IMAGE,
        )  # fmt: skip
    return encode_png(np.asarray(image.convert("RGB"))), image.height, image.width


def read_label_png(path: str | os.PathLike, *, record: str | None = None) -> np.ndarray:
    """Reads a single-channel label map (8- or 16-bit grey, or palette indices).

    Returns:
      [H, W] uint8 or uint16 array of the stored values (palette indices, not colours).

    Raises:
      DatasetError: missing file, corrupt image, or a multi-channel image (``bad_mask``).
    """
    path = pathlib.Path(path)
    _, image = _open_image(path, record, "label map")
    if image.format == "JPEG":  # lossy: its class ids are compression noise at the edges
        raise errors.DatasetError(
            "label map is a JPEG (whatever its name): lossy compression changes class ids; "
            "store label maps as PNG",
            path=path, record=record, reason=errors.BAD_MASK,
        )  # fmt: skip
    if image.mode not in ("L", "P", "I;16", "I"):
        raise errors.DatasetError(
            f"label map has mode {image.mode!r}; expected one channel of class ids "
            "(mode L, P or I;16)",
            path=path,
            record=record,
            reason=errors.BAD_MASK,
        )
    array = np.asarray(image)
    return array.astype(np.uint16) if array.dtype != np.uint8 else array


def read_json(path: str | os.PathLike, *, record: str | None = None):
    """Loads a JSON file.

    Raises:
      DatasetError: missing file, or invalid JSON / encoding (``malformed_json``, with
        the line and column).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise _missing(path, record, "JSON")
    try:
        with path.open("rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise errors.DatasetError(
            f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}",
            path=path,
            record=record,
            reason=errors.MALFORMED_JSON,
        ) from e
    except UnicodeDecodeError as e:
        raise errors.DatasetError(
            f"not UTF-8 text: {e}", path=path, record=record, reason=errors.MALFORMED_JSON
        ) from e


def encode_png(array: np.ndarray) -> bytes:
    """Encodes [H, W], [H, W, 1] or [H, W, 3] uint8 as PNG bytes (fast compression)."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
