"""Wall-time records of the analyses: ``analysis_wall.json`` in an output directory.

Per analysis (``table2``, ``fig6``, ``fig5``, ``fig6_models``), the seconds of the
``analysis.cli`` call that last wrote it (dataset and model loading included), the analyses
run with it, the checkpoints, the machine's CPUs and load, and the date; the results page
(docs/results.md) quotes them.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence

from mtal_jax import jsonio

WALL_FILE = "analysis_wall.json"


def record_wall(
    out_dir: str, analyses: Sequence[str], checkpoints: Sequence[str], seconds: float
) -> str:
    """Adds one call's wall time to ``out_dir/WALL_FILE`` under each of its ``analyses``
    (the other analyses' entries stay) and returns the path."""
    path = os.path.join(out_dir, WALL_FILE)
    walls = jsonio.read(path) if os.path.exists(path) else {}
    entry = {
        "seconds": round(float(seconds), 1),
        "analyses_together": list(analyses),
        "checkpoints": list(checkpoints),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 1),  # other jobs beside it slow it down
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    walls.update({a: entry for a in analyses})
    jsonio.write_atomic(path, walls)
    return path
