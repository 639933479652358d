"""Host-side metric logging: tensorboardX event files plus a JSON-lines file."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import tensorboardX


class MetricWriter:
    """Writes scalars to ``<logdir>/events.*`` and appends them to ``<logdir>/metrics.jsonl``.

    Each JSON line is ``{"step": s, "time": unix_seconds, <name>: value, ...}``; NaN and
    inf are written as null so every line stays valid JSON.
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        self._tb = tensorboardX.SummaryWriter(logdir)
        self._jsonl = open(os.path.join(logdir, "metrics.jsonl"), "a", encoding="utf-8")

    def write(self, step: int, scalars: dict[str, float]) -> None:
        """Logs ``scalars`` (host floats or 0-d arrays) at ``step``."""
        row = {"step": int(step), "time": round(time.time(), 3)}
        for name, value in scalars.items():
            value = float(np.asarray(value))
            self._tb.add_scalar(name, value, int(step))
            row[name] = value if math.isfinite(value) else None
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        self._tb.close()
        self._jsonl.close()
