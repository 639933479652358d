"""Small shared test helpers: in-memory examples, host batches and the tiny test model.

Nothing here compiles or runs JAX at import time; test modules build what they need in
their own (module- or session-scoped) pytest fixtures.

Examples follow the common format of ``mtal_jax/data/features.py`` (image [H, W, 3]
uint8, segmentation [H, W, 1] uint8, boxes [M, 4] float32 xyxy pixels, box_labels [M]
int64, image_id bytes), so a plain list of them is a random-access data source.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from mtal_jax import losses, structs
from mtal_jax.data import pipeline
from mtal_jax.models import multitask

try:  # the synthetic street-scene renderer, when present
    from mtal_jax.data import synthetic_scene
except ImportError:  # pragma: no cover - fallback below
    synthetic_scene = None

IMAGE_HW = (64, 64)
NUM_DET_CLASSES = 6  # synthetic_driving: car, truck, bus, pedestrian, cyclist, traffic_sign
NUM_SEG_CLASSES = 11  # 5 stuff classes + the 6 object classes
MAX_BOXES = 8
SPEC = pipeline.Spec(
    image_hw=IMAGE_HW,
    max_boxes=MAX_BOXES,
    num_det_classes=NUM_DET_CLASSES,
    num_seg_classes=NUM_SEG_CLASSES,
    name="fake",
)
LOSS_WEIGHTS = {"det_heatmap": 1.0, "det_size": 0.1, "det_offset": 1.0, "seg": 1.0}


def make_model(**overrides) -> multitask.Model:
    """The test network: "test" backbone (2 stages), 8-channel neck and heads."""
    kwargs = {
        "num_det_classes": NUM_DET_CLASSES,
        "num_seg_classes": NUM_SEG_CLASSES,
        "backbone": "test",
        "neck_channels": 8,
        "head_channels": 8,
    }
    kwargs.update(overrides)
    return multitask.Model(**kwargs)


def make_example(
    *,
    hw: tuple[int, int] = IMAGE_HW,
    boxes: Sequence[Sequence[float]] = (),
    labels: Sequence[int] = (),
    seg: np.ndarray | None = None,
    image_id: bytes = b"ex",
    seed: int = 0,
) -> dict:
    """A hand-made example: random image, given boxes, mask ``seg`` (default: all class 0)."""
    rng = np.random.default_rng(seed)
    h, w = hw
    if seg is None:
        seg = np.zeros((h, w), np.uint8)
    return {
        "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "segmentation": np.asarray(seg, np.uint8).reshape(h, w, 1),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "box_labels": np.asarray(labels, np.int64).reshape(-1),
        "image_id": image_id,
    }


def scene_examples(n: int, *, seed: int = 0, hw: tuple[int, int] = IMAGE_HW) -> list[dict]:
    """``n`` realistic examples (synthetic street scenes when available), deterministic in seed."""
    out = []
    for i in range(n):
        if synthetic_scene is not None:
            scene = synthetic_scene.render_scene([seed, i], *hw)
        else:  # pragma: no cover
            scene = _rectangles_scene(np.random.default_rng([seed, i]), hw)
        out.append(
            {
                "image": scene["image"],
                "segmentation": np.asarray(scene["segmentation"], np.uint8).reshape(*hw, 1),
                "boxes": np.asarray(scene["boxes"], np.float32).reshape(-1, 4),
                "box_labels": np.asarray(scene["box_labels"], np.int64),
                "image_id": f"scene_{seed}_{i}".encode(),
            }
        )
    return out


def _rectangles_scene(rng: np.random.Generator, hw: tuple[int, int]) -> dict:
    """Fallback scene: two stuff bands and 1-3 coloured rectangles (objects) with exact labels."""
    h, w = hw
    seg = np.zeros((h, w), np.uint8)
    seg[h // 2 :] = 2  # "road" below the horizon
    image = rng.integers(0, 40, (h, w, 3), dtype=np.uint8) + 100
    boxes, labels = [], []
    for _ in range(rng.integers(1, 4)):
        x1, y1 = rng.integers(0, w - 8), rng.integers(0, h - 8)
        x2, y2 = x1 + rng.integers(4, w // 3), y1 + rng.integers(4, h // 3)
        x2, y2 = min(x2, w), min(y2, h)
        label = int(rng.integers(NUM_DET_CLASSES))
        seg[y1:y2, x1:x2] = 5 + label
        image[y1:y2, x1:x2] = rng.integers(0, 256, 3, dtype=np.uint8)
        boxes.append([x1, y1, x2, y2])
        labels.append(label)
    return {"image": image, "segmentation": seg, "boxes": boxes, "box_labels": labels}


def host_batch(examples: Sequence[dict], spec: pipeline.Spec = SPEC, *, flip: bool = False) -> dict:
    """Preprocesses and stacks examples into a host batch (dict of numpy arrays, index = position)."""
    items = [pipeline.preprocess(e, spec, i, flip=flip) for i, e in enumerate(examples)]
    return {k: np.stack([it[k] for it in items]) for k in items[0]}


def to_batch(host: dict) -> structs.Batch:
    """Host dict -> ``structs.Batch`` (drops the pipeline's bookkeeping keys)."""
    return structs.Batch(**{f: host[f] for f in structs.Batch.__dataclass_fields__})


def _loss_and_grads(outputs: structs.Outputs, batch: structs.Batch):
    def total(o):
        per_example = losses.per_example_losses(o, batch)
        loss, means = losses.weighted_total(per_example, LOSS_WEIGHTS, batch.valid)
        return loss, (per_example, means)

    (loss, (per_example, means)), grads = jax.value_and_grad(total, has_aux=True)(outputs)
    return loss, per_example, means, grads


loss_and_grads = jax.jit(_loss_and_grads)
"""(outputs, batch) -> (total loss, per-example terms, batch means, d total / d outputs).

The training objective of ``train.step`` without the model; jitted once per batch shape.
"""


def random_outputs(b: int, *, seed: int = 0, hw: tuple[int, int] = IMAGE_HW) -> structs.Outputs:
    """Model-free ``structs.Outputs`` of plausible scale for a batch of ``b`` images of size ``hw``."""
    rng = np.random.default_rng(seed)
    hh, ww = hw[0] // multitask.STRIDE, hw[1] // multitask.STRIDE
    normal = lambda *shape: rng.normal(size=shape).astype(np.float32)
    return structs.Outputs(
        heatmap_logits=normal(b, hh, ww, NUM_DET_CLASSES) - 2.0,
        box_size=np.log1p(np.exp(normal(b, hh, ww, 2))),
        box_offset=normal(b, hh, ww, 2),
        seg_logits=normal(b, hh, ww, NUM_SEG_CLASSES),
        embedding=np.zeros((b, 4), np.float32),
    )


def train_tiny_checkpoint(tmp_path_factory):
    """A 2-step checkpoint of ``configs/tiny.py`` (for select.py and export tests).

    Returns:
      (config, run_dir, setup).
    """
    from configs import tiny
    from mtal_jax.al import experiment
    from mtal_jax.train import loop

    config = tiny.get_config()
    config.data.data_dir = str(tmp_path_factory.mktemp("tfds"))
    setup = experiment.build_setup(config)
    run_dir = str(tmp_path_factory.mktemp("run"))
    src = setup.dataset.sources
    loop.train(
        setup.model, experiment.train_config(config, num_steps=2), workdir=run_dir, spec=setup.spec,
        train_source=src["train"], train_indices=np.arange(8), eval_source=src["test"],
        eval_indices=setup.eval_indices, mesh=setup.mesh, progress=False,
    )  # fmt: skip
    return config, run_dir, setup
