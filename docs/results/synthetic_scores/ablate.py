"""Fig. 6 and the score diagnostics under several settings of ``ours`` (issue 12).

Run from the repository root:
  python docs/results/synthetic_scores/ablate.py RUN_DIR OUT_DIR [POOL_JSON] [NAMES]
e.g. RUN_DIR = runs/default_c0/trial_0/cycle_0, POOL_JSON = RUN_DIR/pool.json, NAMES a
comma-separated subset of SETTINGS. Each setting writes OUT_DIR/<name>/fig6_*.
``CONFIG=camvid DATA_ROOT=...`` in the environment selects another config.
"""

import os
import sys

sys.path.insert(0, os.getcwd())  # this checkout's mtal_jax and configs

from mtal_jax import runtime

runtime.configure_host_devices()

import importlib

from mtal_jax.analysis import cli

SETTINGS = {
    "js_t03": {},  # the defaults
    "kl_t03": {"cls_divergence": "kl"},
    "js_t00": {"det_score_threshold": 0.0},
    "kl_t00": {"det_score_threshold": 0.0, "cls_divergence": "kl"},
    "js_t03_tau01": {"tau": 0.1},
    "js_t05": {"det_score_threshold": 0.5},
}


def main(argv):
    run_dir, out_dir = argv[1], argv[2]
    pool = argv[3] if len(argv) > 3 and argv[3] else None
    names = argv[4].split(",") if len(argv) > 4 else list(SETTINGS)
    for name in names:
        config = importlib.import_module(
            f"configs.{os.environ.get('CONFIG', 'default')}"
        ).get_config()
        if os.environ.get("DATA_ROOT"):
            config.data.root = os.environ["DATA_ROOT"]
        config.al.strategy.kwargs = {"ours": SETTINGS[name]}
        runtime.setup(config.mesh)
        out = os.path.join(out_dir, name)
        print(cli.run(config, run_dir, out, analyses=("fig6",), pool_json=pool, progress=False))


if __name__ == "__main__":
    main(sys.argv)
