"""Bad user files: a clear error, or a counted and reported skip (never a silent drop).

Every builder takes ``on_error="raise"`` (default) or ``on_error="skip"``:

* ``"raise"``: the first bad record stops preparation with a ``DatasetError`` whose
  message names the file, the record (token, frame, object id, ...) and the reason.
* ``"skip"``: the bad frame (missing or corrupt image, size mismatch, malformed file)
  or the bad object (unknown category, box outside the image, bad mask) is dropped,
  counted per split, kind and reason, logged, and stored in the prepared dataset's
  metadata under ``"skipped"`` (``read_skips(builder.info)``).

Not errors, and documented where they happen: boxes partly outside the image are
clipped to it (counted as ``"clipped_boxes"``); objects of categories the class map
marks as ignored give no box and their pixels get the ignore label.
"""

from __future__ import annotations

import collections
import os

from absl import logging

POLICIES = ("raise", "skip")
"""Valid values of a builder's ``on_error`` option."""

# Reason codes (the keys of the skip counts).
MISSING_FILE = "missing_file"
CORRUPT_IMAGE = "corrupt_image"
MALFORMED_JSON = "malformed_json"
MALFORMED_RECORD = "malformed_record"
UNKNOWN_CATEGORY = "unknown_category"
BOX_OUTSIDE_IMAGE = "box_outside_image"
SIZE_MISMATCH = "size_mismatch"
BAD_MASK = "bad_mask"
EMPTY_SPLIT = "empty_split"
DUPLICATE_KEY = "duplicate_key"
UNSAFE_PATH = "unsafe_path"

_MAX_LOGGED = 20  # Per split; the rest only appear in the counts.


class DatasetError(ValueError):
    """A user's dataset file is missing, unreadable or inconsistent.

    Attributes:
      path: the offending file.
      record: the record inside it (token, frame id, object id, ...) or None.
      reason: one of the reason codes of this module (``MISSING_FILE``, ...).
      detail: human-readable description.
    """

    def __init__(
        self, detail: str, *, path: str | os.PathLike, record: str | None = None, reason: str
    ):
        self.path = str(path)
        self.record = record
        self.reason = reason
        self.detail = detail
        where = self.path if record is None else f"{self.path} [record {record}]"
        super().__init__(f"{where}: {detail} ({reason})")


def check_policy(on_error: str) -> str:
    """Returns ``on_error`` after checking it is one of ``POLICIES``."""
    if on_error not in POLICIES:
        raise ValueError(f"on_error={on_error!r}; expected one of {POLICIES}")
    return on_error


class SkipLog:
    """Per-split account of what preparation dropped or changed.

    Under ``on_error="raise"`` ``skip`` re-raises; under ``"skip"`` it counts, logs the
    first few occurrences and keeps the first message per reason as an example.
    """

    def __init__(self, on_error: str, dataset: str, split: str):
        self.on_error = check_policy(on_error)
        self.dataset = dataset
        self.split = split
        self.frames: collections.Counter[str] = collections.Counter()
        self.objects: collections.Counter[str] = collections.Counter()
        self.clipped_boxes = 0
        self.written = 0
        self.examples: dict[str, str] = {}
        self._logged = 0

    def skip(self, error: DatasetError, *, kind: str) -> None:
        """Raises ``error`` or counts it as one dropped ``kind`` ("frame" or "object")."""
        if self.on_error == "raise":
            raise error
        counter = self.frames if kind == "frame" else self.objects
        counter[error.reason] += 1
        self.examples.setdefault(error.reason, str(error))
        if self._logged < _MAX_LOGGED:
            logging.warning("%s/%s: skipped %s: %s", self.dataset, self.split, kind, error)
            self._logged += 1

    def summary(self) -> dict:
        """JSON-ready counts: ``{"frames": {...}, "objects": {...}, "clipped_boxes": n, ...}``."""
        return {
            "frames": dict(self.frames),
            "objects": dict(self.objects),
            "clipped_boxes": self.clipped_boxes,
            "examples": dict(self.examples),
        }

    def finish(self, path) -> dict:
        """Logs the totals once the split is generated; returns ``summary()``.

        Raises:
          DatasetError: ``empty_split`` when no example was written (TFDS cannot
            store an empty split; the message says what was skipped).
        """
        if self.frames or self.objects:
            logging.warning(
                "%s/%s: skipped frames %s, objects %s (on_error='skip'); details in "
                "info.metadata['skipped']",
                self.dataset,
                self.split,
                dict(self.frames),
                dict(self.objects),
            )
        if self.clipped_boxes:
            logging.info(
                "%s/%s: clipped %d boxes to the image", self.dataset, self.split, self.clipped_boxes
            )
        if self.written == 0:
            raise DatasetError(
                f"split {self.split!r} has no examples (skipped frames: {dict(self.frames)}); "
                "check the split files and the camera / split options",
                path=path,
                reason=EMPTY_SPLIT,
            )
        return self.summary()


def read_skips(info) -> dict:
    """Returns ``{split: SkipLog.summary()}`` stored by a prepared builder (``{}`` if none)."""
    return dict(info.metadata.get("skipped", {}) or {})
