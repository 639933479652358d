"""Benchmark: how fast the embedded ``synthetic_driving`` dataset is generated.

Usage (from the repo root):
  python bench/synthetic_generation.py                   # 1000 scenes at 128x256
  python bench/synthetic_generation.py --prepare         # also the full default TFDS build
  python bench/synthetic_generation.py --height 64 --width 128 --num 2000

Prints wall-clock and CPU time per scene for ``synthetic_scene.render_scene`` alone, and
with ``--prepare`` the time of ``synthetic.prepare`` (rendering + PNG encoding +
array_record writing) of the default config (800 train + 200 test at 128x256) into a
temporary directory.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np

from mtal_jax.data import synthetic, synthetic_scene


def _time_render(num: int, height: int, width: int) -> None:
    synthetic_scene.render_scene(0, height, width)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    boxes = [
        len(synthetic_scene.render_scene([0, 0, i], height, width)["boxes"]) for i in range(num)
    ]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"render_scene: {num} scenes at {height}x{width}: wall {wall:.2f} s "
        f"({1e3 * wall / num:.2f} ms/scene), cpu {cpu:.2f} s ({1e3 * cpu / num:.2f} ms/scene), "
        f"{np.mean(boxes):.2f} boxes/scene"
    )


def _time_prepare() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        wall, cpu = time.perf_counter(), time.process_time()
        builder = synthetic.prepare(data_dir)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(p.stat().st_size for p in pathlib.Path(data_dir).rglob("*") if p.is_file())
        n = builder.info.splits["train"].num_examples + builder.info.splits["test"].num_examples
        print(
            f"prepare (default config, {n} examples): wall {wall:.2f} s, cpu {cpu:.2f} s, "
            f"{size / 2**20:.1f} MiB on disk"
        )
        ds = builder.as_data_source(split="train")
        start = time.perf_counter()
        for i in range(200):
            ds[i]
        print(f"random access: {1e3 * (time.perf_counter() - start) / 200:.2f} ms/example")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=1000)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--prepare", action="store_true", help="also time the TFDS build")
    args = parser.parse_args()
    _time_render(args.num, args.height, args.width)
    if args.prepare:
        _time_prepare()


if __name__ == "__main__":
    main()
