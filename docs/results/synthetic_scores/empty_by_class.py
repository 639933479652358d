"""Per class: boxes scored by ``ours`` (defaults) and the fraction with an empty BoxMask.

Run from the repository root: ``python docs/results/synthetic_scores/empty_by_class.py
[RUN_DIR]`` (default: the cycle-0 model of ``runs/default_c0``, on its unlabeled pool);
``CONFIG=camvid DATA_ROOT=...`` in the environment selects another config.
"""

import os
import sys

sys.path.insert(0, os.getcwd())  # this checkout's mtal_jax and configs

from mtal_jax import runtime

runtime.configure_host_devices()

import importlib

import jax
import numpy as np

from mtal_jax import jsonio, strategy_types
from mtal_jax.al import experiment, select_cli
from mtal_jax.analysis import collect
from mtal_jax.data import pipeline
from mtal_jax.train import evaluate


def main():
    config = importlib.import_module(f"configs.{os.environ.get('CONFIG', 'default')}").get_config()
    if os.environ.get("DATA_ROOT"):
        config.data.root = os.environ["DATA_ROOT"]
    runtime.setup(config.mesh)
    setup = experiment.build_setup(config)
    run = sys.argv[1] if len(sys.argv) > 1 else "runs/default_c0/trial_0/cycle_0"
    variables = select_cli.load_variables(config, setup, run)
    strategy = experiment.make_strategy(
        experiment.strategy_specs(config, ["ours"])[0], strategy_types.CycleContext()
    )
    fn = jax.jit(
        collect.make_analysis_fn(
            setup.model,
            strategy,
            decode_kwargs=experiment.decode_kwargs(config),
            det_to_seg=np.asarray(setup.dataset.det_to_seg, np.int32),
            loss_weights=setup.train_cfg.loss_weights,
            taus=(0.3,),
            return_maps=True,
        )
    )
    source = setup.dataset.sources["train"]
    labeled = np.zeros(len(source), bool)
    labeled[jsonio.read(run + "/pool.json")["labeled_ids"]] = True
    idx = np.flatnonzero(~labeled)
    seg_classes = list(setup.dataset.seg_classes)
    count, empty, area = {}, {}, {}
    for host in pipeline.iterate_eval(source, idx, setup.spec, batch_size=32):
        out = jax.device_get(fn(variables, evaluate.to_batch(host)))
        keep = out["valid"]
        for b in np.flatnonzero(keep):
            for k in np.flatnonzero(out["box_valid"][b]):
                c = seg_classes[out["box_classes"][b, k]]
                x1, y1, x2, y2 = out["boxes"][b, k]
                count[c] = count.get(c, 0) + 1
                empty[c] = empty.get(c, 0) + int(not out["box_masks"][b, k].any())
                area.setdefault(c, []).append((x2 - x1) * (y2 - y1))
    print("| class | scored boxes | empty BoxMask (%) | median box area (px) |")
    print("|---|---|---|---|")
    for c in sorted(count, key=lambda c: -count[c]):
        print(f"| {c} | {count[c]} | {100 * empty[c] / count[c]:.0f} | {np.median(area[c]):.0f} |")


if __name__ == "__main__":
    main()
