"""Throughput of the ``ours`` scoring (BoxMask + consistency scores) vs plain inference.

Measures, in one run and on the same images and detections:
  (i)   plain inference: jitted model forward + decode (+ segmentation softmax);
  (ii)  the full ``ours`` scoring: ``train.step.make_predict_fn(model, ours(...))``, i.e.
        forward, decode, packed BoxMask crops through the segmentation path, BoxMasks and
        the S_loc / S_cls / S_seg scores, all in one jitted function;
  (iii) a naive reference: (i) for the batch, then a Python loop over the boxes of each
        image (NumPy crop, one network call per box, NumPy BoxMask and scores,
        ``tests/score_reference.naive_box_mask_scores``).
and reports (ii)/(i) beside its FLOP-ideal value 1 / (1 + crop pixels / image pixels)
(the crops' share of the network work; the network is fully convolutional) and (ii)/(iii).

The network is untrained, so the decoder's detections are arbitrary: ``--num_boxes`` sets
how many are valid per image (decode with score threshold 0 and K = num_boxes). The crop
work does not depend on box size or position (every crop is S x S).

Command (CPU, default config sizes: 128x256 synthetic scenes, tiny backbone):
  python bench/score_throughput.py --out /tmp/score_throughput.json
Results: docs/benchmarks.md ("Consistency scoring throughput").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np

from mtal_jax import decode, ours_strategy, structs
from mtal_jax.data import synthetic_classes, synthetic_scene
from mtal_jax.models import multitask
from mtal_jax.train import step
from tests import score_reference as reference


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image_hw", default="128,256", help="H,W of the network input")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--num_boxes", type=int, default=8, help="valid detections per image")
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--channels", type=int, default=64, help="neck and head width")
    p.add_argument("--crop_size", type=int, default=64)
    p.add_argument("--crop_chunk", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10, help="timed rounds (one batch per method)")
    p.add_argument("--out", default="", help="write the results as JSON here")
    return p.parse_args(argv)


def _time_interleaved(fns: dict, rounds: int) -> tuple[dict, dict, dict, dict]:
    """Best-of-``rounds`` seconds per call of each function, timed round-robin.

    One warm-up (compile) call each first. Round-robin order and the minimum make the
    ratios robust to other processes sharing the CPU (the median is reported too). The
    process CPU time (all threads) of the best-of calls is a second, load-insensitive
    measure of the work done.

    Returns:
      (best wall s, median wall s, best process-CPU s, first-call wall s), name -> value.
    """
    compile_s, times, cpu = {}, {name: [] for name in fns}, {name: [] for name in fns}
    for name, fn in fns.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        compile_s[name] = time.perf_counter() - start
    for _ in range(rounds):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    best_cpu = {name: min(t) for name, t in cpu.items()}
    return best, median, best_cpu, compile_s


def _flops(fn, *args) -> float:
    """XLA's FLOP estimate of a jitted function."""
    cost = fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def main(argv=None):
    args = _parse(argv)
    height, width = (int(v) for v in args.image_hw.split(","))
    num_seg, num_det = len(synthetic_classes.SEG_CLASSES), len(synthetic_classes.DET_CLASSES)
    det_to_seg = np.asarray(synthetic_classes.DET_TO_SEG, np.int32)
    model = multitask.Model(
        num_det,
        num_seg,
        backbone=args.backbone,
        neck_channels=args.channels,
        head_channels=args.channels,
    )
    init = jax.jit(multitask.create_variables, static_argnums=(0, 2))
    variables = init(model, jax.random.key(0), (height, width))
    images = np.stack(
        [synthetic_scene.render_scene(i, height, width)["image"] for i in range(args.batch)]
    )
    b = args.batch
    batch = structs.Batch(
        images=images,
        boxes=np.zeros((b, 1, 4), np.float32),
        box_labels=np.zeros((b, 1), np.int32),
        box_valid=np.zeros((b, 1), bool),
        seg_labels=np.zeros((b, height, width), np.int32),
        valid=np.ones(b, bool),
        index=np.arange(b, dtype=np.int32),
    )
    decode_kwargs = {"max_detections": args.num_boxes, "score_threshold": 0.0}

    @jax.jit
    def plain_fn(variables, images):
        outputs = model.apply(variables, images, train=False)
        dets = decode.decode(outputs, **decode_kwargs)
        return dets, jax.nn.softmax(outputs.seg_logits.astype(jnp.float32), -1)

    # Threshold 0: every decoded slot is scored (an untrained model's scores are below ours'
    # default 0.3), so the benchmark measures args.num_boxes crops per image as before.
    strategy = ours_strategy.ours(
        crop_size=args.crop_size, crop_chunk=args.crop_chunk, det_score_threshold=0.0
    )
    ours_fn = jax.jit(
        step.make_predict_fn(model, strategy, decode_kwargs=decode_kwargs, det_to_seg=det_to_seg)
    )
    segment_one = jax.jit(lambda v, x: model.apply(v, x, method=multitask.Model.segment))

    def naive_fn():
        dets, seg_probs = jax.device_get(plain_fn(variables, images))
        out = []
        for i in range(b):
            _, scores = reference.naive_box_mask_scores(
                lambda crop: np.asarray(segment_one(variables, crop)),
                images[i],
                dets.boxes[i],
                dets.det_probs[i],
                dets.valid[i],
                seg_probs[i],
                det_to_seg,
                crop_size=args.crop_size,
            )
            out.append(scores["score"])
        return np.asarray(out)

    dets, _ = jax.device_get(plain_fn(variables, images))
    num_valid = int(dets.valid.sum())
    best, median, best_cpu, compile_s = _time_interleaved(
        {
            "plain": lambda: plain_fn(variables, images),
            "ours": lambda: ours_fn(variables, batch),
            "naive": naive_fn,
        },
        args.repeats,
    )
    t_plain, t_ours, t_naive = best["plain"], best["ours"], best["naive"]

    scores, _ = jax.device_get(ours_fn(variables, batch))
    naive_scores = naive_fn()
    crop_px = num_valid * args.crop_size**2
    image_px = b * height * width
    ideal = 1.0 / (1.0 + crop_px / image_px)
    # The same ratio from XLA's FLOP counts (network on the images vs on the valid crops).
    crops_like = jax.ShapeDtypeStruct((num_valid, args.crop_size, args.crop_size, 3), jnp.uint8)
    flops_plain = _flops(plain_fn, variables, images)
    flops_crops = _flops(segment_one, variables, crops_like)
    results = {
        "device": jax.devices()[0].device_kind,
        "platform": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "command": "python bench/score_throughput.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "image_hw": [height, width],
        "batch": b,
        "backbone": args.backbone,
        "crop_size": args.crop_size,
        "crop_chunk": args.crop_chunk,
        "valid_boxes": num_valid,
        "crop_px_over_image_px": crop_px / image_px,
        "images_per_s": {name: b / t for name, t in best.items()},
        "images_per_s_median": {name: b / t for name, t in median.items()},
        "images_per_cpu_s": {name: b / t for name, t in best_cpu.items()},
        "first_call_s": compile_s,
        "ours_over_plain": t_plain / t_ours,
        "flop_ideal": ideal,
        "xla_flops": {"plain": flops_plain, "crops": flops_crops},
        "xla_flop_ideal": 1.0 / (1.0 + flops_crops / flops_plain),
        "ours_over_plain_vs_ideal": (t_plain / t_ours) / ideal,
        "ours_speedup_over_naive": t_naive / t_ours,
        "boxmask_part_speedup_over_naive": (t_naive - t_plain) / (t_ours - t_plain),
        "cpu_time_ours_over_plain": best_cpu["plain"] / best_cpu["ours"],
        "cpu_time_ours_over_plain_vs_ideal": best_cpu["plain"] / best_cpu["ours"] / ideal,
        "cpu_time_boxmask_part_speedup_over_naive": (best_cpu["naive"] - best_cpu["plain"])
        / (best_cpu["ours"] - best_cpu["plain"]),
        "cpu_time_ours_speedup_over_naive": best_cpu["naive"] / best_cpu["ours"],
        "max_abs_score_diff_vs_naive": float(
            np.max(np.abs(np.asarray(scores["score"]) - naive_scores))
        ),
    }
    print(json.dumps(results, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
