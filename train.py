"""Runs the active-learning experiment of a config (paper IV-A; docs/design.md §6).

  python train.py --config configs/default.py --workdir runs/default
  python train.py --config configs/camvid.py --workdir runs/camvid --config.al.strategies=ours,random

Running the same command again after a crash resumes where it stopped.
"""

import sys

from mtal_jax import runtime

runtime.configure_host_devices()

from absl import app, flags
from ml_collections import config_flags

from mtal_jax.al import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/default.py", "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (created; resumed if it exists).", required=True
)
_PROGRESS = flags.DEFINE_bool(
    "progress",
    True,
    "Show progress bars (the whole experiment's with its ETA, then each run's) when stderr is "
    "a terminal; into a file or pipe the log lines alone are written.",
)
_VERBOSE = flags.DEFINE_bool(
    "verbose", False, "Debug logs, and the third-party warnings hidden by default."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    runtime.setup(config.mesh, verbose=_VERBOSE.value)
    # bars redraw with carriage returns: in a redirected log they are noise, never shown
    progress = _PROGRESS.value and sys.stderr.isatty()
    experiment.run(config, _WORKDIR.value, progress=progress)


if __name__ == "__main__":
    runtime.run_main(main)
