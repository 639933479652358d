"""Streaming over the records of a large JSON array, and random access to them by offset.

nuImages-size tables (``object_ann.json`` with base64 masks runs to gigabytes) must
not be loaded whole. ``iter_records`` walks the array one record at a time and
reports each record's byte span, so a builder can keep a small index (token ->
spans) and later re-read just the records of one frame with ``read_record``.

The scan decodes bytes as Latin-1, which maps every byte to one character: JSON
structure is ASCII and UTF-8 multi-byte sequences contain no ASCII bytes, so spans
are exact byte offsets. Strings in scanned records are therefore Latin-1 views of
UTF-8; ``fix_text`` restores one, ``read_record`` decodes properly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import BinaryIO

from mtal_jax.data import errors

_CHUNK_BYTES = 1 << 20
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


class _Scanner:
    """A growing Latin-1 window over a binary file."""

    def __init__(self, f: BinaryIO, path: str):
        self.f, self.path = f, path
        self.buf, self.start, self.pos, self.eof = "", 0, 0, False

    def _more(self, size: int = _CHUNK_BYTES) -> bool:
        if self.eof:
            return False
        data = self.f.read(max(size, _CHUNK_BYTES))
        if not data:
            self.eof = True
            return False
        if self.pos > _CHUNK_BYTES:  # Drop what was consumed.
            self.buf, self.start, self.pos = self.buf[self.pos :], self.start + self.pos, 0
        self.buf += data.decode("latin-1")
        return True

    def error(self, detail: str) -> errors.DatasetError:
        return errors.DatasetError(
            f"malformed JSON at byte {self.start + self.pos}: {detail}",
            path=self.path,
            reason=errors.MALFORMED_JSON,
        )

    def peek(self) -> str:
        """Next non-space character ('' at the end of the file), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            got = self.peek() or "end of file"
            raise self.error(f"expected {char!r}, found {got!r}")
        self.pos += 1

    def value(self) -> tuple[int, int, object]:
        """Decodes the next value; returns (byte offset, byte length, value)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # A value cut by the window end fails at the end (or, for a string, at
                # its start); anything else is malformed and reported without reading on.
                cut = e.pos >= len(self.buf) - 8 or e.msg.startswith("Unterminated string")
                if cut and self._more(len(self.buf)):
                    continue
                self.pos = e.pos if not cut else self.pos
                raise self.error(e.msg) from e
            if end == len(self.buf) and self._more():  # A number may continue.
                continue
            offset = self.start + self.pos
            length, self.pos = end - self.pos, end
            return offset, length, value


def _skip_value(scanner: _Scanner) -> None:
    """Skips a value; arrays element by element, so a huge one is never held whole."""
    if scanner.peek() != "[":
        scanner.value()
        return
    scanner.pos += 1
    if scanner.peek() == "]":
        scanner.pos += 1
        return
    while True:
        scanner.value()
        if scanner.peek() == ",":
            scanner.pos += 1
            continue
        scanner.expect("]")
        return


def _seek_member(scanner: _Scanner, key: str) -> None:
    scanner.expect("{")
    while scanner.peek() != "}":
        _, _, name = scanner.value()
        scanner.expect(":")
        if name == key:
            return
        _skip_value(scanner)
        if scanner.peek() == ",":
            scanner.pos += 1
    raise errors.DatasetError(
        f"no top-level member {key!r}", path=scanner.path, reason=errors.MALFORMED_JSON
    )


def iter_records(
    path: str | os.PathLike, *, key: str | None = None
) -> Iterator[tuple[int, int, dict]]:
    """Yields ``(byte offset, byte length, record)`` for each element of a JSON array.

    Args:
      path: JSON file holding ``[...]`` (``key=None``) or ``{..., key: [...], ...}``.
      key: the top-level member holding the array, for COCO-style files.

    Raises:
      DatasetError: missing file (``missing_file``) or malformed JSON
        (``malformed_json``, with the byte offset).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise errors.DatasetError("JSON file not found", path=path, reason=errors.MISSING_FILE)
    with open(path, "rb") as f:
        scanner = _Scanner(f, path)
        if key is not None:
            _seek_member(scanner, key)
        scanner.expect("[")
        if scanner.peek() == "]":
            return
        while True:
            yield scanner.value()
            if scanner.peek() == ",":
                scanner.pos += 1
                continue
            scanner.expect("]")
            return


def read_record(f: BinaryIO, offset: int, length: int, *, path: str) -> dict:
    """Re-reads one record found by ``iter_records`` from the open binary file ``f``."""
    f.seek(offset)
    data = f.read(length)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.DatasetError(
            f"record at byte {offset} is not valid JSON / UTF-8 ({e})",
            path=path,
            record=f"byte {offset}",
            reason=errors.MALFORMED_JSON,
        ) from e


def fix_text(text: str) -> str:
    """Restores a string of a scanned record (Latin-1 view of UTF-8) to its real text."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
