"""Host-side metric logging: tensorboardX event files plus a JSON-lines file."""

from __future__ import annotations

import itertools
import json
import math
import os
import time

import numpy as np

from mtal_jax import jsonio

_WRITERS = itertools.count()


class MetricWriter:
    """Writes scalars to ``<logdir>/events.*`` and appends them to ``<logdir>/metrics.jsonl``.

    Each JSON line is ``{"step": s, "time": unix_seconds, <name>: value, ...}``; NaN and
    inf are written as null so every line stays valid JSON, and left out of the event file
    (a gap in TensorBoard's curve: e.g. the mIoU of a dataset without segmentation labels,
    which tensorboardX would otherwise warn about at every evaluation).
    """

    def __init__(self, logdir: str, *, resume_step: int | None = None):
        """Args:
        logdir: the log folder (created).
        resume_step: the step a resumed run restarts from: JSON lines of later steps
          (written after the checkpoint it resumes from, before a crash) are dropped,
          since the resumed run writes them again; the new event file starts with
          TensorBoard's purge marker (``SessionLog.START`` at ``resume_step + 1``), so
          TensorBoard hides the old events of those steps instead of drawing them twice.
        """
        os.makedirs(logdir, exist_ok=True)
        path = os.path.join(logdir, "metrics.jsonl")
        if resume_step is not None and os.path.exists(path):
            _drop_after(path, resume_step)
        purge = None if resume_step is None else int(resume_step) + 1
        # Event files are named by second and host; the suffix keeps two writers of one
        # second (a quick resume, another process) from writing the same file.
        suffix = f".{os.getpid()}.{next(_WRITERS)}"
        # Imported here, not at the top: tensorboardX imports torch whenever it is installed
        # (seconds), and select.py, the archive and the analyses import this module without
        # writing events.
        import tensorboardX

        self._tb = tensorboardX.SummaryWriter(logdir, purge_step=purge, filename_suffix=suffix)
        self._jsonl = open(path, "a", encoding="utf-8")  # noqa: SIM115  (closed by close())

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """Logs ``scalars`` (host floats or 0-d arrays) at ``step``."""
        row = {"step": int(step), "time": round(time.time(), 3)}
        for name, value in scalars.items():
            value = float(np.asarray(value))
            if math.isfinite(value):
                self._tb.add_scalar(name, value, int(step))
            row[name] = value if math.isfinite(value) else None
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        self._tb.close()
        self._jsonl.close()


def _drop_after(path: str, step: int) -> None:
    """Rewrites the JSON-lines file ``path`` without the rows of steps after ``step`` (and
    without a torn last line), atomically."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    keep = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # A line torn by the crash.
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            keep.append(line if line.endswith("\n") else line + "\n")
    if len(keep) == len(lines):
        return
    # A full disk: the old log stays, the temporary file goes (write_file_atomic).
    jsonio.write_file_atomic(path, lambda f: f.writelines(keep))
