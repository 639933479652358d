"""Peak memory and time of scoring + selecting over large pools (10k / 50k / 100k images).

  python bench/pool_scale.py [--sizes 10000,50000,100000] [--image_hw 32,64] [--max_det 4]

For each pool size N, a synthetic_driving train split of N small scenes is prepared (its
own process, not measured), then a fresh process runs what ``select.py`` does with the
``ours`` strategy: the image-id index of the whole pool, CALD's labeled class histogram
over the 40 % labeled images, pool scoring of the rest (``experiment.select_images``:
forward, decode, BoxMask crops, consistency scores, top-k selection of 10 %). It reports
the RSS after each phase and the process's peak RSS (``ru_maxrss``); flat = independent
of N up to the O(N) score vectors (a few bytes per image).

The network is untrained (random init): decode keeps K = ``--max_det`` detections per
image, all above the score threshold, so every image sends K crops through BoxMask.
``--old_decode`` also times reading ids by decoding every example (the former way) on the
first 2000 images.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _config(n: int, hw: tuple[int, int], max_det: int, data_dir: str):
    from configs import default

    cfg = default.get_config()
    cfg.data.data_dir = data_dir
    cfg.data.builder_kwargs = {"num_train": n, "num_test": 8, "height": hw[0], "width": hw[1],
                               "seed": 0}  # fmt: skip
    cfg.data.image_size = hw
    cfg.eval.max_detections = max_det
    cfg.al.score_batch_size = 64
    return cfg


class StandIn:
    """An in-memory pool of ``n`` examples (no disk): 64 rendered scenes repeated, each
    example with its own image id. For pool sizes whose TFDS preparation would take longer
    than the measurement; the id index and class histogram then read plain dicts."""

    def __init__(self, n: int, hw: tuple[int, int]):
        from mtal_jax.data import synthetic_scene

        self.n = n
        self.scenes = [synthetic_scene.render_scene(i, *hw) for i in range(64)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        s = self.scenes[i % 64]
        return {"image": s["image"], "segmentation": s["segmentation"][..., None],
                "boxes": s["boxes"], "box_labels": s["box_labels"],
                "image_id": f"standin_{i:07d}".encode()}  # fmt: skip


def _standin_setup(cfg, n: int, hw: tuple[int, int]):
    from mtal_jax import sharding
    from mtal_jax.al import experiment
    from mtal_jax.data import catalog, pipeline, synthetic_classes
    from mtal_jax.models import multitask

    det, seg = list(synthetic_classes.DET_CLASSES), list(synthetic_classes.SEG_CLASSES)
    ds = catalog.Dataset(
        sources={"train": StandIn(n, hw), "test": StandIn(8, hw)}, det_classes=det,
        seg_classes=seg, det_to_seg=list(synthetic_classes.DET_TO_SEG), name="standin",
        builder=None,
    )  # fmt: skip
    spec = pipeline.Spec(image_hw=hw, max_boxes=cfg.data.max_boxes, num_det_classes=len(det),
                         num_seg_classes=len(seg), name="standin")  # fmt: skip
    model = multitask.Model(len(det), len(seg), backbone=cfg.model.backbone,
                            neck_channels=cfg.model.neck_channels,
                            head_channels=cfg.model.head_channels, loss_prediction=True)  # fmt: skip
    return experiment.Setup(
        dataset=ds, spec=spec, model=model, mesh=sharding.create_mesh(),
        train_cfg=experiment.train_config(cfg), pool_size=n, eval_indices=list(range(8)),
    )  # fmt: skip


def _prepare(args, n: int) -> None:
    from mtal_jax.data import catalog

    d = _config(n, args.hw, args.max_det, args.data_dir).data
    catalog.prepare(d.name, data_dir=d.data_dir, builder_kwargs=dict(d.builder_kwargs))


def _measure(args, n: int) -> dict:
    from mtal_jax import runtime

    runtime.configure_host_devices()
    import tempfile

    import jax
    import numpy as np

    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="pool_scale_xla_"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    from mtal_jax import strategy_types
    from mtal_jax.al import experiment
    from mtal_jax.models import multitask

    cfg = _config(n, args.hw, args.max_det, args.data_dir)
    cfg.model.backbone = args.backbone
    out = {"n": n, "source": "standin" if args.standin else "tfds", "backbone": args.backbone}
    setup = _standin_setup(cfg, n, args.hw) if args.standin else experiment.build_setup(cfg)
    variables = multitask.create_variables(setup.model, jax.random.key(0), args.hw)
    out["rss_after_setup_mib"] = _rss_mib()
    source = setup.dataset.sources[cfg.data.train_split]
    if args.old_decode:
        m = min(n, 2000)
        t = time.perf_counter()
        for i in range(m):
            source[i].get("image_id")
        out["old_id_read_ms_per_image"] = 1e3 * (time.perf_counter() - t) / m
    t = time.perf_counter()
    ids = experiment.image_ids(source, np.arange(n))
    id_to_index = {s: k for k, s in enumerate(ids)}
    out["id_index_s"] = time.perf_counter() - t
    out["rss_after_id_index_mib"] = _rss_mib()
    assert len(id_to_index) == n, "image ids are not unique"
    labeled = np.zeros(n, bool)
    labeled[np.random.default_rng(0).permutation(n)[: int(0.4 * n)]] = True
    t = time.perf_counter()
    plan = experiment.plan_from_config(cfg, names=["ours"])
    hist = experiment.labeled_class_hist(source, labeled, setup.spec.num_det_classes)
    out["class_hist_s"] = time.perf_counter() - t
    out["class_hist"] = hist.tolist()
    out["rss_after_class_hist_mib"] = _rss_mib()
    strat = experiment.make_strategy(plan.strategy("ours"), strategy_types.CycleContext())
    # Warm-up on 64 images: the compiles land in the persistent cache, so the timed call
    # below measures scoring, not XLA compiles.
    warm = np.zeros(n, bool)
    warm[np.flatnonzero(~labeled)[:64]] = True
    t = time.perf_counter()
    experiment.select_images(
        setup, plan, strat, variables, labeled, 1, jax.random.key(0), candidates=warm,
        progress=False,
    )  # fmt: skip
    out["warmup_s"] = time.perf_counter() - t
    t = time.perf_counter()
    selected, _, scored = experiment.select_images(
        setup, plan, strat, variables, labeled, n // 10, jax.random.key(0), progress=False
    )
    out["score_select_s"] = time.perf_counter() - t
    out["scored_images"] = int(scored.sum())
    out["scored_images_per_s"] = int(scored.sum()) / out["score_select_s"]
    out["selected"] = len(selected)
    out["rss_after_scoring_mib"] = _rss_mib()
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,50000,100000")
    p.add_argument("--image_hw", default="32,64")
    p.add_argument("--max_det", type=int, default=4)
    p.add_argument("--data_dir", default="/tmp/mtal_pool_scale_tfds")
    p.add_argument("--old_decode", action="store_true")
    p.add_argument("--standin", action="store_true", help="in-memory pool instead of TFDS")
    p.add_argument("--backbone", default="tiny", help="test = cheap network (memory runs)")
    p.add_argument("--json", default="")
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.hw = tuple(int(v) for v in args.image_hw.split(","))
    if args.child:
        kind, n = args.child.split(":")
        if kind == "prepare":
            _prepare(args, int(n))
        else:
            print("RESULT " + json.dumps(_measure(args, int(n))), flush=True)
        return
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load {os.getloadavg()}")
    results = []
    base = [sys.executable, __file__, "--image_hw", args.image_hw, "--max_det", str(args.max_det),
            "--data_dir", args.data_dir, "--backbone", args.backbone]  # fmt: skip
    base += (["--old_decode"] if args.old_decode else []) + (["--standin"] if args.standin else [])
    for n in (int(v) for v in args.sizes.split(",")):
        t = time.perf_counter()
        if not args.standin:
            subprocess.run(base + ["--child", f"prepare:{n}"], check=True)
        prep = time.perf_counter() - t
        r = subprocess.run(base + ["--child", f"measure:{n}"], check=True, capture_output=True,
                           text=True)  # fmt: skip
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        res = json.loads(line[len("RESULT ") :]) | {"prepare_s": prep}
        results.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "class_hist"}), flush=True)
    print(f"{'N':>7} {'setup':>7} {'ids':>7} {'hist':>7} {'scored':>8} {'peak RSS MiB':>13} "
          f"{'ids s':>6} {'hist s':>6} {'score+select s':>14} {'img/s':>6}")  # fmt: skip
    for r in results:
        print(f"{r['n']:7d} {r['rss_after_setup_mib']:7.0f} {r['rss_after_id_index_mib']:7.0f} "
              f"{r['rss_after_class_hist_mib']:7.0f} {r['rss_after_scoring_mib']:8.0f} "
              f"{r['peak_rss_mib']:13.0f} {r['id_index_s']:6.1f} {r['class_hist_s']:6.1f} "
              f"{r['score_select_s']:14.1f} {r['scored_images_per_s']:6.0f}")  # fmt: skip
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
