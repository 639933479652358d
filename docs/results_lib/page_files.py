"""The files the results page reads and writes: JSON and text where they exist, atomic
writes, and a run's records with their summary (``docs/results/<dataset>/``).
"""

from __future__ import annotations

import json
import os

from mtal_jax import jsonio


def read_json(path):
    """The JSON file at ``path``, or None when it does not exist."""
    return jsonio.read(path) if os.path.exists(path) else None


def read_text(path, missing="_(not available yet)_"):
    """The text of ``path`` without surrounding whitespace, or ``missing`` without it."""
    if not os.path.exists(path):
        return missing
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def write_text(path, text):
    """Writes ``text`` to ``path`` atomically (``jsonio.write_file_atomic``)."""
    jsonio.write_file_atomic(path, lambda f: f.write(text))


def write_records(records, d, last_cycle=None):
    """``reporting.write_summary`` and ``results.json`` (one line: the records are large)
    of one run's records into ``d``; ``last_cycle``: the run's planned last cycle
    (``run_dirs.last_cycle``)."""
    from mtal_jax import reporting  # JAX and matplotlib: not for make_results.py --help

    os.makedirs(d, exist_ok=True)
    reporting.write_summary(records, d, last_cycle=last_cycle)
    with open(os.path.join(d, "results.json"), "w", encoding="utf-8") as f:
        json.dump(records, f)
