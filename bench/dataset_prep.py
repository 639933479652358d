"""Benchmark: preparation and loading throughput of the real-data builders, and flat memory.

Usage (from the repo root):
  python bench/dataset_prep.py                      # 30000-frame nuImages-size tables + CamVid
  python bench/dataset_prep.py --frames 5000 --skip-camvid
  python bench/dataset_prep.py --camvid-root ../shared/data/camvid --frames 0

nuImages part: writes a synthetic table set in the official layout (``sample``,
``sample_data`` with two non-key sweeps per sample, ``object_ann`` / ``surface_ann``
with base64 RLE masks, ``category``) with ``--frames`` key-camera frames of 64x64
JPEG (1-4 objects, a road surface, six camera channels), then times
``nuimages.prepare`` over all cameras and random access to the prepared split. While
preparing, a thread samples the process RSS; the report gives it at each quarter of
the preparation time and the peak (``ru_maxrss``). TFDS's writer keeps the serialized
examples in memory up to 1000 MiB before spilling them to disk, so RSS grows by about
the prepared size until then; ``--tfds-buffer-mib 8`` lowers that bound to show that
the builder itself streams (RSS flat).

CamVid part: times ``camvid.prepare`` (600 frames, 240x180) and random access.
Everything goes to a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np
import PIL.Image
from tensorflow_datasets.core import shuffle

from mtal_jax.data import camvid, nuimages, rasterize
from tests import mask_formats

CHANNELS = [
    "CAM_FRONT",
    "CAM_FRONT_LEFT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
]
OBJECT_CATEGORIES = [
    "vehicle.car",
    "vehicle.truck",
    "human.pedestrian.adult",
    "movable_object.barrier",
    "movable_object.trafficcone",
    "vehicle.bicycle",
    "animal",
]
SIZE = 64


class _RssSampler(threading.Thread):
    """Samples this process's resident set size (MiB) every ``period_s``."""

    def __init__(self, period_s: float = 0.1):
        super().__init__(daemon=True)
        self.period_s, self.samples, self._done = period_s, [], threading.Event()

    def run(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.is_set():
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * page / 2**20
            self.samples.append((time.perf_counter(), rss))
            self._done.wait(self.period_s)

    def stop(self):
        self._done.set()
        self.join()

    def quarters(self) -> list[float]:
        """RSS at 25, 50, 75 and 100 % of the sampled time."""
        times = np.array([t for t, _ in self.samples])
        rss = np.array([r for _, r in self.samples])
        targets = times[0] + (times[-1] - times[0]) * np.array([0.25, 0.5, 0.75, 1.0])
        return [
            round(float(rss[np.searchsorted(times, t, side="left").clip(0, len(rss) - 1)]), 1)
            for t in targets
        ]


class _Table:
    """Writes a JSON array row by row (the generator never holds the tables)."""

    def __init__(self, path: pathlib.Path):
        self.f, self.first = open(path, "w"), True  # noqa: SIM115 (closed by close())
        self.f.write("[\n")

    def add(self, row: dict):
        self.f.write(("" if self.first else ",\n") + json.dumps(row))
        self.first = False

    def close(self):
        self.f.write("\n]\n")
        self.f.close()


def write_tables(root: pathlib.Path, frames: int, seed: int = 0) -> None:
    """A nuImages-layout table set with ``frames`` key-camera 64x64 frames."""
    rng = np.random.default_rng(seed)
    tables = root / "v1.0-train"
    tables.mkdir(parents=True)
    names = OBJECT_CATEGORIES + ["flat.driveable_surface"]
    (tables / "category.json").write_text(
        json.dumps([{"token": f"c{i}", "name": n} for i, n in enumerate(names)])
    )
    out = {
        n: _Table(tables / f"{n}.json")
        for n in ("sample", "sample_data", "object_ann", "surface_ann")
    }
    for channel in CHANNELS:
        (root / "samples" / channel).mkdir(parents=True)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    road = yy >= SIZE * 2 // 3
    for i in range(frames):
        channel = CHANNELS[i % len(CHANNELS)]
        token, filename = f"sd{i:07d}", f"samples/{channel}/f{i:07d}.jpg"
        image = np.empty((SIZE, SIZE, 3), np.uint8)
        image[:] = rng.integers(100, 200, 3)
        image[road] = 90
        masks = []
        for _ in range(rng.integers(1, 5)):
            cx, cy = rng.integers(8, SIZE - 8, 2)
            rx, ry = rng.integers(3, 10, 2)
            mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
            image[mask] = rng.integers(0, 255, 3)
            masks.append(mask)
        PIL.Image.fromarray(image).save(root / filename, quality=90)
        out["sample"].add(
            {
                "token": f"s{i:07d}",
                "timestamp": i,
                "log_token": "log",
                "key_camera_token": token,
                "key_lidar_token": "",
            }
        )
        for k, sd in enumerate([token, f"sw{i:07d}a", f"sw{i:07d}b"]):
            out["sample_data"].add(
                {
                    "token": sd,
                    "sample_token": f"s{i:07d}",
                    "ego_pose_token": "",
                    "calibrated_sensor_token": "",
                    "filename": filename if k == 0 else f"sweeps/{channel}/{sd}.jpg",
                    "fileformat": "jpg",
                    "width": SIZE,
                    "height": SIZE,
                    "timestamp": i,
                    "is_key_frame": k == 0,
                    "next": "",
                    "prev": "",
                }
            )
        for j, mask in enumerate(masks):
            out["object_ann"].add(
                {
                    "token": f"o{i:07d}_{j}",
                    "sample_data_token": token,
                    "category_token": f"c{rng.integers(len(OBJECT_CATEGORIES))}",
                    "attribute_tokens": [],
                    "bbox": [int(v) for v in rasterize.mask_box(mask)],
                    "mask": mask_formats.encode_nuimages_mask(mask),
                }
            )
        out["surface_ann"].add(
            {
                "token": f"r{i:07d}",
                "sample_data_token": token,
                "category_token": f"c{len(OBJECT_CATEGORIES)}",
                "mask": mask_formats.encode_nuimages_mask(road),
            }
        )
    for table in out.values():
        table.close()


def _time_loading(builder, split: str, num: int, seed: int = 0) -> float:
    """Random-access frames/s over ``num`` examples (fully decoded)."""
    source = builder.as_data_source(split)
    indices = np.random.default_rng(seed).permutation(len(source))[:num]
    source[int(indices[0])]  # warm-up
    start = time.perf_counter()
    for i in indices:
        source[int(i)]
    return len(indices) / (time.perf_counter() - start)


def bench_nuimages(workdir: pathlib.Path, frames: int) -> dict:
    start = time.perf_counter()
    write_tables(workdir / "nuimages", frames)
    write_s = time.perf_counter() - start
    table_mib = (
        sum(p.stat().st_size for p in (workdir / "nuimages" / "v1.0-train").iterdir()) / 2**20
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sampler = _RssSampler()
    sampler.start()
    start = time.perf_counter()
    builder = nuimages.prepare(str(workdir / "tfds"), str(workdir / "nuimages"), cameras=None)
    prepare_s = time.perf_counter() - start
    sampler.stop()
    assert builder.info.splits["train"].num_examples == frames
    prepared_mib = sum(p.stat().st_size for p in pathlib.Path(builder.data_dir).iterdir()) / 2**20
    return {
        "frames": frames,
        "tables_mib": round(table_mib, 1),
        "write_tables_s": round(write_s, 1),
        "prepare_s": round(prepare_s, 1),
        "prepare_frames_per_s": round(frames / prepare_s, 1),
        "prepared_mib": round(prepared_mib, 1),
        "rss_mib_at_quarters_of_prepare": sampler.quarters(),
        "peak_rss_mib_before_prepare": round(rss_before, 1),
        "peak_rss_mib_after_prepare": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "load_frames_per_s": round(_time_loading(builder, "train", min(frames, 2000)), 1),
    }


def bench_camvid(workdir: pathlib.Path, root: str) -> dict:
    start = time.perf_counter()
    builder = camvid.prepare(str(workdir / "tfds"), root)
    prepare_s = time.perf_counter() - start
    frames = sum(s.num_examples for s in builder.info.splits.values())
    return {
        "frames": frames,
        "prepare_s": round(prepare_s, 1),
        "prepare_frames_per_s": round(frames / prepare_s, 1),
        "load_frames_per_s": round(_time_loading(builder, "train", 367), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30000, help="nuImages-size frames (0: skip)")
    parser.add_argument("--camvid-root", default="../shared/data/camvid")
    parser.add_argument("--skip-camvid", action="store_true")
    parser.add_argument(
        "--tfds-buffer-mib",
        type=int,
        default=0,
        help="lower tfds's in-memory shuffle buffer (default 1000 MiB) to show flat memory",
    )
    args = parser.parse_args()
    if args.tfds_buffer_mib:  # tfds keeps serialized examples in memory up to this size.
        shuffle.MAX_MEM_BUFFER_SIZE = args.tfds_buffer_mib << 20
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    }
    with tempfile.TemporaryDirectory() as workdir:
        if not args.skip_camvid and os.path.isdir(args.camvid_root):
            report["camvid"] = bench_camvid(pathlib.Path(workdir) / "camvid", args.camvid_root)
            print(json.dumps({"camvid": report["camvid"]}), flush=True)
        if args.frames:
            report["nuimages_synthetic"] = bench_nuimages(pathlib.Path(workdir), args.frames)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
