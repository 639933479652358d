"""One synthetic street scene, drawn with exact labels: :func:`render_scene`.

A pure NumPy function of its seed: it lays out the street
(:mod:`mtal_jax.data.synthetic_street`), optionally its furniture, places and draws the
objects (:mod:`mtal_jax.data.synthetic_objects`), measures what stays visible of each,
then lights the scene.

Labels are exact: the segmentation is written with the same masks that paint the pixels
(lane markings count as road, shadows and lights keep the class beneath), and each box is
the tight box, in pixel edges, of the instance's *visible* pixels. An instance gets no box
when fewer than ``min_visible_px`` pixels, or less than ``min_visible_fraction`` of its
in-image area, remain visible; its visible pixels keep their class in the segmentation
(like unannotated, heavily occluded objects in real data).

Appearance noise: per-pixel noise (stronger on vegetation), brightness and contrast
gradients, building shadows across the road and a shadow under every object. A fraction
``hard_fraction`` of scenes is in a rare hard condition, uniformly one of ``night`` (dark,
lit windows, head- and tail-light glows), ``fog`` (contrast falls towards grey with depth)
or ``glare`` (a saturated sun blob with bloom and a veil).

Class and condition names are those of :mod:`mtal_jax.data.synthetic_classes`; the dataset
built from these scenes is ``synthetic_driving`` (``mtal_jax.data.synthetic``,
docs/design.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtal_jax.data import synthetic_classes, synthetic_objects, synthetic_street

_NOISE_STD = np.array([2, 6, 5, 5, 14, 3, 3, 3, 3, 3, 3, 3, 5], np.float32)  # per seg class


def render_scene(
    rng: np.random.Generator | int | Sequence[int],
    height: int = 128,
    width: int = 256,
    *,
    max_objects: int = 12,
    hard_fraction: float = 0.05,
    class_probs: Sequence[float] = synthetic_classes.DEFAULT_CLASS_PROBS,
    min_visible_px: int = 8,
    min_visible_fraction: float = 0.2,
    street_furniture: bool = False,
) -> dict:
    """Draws one street scene with exact boxes and segmentation.

    Args:
      rng: a NumPy ``Generator`` (consumed) or a seed for ``np.random.default_rng``;
        the same seed gives the same bytes.
      height: H, image rows (>= 16).
      width: W, image columns (>= 16).
      max_objects: most objects placed in a scene (Binomial(max_objects, 0.6) are drawn).
      hard_fraction: probability that the scene is ``night``, ``fog`` or ``glare``.
      class_probs: [C_det] relative frequency of each class in ``DET_CLASSES``.
      min_visible_px: instances with fewer visible pixels get no box.
      min_visible_fraction: instances with a smaller visible share of their in-image area
        get no box.
      street_furniture: also draw lamp posts and fences (segmentation classes
        ``FURNITURE_CLASSES``, ids after ``SEG_CLASSES``; no boxes). False draws exactly
        the scenes of the variant without them (the random stream is not touched).

    Returns:
      ``image`` [H, W, 3] uint8 RGB; ``segmentation`` [H, W] uint8 ids into ``SEG_CLASSES``
      (+ ``FURNITURE_CLASSES`` with ``street_furniture``);
      ``boxes`` [M, 4] float32 xyxy in pixel edges (x2 > x1, y2 > y1, inside the image);
      ``box_labels`` [M] int64 ids into ``DET_CLASSES``; ``condition`` one of ``CONDITIONS``.
    """
    probs = np.asarray(class_probs, np.float64)
    num_classes = len(synthetic_classes.DET_CLASSES)
    if probs.shape != (num_classes,) or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"class_probs must be {num_classes} non-negative weights")
    if height < 16 or width < 16 or max_objects < 0 or not 0.0 <= hard_fraction <= 1.0:
        raise ValueError(f"bad {height=}, {width=}, {max_objects=} or {hard_fraction=}")
    rng = np.random.default_rng(rng)
    hard = rng.random() < hard_fraction
    condition = synthetic_classes.CONDITIONS[1 + rng.integers(3)] if hard else "day"
    scene = synthetic_street.sample_layout(rng, height, width)
    image, seg, invd, lit = synthetic_street.draw_stuff(rng, scene, condition == "night")
    if street_furniture:
        synthetic_street.draw_furniture(rng, scene, image, seg, invd)
    inst = np.zeros((height, width), np.int16)  # 0 = stuff, k + 1 = object k
    objects = synthetic_objects.sample_objects(
        rng, scene, rng.binomial(max_objects, 0.6), probs / probs.sum()
    )
    for k, obj in enumerate(objects):  # far to near: nearer objects overwrite farther ones
        obj["area"] = synthetic_objects.draw_object(rng, obj, k + 1, image, seg, inst, invd)
    boxes, labels = [], []
    for k, obj in enumerate(objects):
        i0, i1, j0, j1 = obj["window"]
        rows, cols = np.nonzero(inst[i0:i1, j0:j1] == k + 1)
        visible = rows.size >= max(min_visible_px, 1)
        if visible and rows.size >= min_visible_fraction * obj["area"]:
            i_min, i_max, j_min, j_max = rows.min(), rows.max(), cols.min(), cols.max()
            boxes.append([j0 + j_min, i0 + i_min, j0 + j_max + 1, i0 + i_max + 1])
            labels.append(obj["cls"])
    image = _light(rng, scene, condition, image, seg, inst, invd, lit, objects)
    return {
        "image": image,
        "segmentation": seg,
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "box_labels": np.asarray(labels, np.int64),
        "condition": condition,
    }


def _rgb(values) -> np.ndarray:
    """[3, 1, 1] float32 colour, broadcastable against [3, H, W] images."""
    return np.asarray(values, np.float32).reshape(3, 1, 1)


def _glow(image, cx, cy, radius, rgb, strength) -> None:
    """Adds a Gaussian light blob to image [3, H, W] in place (labels unchanged)."""
    _, H, W = image.shape
    i0, i1 = max(int(cy - 3 * radius), 0), min(int(cy + 3 * radius) + 1, H)
    j0, j1 = max(int(cx - 3 * radius), 0), min(int(cx + 3 * radius) + 1, W)
    if i0 < i1 and j0 < j1:
        gy = np.exp(-(((np.arange(i0, i1, dtype=np.float32) + 0.5 - cy) / radius) ** 2) / 2)
        gx = np.exp(-(((np.arange(j0, j1, dtype=np.float32) + 0.5 - cx) / radius) ** 2) / 2)
        image[:, i0:i1, j0:j1] += (strength * gy[:, None] * gx[None, :]) * _rgb(rgb)


def _light(rng, sc, condition, image, seg, inst, invd, lit, objects) -> np.ndarray:
    """Applies illumination, the hard condition and sensor noise; returns [H, W, 3] uint8."""
    H, W = seg.shape
    yy = (np.arange(H, dtype=np.float32) / H - 0.5)[:, None]
    xx = (np.arange(W, dtype=np.float32) / W - 0.5)[None, :]
    contrast = rng.uniform(0.8, 1.15)
    gain = (
        rng.uniform(0.8, 1.15)
        * contrast
        * (1 + rng.uniform(-0.3, 0.3) * xx + rng.uniform(-0.3, 0.3) * yy)
    )  # [H, W] brightness gradient
    image = image * gain + (1 - contrast) * 110.0
    noise_scale = 1.0
    if condition == "night":
        image *= rng.uniform(0.15, 0.3) * _rgb([0.8, 0.85, 1.2])
        image += lit * (_rgb([250, 215, 120]) * rng.uniform(0.6, 0.9) - image)
        for obj in objects:
            for cu, cv, rgb in obj["lamps"]:
                cu = 1 - cu if obj["mirror"] else cu
                cx, cy = obj["x0"] + cu * obj["w"], obj["y0"] + cv * obj["h"]
                i, j = int(cy), int(cx)
                if 0 <= i < H and 0 <= j < W and inst[i, j] == obj["k"]:  # lamp visible
                    r = max(0.8, 0.05 * obj["d"])
                    _glow(image, cx, cy, r, rgb, 1.0)
                    _glow(image, cx, cy, 3 * r, rgb, 0.25)
        noise_scale = 0.5
    elif condition == "fog":
        beta = 1.0 / rng.uniform(8.0, 25.0)  # 1 / visibility in camera heights
        trans = np.exp(-beta * sc["f"] / np.maximum(invd, 1e-3))  # [H, W]
        fog_rgb = _rgb([200, 202, 205]) * rng.uniform(0.85, 1.05)
        image = fog_rgb + (image - fog_rgb) * trans
        noise_scale = 0.3 + 0.7 * trans  # fog also hides texture
    elif condition == "glare":
        cx, cy = rng.uniform(0.1, 0.9) * W, rng.uniform(0.0, 1.1) * sc["y_h"]
        radius = rng.uniform(0.06, 0.15) * W
        image = image * 0.75 + 50.0  # veil: lower contrast
        _glow(image, cx, cy, radius, (255, 245, 210), 2.5)  # saturated core
        _glow(image, cx, cy, 4 * radius, (255, 230, 180), 0.5)  # bloom
        streak = np.exp(-(((np.arange(H) + 0.5 - cy) / (0.02 * H + 1)) ** 2))[:, None]
        image += 120 * streak * np.exp(-np.abs(np.arange(W) + 0.5 - cx) / (0.4 * W))[None, :]
    # Sensor noise: triangular (sum of two uniform bytes), std scaled per class.
    u8 = np.frombuffer(rng.bytes(2 * H * W), np.uint8).reshape(2, H, W)
    noise = (u8[0] + u8[1].astype(np.float32) - 255.0) * np.float32(1 / 104.5)  # std 1
    image += noise * (np.take(_NOISE_STD, seg) * noise_scale)
    image += rng.normal(0, 1.5, (3, 1, 1)).astype(np.float32)  # colour cast
    return np.clip(image + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()
