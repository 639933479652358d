"""Scoring throughput of every registered strategy, and k-centre greedy time on large pools.

Part ``scoring``: for each strategy in ``strategies.STRATEGIES``, the jitted
``train.step.make_predict_fn(model, strategy)`` (forward, decode, the strategy's extras,
score and features) on one pool batch of synthetic scenes, at the default config's sizes
(``configs/default.py``: 96x192 images, tiny backbone, 64 channels, LL4AL modules,
K = 50 detections, score threshold 0.05, batch = ``al.score_batch_size``). Plain inference
(forward + decode + segmentation softmax) is timed beside it. The network is untrained, so
the number of valid detections is arbitrary and printed.

Part ``kcenter``: ``selection.k_center_greedy`` on random features [N, D] with the
protocol's fractions (40 % labeled = centres, budget 10 % of N), jitted, for each N in
``--pool_sizes``; also the CDAL distance on packed features at N = the smallest size.

Command (from the repository root):
  python bench/strategy_throughput.py --out /tmp/strategy_throughput.json
Results: docs/benchmarks.md ("Strategy scoring and selection").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from configs import default as default_config
from mtal_jax import decode, selection, strategies, strategy_types, structs
from mtal_jax.data import synthetic_classes, synthetic_scene
from mtal_jax.models import multitask
from mtal_jax.scores import diversity
from mtal_jax.train import step


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default="all", choices=["all", "scoring", "kcenter"])
    p.add_argument("--strategies", default=",".join(strategies.STRATEGIES))
    p.add_argument("--batch", type=int, default=0, help="0 = config al.score_batch_size")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per strategy (best of)")
    p.add_argument("--pool_sizes", default="10000,100000")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--labeled_fraction", type=float, default=0.4)
    p.add_argument("--budget_fraction", type=float, default=0.1)
    p.add_argument("--block_size", type=int, default=256)
    p.add_argument("--out", default="", help="write the results as JSON here")
    return p.parse_args(argv)


def _time(fn, repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, min(times), statistics.median(times)


def scoring(args) -> dict:
    config = default_config.get_config()
    height, width = config.data.image_size
    b = args.batch or config.al.score_batch_size
    model = multitask.Model(
        len(synthetic_classes.DET_CLASSES),
        len(synthetic_classes.SEG_CLASSES),
        **config.model.to_dict(),
    )
    variables = jax.jit(multitask.create_variables, static_argnums=(0, 2))(
        model, jax.random.key(0), (height, width)
    )
    images = np.stack([synthetic_scene.render_scene(i, height, width)["image"] for i in range(b)])
    batch = structs.Batch(
        images=images,
        boxes=np.zeros((b, 1, 4), np.float32),
        box_labels=np.zeros((b, 1), np.int32),
        box_valid=np.zeros((b, 1), bool),
        seg_labels=np.zeros((b, height, width), np.int32),
        valid=np.ones(b, bool),
        index=np.arange(b, dtype=np.int32),
    )
    decode_kwargs = {
        "max_detections": config.eval.max_detections,
        "score_threshold": config.eval.score_threshold,
    }
    det_to_seg = np.asarray(synthetic_classes.DET_TO_SEG, np.int32)

    @jax.jit
    def plain_fn(variables, images):
        outputs = model.apply(variables, images, train=False)
        dets = decode.decode(outputs, **decode_kwargs)
        return dets, jax.nn.softmax(outputs.seg_logits.astype(jnp.float32), -1)

    dets, _ = plain_fn(variables, images)
    first, best, median = _time(lambda: plain_fn(variables, images), args.repeats)
    rows = {"plain": {"first_call_s": first, "images_per_s": b / best, "median": b / median}}
    hist = np.ones(len(synthetic_classes.DET_CLASSES))
    for name in args.strategies.split(","):
        strategy = strategies.get_strategy(
            name, strategy_types.CycleContext(cycle=0, labeled_class_hist=hist)
        )
        fn = jax.jit(
            step.make_predict_fn(
                model, strategy, decode_kwargs=decode_kwargs, det_to_seg=det_to_seg
            )
        )
        first, best, median = _time(lambda fn=fn: fn(variables, batch), args.repeats)
        rows[name] = {"first_call_s": first, "images_per_s": b / best, "median": b / median}
        print(name, json.dumps(rows[name]), flush=True)
    return {
        "image_hw": [height, width],
        "batch": b,
        "backbone": config.model.backbone,
        "valid_detections_per_image": float(np.asarray(dets.valid).sum(1).mean()),
        "strategies": rows,
    }


def kcenter(args) -> dict:
    out = {}
    sizes = [int(s) for s in args.pool_sizes.split(",")]
    for n in sizes + [-min(sizes)]:  # negative: the CDAL distance at the smallest size
        cdal = n < 0
        n = abs(n)
        rng = np.random.default_rng(0)
        if cdal:
            seg = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 4, 8, 19)), jnp.float32) * 3, -1)
            det = jax.nn.softmax(jnp.asarray(rng.normal(size=(n, 10, 10)), jnp.float32) * 2, -1)
            feats = jax.jit(diversity.cdal_features)(
                seg, det, jnp.asarray(rng.random((n, 10)) < 0.5)
            )
            distance_fn = diversity.make_cdal_distance()
        else:
            feats = jnp.asarray(rng.normal(size=(n, args.dim)), jnp.float32)
            distance_fn = selection.squared_euclidean
        centers = jnp.asarray(rng.random(n) < args.labeled_fraction)
        budget = int(args.budget_fraction * n)

        @jax.jit
        def run(feats, centers, key, distance_fn=distance_fn, budget=budget):
            return selection.k_center_greedy(
                feats,
                ~centers,
                budget,
                key,
                centers=centers,
                distance_fn=distance_fn,
                block_size=args.block_size,
            )

        start = time.perf_counter()
        compiled = run.lower(feats, centers, jax.random.key(0)).compile()
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        picks = jax.block_until_ready(compiled(feats, centers, jax.random.key(0)))
        run_s = time.perf_counter() - start
        assert len(set(np.asarray(picks).tolist())) == budget
        name = f"{'cdal' if cdal else 'sq_euclidean'}_N{n}"
        out[name] = {
            "n": n,
            "dim": int(feats.shape[1]),
            "centers": int(centers.sum()),
            "budget": budget,
            "compile_s": compile_s,
            "run_s": run_s,
            "features_mb": feats.size * 4 / 2**20,
            "block_mb": n * args.block_size * 4 / 2**20,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        print(name, json.dumps(out[name]), flush=True)
    return out


def main(argv=None):
    args = _parse(argv)
    results = {
        "device": jax.devices()[0].device_kind,
        "platform": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "command": "python bench/strategy_throughput.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    if args.part in ("all", "scoring"):
        results["scoring"] = scoring(args)
    if args.part in ("all", "kcenter"):
        results["kcenter"] = kcenter(args)
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
