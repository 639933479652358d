"""A resumed session over a finished experiment: how long the protocol takes to replay its
finished runs, for this checkout and, side by side, for other checkouts of the project
(e.g. a ``git worktree`` of an older commit).

  python bench/resume_replay.py [--code /path/to/other/checkout ...] [--repeats 3]

Trains the tiny experiment of the end-to-end tests once (``configs/tiny.py:repro``: random
and ours, 2 trials, a reference; 6 training runs) with this checkout, then for each repeat
and each code (in turn, so that the machine's load falls on all alike) copies the finished
run directory and runs the same command on the copy in a fresh process, timing
``experiment.run`` alone (imports and the dataset's preparation excluded). Prints the
median seconds per code, the ratio to the first, and whether every code gave the same
records.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, time
sys.path.insert(0, {code!r})
os.environ.setdefault("JAX_PLATFORMS", "cpu")
from mtal_jax import runtime
os.environ["XLA_FLAGS"] = runtime.cpu_xla_flags(os.environ.get("XLA_FLAGS", ""), 2)
os.environ["JAX_COMPILATION_CACHE_DIR"] = {cache!r}
from configs import tiny
from mtal_jax.al import experiment
import mtal_jax
assert mtal_jax.__file__.startswith({code!r}), mtal_jax.__file__  # not an installed copy
config = tiny.get_config("repro")
config.data.data_dir = {data!r}
if {train!r}:
    experiment.run(config, {workdir!r}, progress=False)
else:
    t = time.perf_counter()
    records = experiment.run(config, {workdir!r}, progress=False)
    seconds = time.perf_counter() - t
    print("RESULT", json.dumps({{"seconds": seconds, "records": [r.to_json() for r in records]}}))
"""


def _child(code: str, workdir: str, data: str, cache: str, train: bool) -> dict | None:
    src = CHILD.format(code=code, workdir=workdir, data=data, cache=cache, train=train)
    out = subprocess.run(
        [sys.executable, "-c", src], cwd=code, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{code}: the child failed:\n{out.stderr[-3000:]}")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]) if lines else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--code", action="append", default=[], help="another checkout to compare")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    codes = [str(ROOT)] + [str(pathlib.Path(c).resolve()) for c in args.code]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="resume_replay_"))
    data, cache, finished = str(tmp / "tfds"), str(tmp / "xla"), str(tmp / "finished")
    _child(str(ROOT), finished, data, cache, train=True)
    seconds = {c: [] for c in codes}
    records = {}
    for r in range(args.repeats):
        for c in codes:
            copy = tmp / f"copy_{r}_{codes.index(c)}"
            shutil.copytree(finished, copy)
            got = _child(c, str(copy), data, cache, train=False)
            seconds[c].append(got["seconds"])
            records.setdefault(c, got["records"])
            shutil.rmtree(copy)
            print(f"repeat {r} {c}: {got['seconds']:.2f} s", flush=True)
    base = statistics.median(seconds[codes[0]])
    for c in codes:
        med = statistics.median(seconds[c])
        print(f"{c}: median {med:.2f} s over {args.repeats}, {med / base:.2f}x this checkout's")
    same = all(records[c] == records[codes[0]] for c in codes)
    print(f"same records from every code: {same}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
