"""Writing a single-file output a user named (``select.py --output``), safely.

* ``-``: the text goes to standard output.
* A symlink is followed: its target is written (the link stays a link).
* A regular file (or a new name in an existing folder) is replaced atomically: the text
  goes to a temporary file beside it, which is renamed over it; the temporary file never
  survives a failure.
* A named pipe or a character device (``/dev/stdout``, a terminal) is streamed to: it
  cannot be replaced, and renaming a file over it would destroy it.
* A folder, a block device, a socket, or a name in a missing folder is refused before any
  work starts (``check``).
"""

from __future__ import annotations

import os
import stat
import sys

from mtal_jax import jsonio

STDOUT = "-"


def _target(path: str) -> tuple[str, os.stat_result | None]:
    """The path that is written (symlinks resolved) and its stat (None when missing)."""
    real = os.path.realpath(path)
    try:
        return real, os.stat(real)
    except FileNotFoundError:
        return real, None


def check(path: str) -> None:
    """Raises when ``path`` cannot take the output (call before the work that makes it).

    Raises:
      IsADirectoryError: ``path`` is a folder.
      FileNotFoundError: the folder of a new ``path`` does not exist.
      ValueError: ``path`` is a block device, a socket or another special file.
    """
    if path == STDOUT:
        return
    real, st = _target(path)
    shown = path if real == os.path.abspath(path) else f"{path} (-> {real})"
    if st is None:
        parent = os.path.dirname(real)
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"output {shown}: folder {parent} does not exist")
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"output {shown} is a folder; give a file name")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
        raise ValueError(
            f"output {shown} is not a regular file, a named pipe or a character device"
        )


def write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` as described in the module docstring.

    Raises:
      The errors of ``check``, and ``OSError`` from the file system (e.g. a full disk),
      after removing the temporary file.
    """
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    check(path)
    real, st = _target(path)
    if st is not None and not stat.S_ISREG(st.st_mode):  # A pipe or a device: stream.
        with open(real, "w", encoding="utf-8") as f:
            f.write(text)
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else None  # Replacing keeps the mode.
    jsonio.write_file_atomic(real, lambda f: f.write(text), mode=mode)
