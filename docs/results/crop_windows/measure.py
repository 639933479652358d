"""Table II, the empty BoxMasks per class and the score make-up with both crop windows.

Run from the repository root (about 5 minutes per dataset on 2 CPU cores):

  python docs/results/crop_windows/measure.py configs/camvid.py runs/repro_camvid/reference \
      docs/results/crop_windows/camvid
  python docs/results/crop_windows/measure.py configs/default.py \
      runs/repro_synthetic/reference docs/results/crop_windows/synthetic

For each ``crop_window`` (``box``: the paper's crops, resized to S x S; ``native``: squares
of at least S input pixels, docs/design.md "Crop windows"), the reference model's eval
split through ``mtal_jax.analysis.collect_loop.collect_split`` with ``ours``' other
defaults: writes ``<out>/<mode>/table2_boxmask_accuracy.{json,md,png}``,
``fig6_correlation.*`` and ``fig6_diagnostics.json``.
"""

import os
import sys

sys.path.insert(0, os.getcwd())  # this checkout's mtal_jax and configs

from mtal_jax import runtime

runtime.configure_host_devices()

import ml_collections

from mtal_jax import config_file
from mtal_jax.analysis import collect_loop, figures

TAUS = (0.1, 0.3, 0.5, 0.7)


def main(config_path: str, checkpoint: str, out: str) -> None:
    runtime.setup()
    for mode in ("box", "native"):
        config = ml_collections.ConfigDict(config_file.load(config_path).to_dict())
        kwargs = dict(config.al.strategy.kwargs or {})
        kwargs["ours"] = {**dict(kwargs.get("ours", {})), "crop_window": mode}
        config.al.strategy.kwargs = kwargs
        result = collect_loop.collect_split(
            config, checkpoint, taus=TAUS, max_images=0, overlay_images=(), progress=False
        )
        folder = os.path.join(out, mode)
        os.makedirs(folder, exist_ok=True)
        figures.write_table2(result, TAUS, folder)
        figures.write_fig6(result, folder)
        print(folder)


if __name__ == "__main__":
    main(*sys.argv[1:4])
