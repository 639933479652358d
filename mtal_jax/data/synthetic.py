"""The embedded default dataset ``synthetic_driving``: procedural street scenes (docs/design.md §5).

No download: every example is drawn by :func:`render_scene`, a pure NumPy function, and the
TFDS builder :class:`SyntheticDriving` stores the drawings in the common example format of
``mtal_jax.data.features`` (array_record, no TensorFlow).

Scene model. A pinhole camera one unit above a flat ground (1 unit = camera height = 1.5 m)
looks along the road. A ground point at lateral position X and inverse depth ``d`` (pixels
between its image row and the horizon row ``y_h``) projects to ``x = x_v + X * d``,
``y = y_h + d``, and an object of world size (w, h) standing there covers ``w * d`` by
``h * d`` pixels: near objects are large, far ones small, everything converges to the
vanishing point ``(x_v, y_h)``. The road trapezoid, sidewalks, building facades (with
perspective-correct windows) and tree rows follow the same geometry. Objects are drawn far
to near, so nearer ones occlude farther ones, each object as a few flat parts (car body,
windows and wheels; a truck's cargo box; a bus's window band; ...), seen from the rear or
from the side, with per-instance colours.

Labels are exact: the segmentation is written with the same masks that paint the pixels
(lane markings count as road, shadows and lights keep the class beneath), and each box is
the tight box, in pixel edges, of the instance's *visible* pixels. An instance gets no box
when fewer than ``min_visible_px`` pixels, or less than ``min_visible_fraction`` of its
in-image area, remain visible; its visible pixels keep their class in the segmentation
(like unannotated, heavily occluded objects in real data).

Street furniture (``street_furniture=True``, off by default; for sim-to-real pretraining
towards real road scenes, ``mtal_jax.sim2real --street_furniture``): lamp posts on both
sidewalks and fences along the roadside, two more segmentation classes
(``FURNITURE_CLASSES``, ids after ``SEG_CLASSES``) without boxes. Thin classes such as
CamVid's pole and fence are the ones a network pretrained without them segments worst.

Appearance noise: per-pixel noise (stronger on vegetation), brightness and contrast
gradients, building shadows across the road and a shadow under every object. A fraction
``hard_fraction`` of scenes is in a rare hard condition, uniformly one of ``night`` (dark,
lit windows, head- and tail-light glows), ``fog`` (contrast falls towards grey with depth)
or ``glare`` (a saturated sun blob with bloom and a veil); the condition is the last
``_``-separated field of ``image_id`` (``"train_000123_night"``).

Determinism: example ``i`` of split ``s`` is ``render_scene([seed, SPLITS.index(s), i], ...)``
and depends on nothing else (same NumPy version and platform -> same bytes).

Speed (``python bench/synthetic_generation.py --prepare``, 2-vCPU project VM): 1000 scenes at
128x256 render in about 3.4 s (3.4 ms each); building the default dataset (800 + 200
examples, PNG encoding and array_record writing included) takes about 7.6 s and 52 MiB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from mtal_jax.data import cache, features

__all__ = [
    "CONDITIONS",
    "DEFAULT_CLASS_PROBS",
    "DET_CLASSES",
    "DET_TO_SEG",
    "FURNITURE_CLASSES",
    "SEG_CLASSES",
    "SPLITS",
    "STUFF_CLASSES",
    "SyntheticDriving",
    "SyntheticDrivingConfig",
    "make_config",
    "prepare",
    "render_scene",
]

STUFF_CLASSES = ("sky", "building", "road", "sidewalk", "vegetation")
DET_CLASSES = ("car", "truck", "bus", "pedestrian", "cyclist", "traffic_sign")
SEG_CLASSES = STUFF_CLASSES + DET_CLASSES
DET_TO_SEG = tuple(range(len(STUFF_CLASSES), len(SEG_CLASSES)))
# Segmentation classes of the ``street_furniture`` variant, appended so that the others keep
# their ids: lamp posts on the sidewalks and fences along the roadside.
FURNITURE_CLASSES = ("pole", "fence")
DEFAULT_CLASS_PROBS = (0.50, 0.08, 0.04, 0.20, 0.06, 0.12)  # long tail, order of DET_CLASSES
CONDITIONS = ("day", "night", "fog", "glare")
SPLITS = ("train", "test")

_SKY, _BUILDING, _ROAD, _SIDEWALK, _VEGETATION = range(5)  # sky = 0 is the seg default
_CAR, _TRUCK, _BUS, _PEDESTRIAN, _CYCLIST, _SIGN = range(6)
_POLE, _FENCE = len(SEG_CLASSES), len(SEG_CLASSES) + 1  # seg ids (street_furniture only)
_LANE = 2.33  # lane width (3.5 m) in camera heights
# World (width, height) in camera heights of each (class, view); "side" = crossing traffic.
_SIZES = {
    (_CAR, "rear"): (1.2, 1.0),
    (_CAR, "side"): (2.9, 1.0),
    (_TRUCK, "rear"): (1.67, 2.3),
    (_TRUCK, "side"): (5.3, 2.3),
    (_BUS, "rear"): (1.7, 2.1),
    (_BUS, "side"): (8.0, 2.1),
    (_PEDESTRIAN, "rear"): (0.36, 1.15),  # front or back: standing on a sidewalk
    (_PEDESTRIAN, "side"): (0.5, 1.15),  # walking across the road
    (_CYCLIST, "rear"): (0.45, 1.2),
    (_CYCLIST, "side"): (1.2, 1.2),
    (_SIGN, "rear"): (0.47, 1.93),
}
_SIDE_VIEW_PROB = (0.2, 0.35, 0.35, 0.35, 0.7, 0.0)  # per class
_NOISE_STD = np.array([2, 6, 5, 5, 14, 3, 3, 3, 3, 3, 3, 3, 5], np.float32)  # per seg class
_FACADE_RGB = [(185, 165, 135), (150, 75, 55), (125, 125, 130), (215, 210, 200), (105, 95, 85)]
_CAR_RGB = [(205, 205, 210), (30, 30, 35), (240, 240, 240), (165, 25, 30), (30, 55, 140),
            (95, 100, 105), (25, 85, 45), (120, 80, 40)]  # fmt: skip
_CARGO_RGB = [(235, 235, 230), (190, 190, 195), (220, 120, 30), (40, 80, 160), (150, 30, 30)]
_BUS_RGB = [(230, 180, 20), (190, 30, 30), (30, 80, 170), (235, 235, 235), (40, 140, 70)]
_SKIN_RGB = [(230, 190, 160), (190, 140, 100), (120, 80, 55)]
_GLASS = (45, 55, 70)
_FIXED_RGB = {
    "glass": _GLASS, "tyre": (22, 22, 24), "hub": (150, 150, 150), "dark": (45, 45, 45),
    "red": (200, 20, 20), "white": (240, 240, 240), "head": (255, 245, 215),
    "led": (255, 150, 0), "pole": (130, 130, 135), "blue": (20, 70, 180),
}  # fmt: skip


def _r(v0, v1, u0, u1, rgb):
    return ("t", v0, v1, u0, u1, u0, u1, rgb)  # a rectangle


def _t(v0, v1, top_u0, top_u1, bottom_u0, bottom_u1, rgb):
    return ("t", v0, v1, top_u0, top_u1, bottom_u0, bottom_u1, rgb)


def _e(cu, cv, rx, ry, rgb, inner=0.0):
    return ("e", cu, cv, rx, ry, inner, rgb)


def _wheel(cu, cv, r):
    return (_e(cu, cv, r, r, "tyre"), _e(cu, cv, 0.45 * r, 0.45 * r, "hub"))


# Object shapes in box coordinates (u right, v down, both in [0, 1]) of a rear view or of a
# side view facing right (mirrored at random). A trapezoid (rectangle, triangle) spans rows
# v0..v1 between the given u bounds at its top and bottom; an ellipse has radii rx, ry in
# box *heights* (rx == ry is a circle whatever the aspect) and is a ring when inner > 0; a
# window band holds n windows separated by gaps. Later shapes paint over earlier ones, and
# colours are roles that `_colours` resolves per instance.
_SHAPES = {
    (_CAR, "rear"): (
        _t(.05, .48, .2, .8, .08, .92, "body"), _t(.11, .44, .26, .74, .15, .85, "glass"),
        _r(.45, .9, 0, 1, "body2"), _r(.85, 1, .05, .22, "tyre"), _r(.85, 1, .78, .95, "tyre"),
        _r(.52, .62, .03, .2, "light"), _r(.52, .62, .8, .97, "light"),
        _r(.66, .75, .4, .6, "white"),
    ),
    (_CAR, "side"): (
        _t(.05, .45, .32, .7, .15, .86, "body"), _t(.12, .42, .36, .66, .24, .8, "glass"),
        _t(.12, .42, .5, .53, .52, .55, "body"), _t(.4, .82, .02, .98, 0, 1, "body2"),
        _r(.5, .6, .96, 1, "head"), _r(.5, .6, 0, .03, "red"), *_wheel(.2, .8, .2),
        *_wheel(.8, .8, .2),
    ),
    (_TRUCK, "rear"): (
        _r(0, .86, 0, 1, "body"), _r(.04, .84, .49, .51, "trim"), _r(.4, .44, .3, .7, "dark"),
        _r(.86, .91, .03, .97, "dark"), _r(.88, 1, .06, .3, "tyre"), _r(.88, 1, .7, .94, "tyre"),
        _r(.8, .85, .02, .12, "light"), _r(.8, .85, .88, .98, "light"),
    ),
    (_TRUCK, "side"): (
        _r(0, .8, 0, .72, "body"), _t(.28, .84, .74, .98, .74, 1, "cab"),
        _t(.34, .55, .8, .95, .8, .97, "glass"), _r(.78, .86, 0, 1, "dark"),
        _r(.68, .75, .98, 1, "head"), *_wheel(.1, .87, .13), *_wheel(.22, .87, .13),
        *_wheel(.86, .87, .13),
    ),
    (_BUS, "rear"): (
        _t(0, .93, .02, .98, 0, 1, "body"), _r(.07, .42, .1, .9, "glass"),
        _r(.01, .06, .25, .75, "led"), _r(.55, .6, 0, 1, "trim"), _r(.86, .93, 0, 1, "dark"),
        _r(.9, 1, .08, .25, "tyre"), _r(.9, 1, .75, .92, "tyre"),
        _r(.7, .78, .03, .13, "light"), _r(.7, .78, .87, .97, "light"),
    ),
    (_BUS, "side"): (
        _r(0, .9, 0, 1, "body"), ("w", .14, .5, .03, .85, 7, .12, "glass"),
        _r(.1, .55, .965, 1, "glass"), _r(.14, .88, .87, .95, "glass"), _r(.6, .65, 0, 1, "trim"),
        *_wheel(.15, .88, .12), *_wheel(.8, .88, .12),
    ),
    (_PEDESTRIAN, "rear"): (
        _e(.5, .07, .075, .07, "hair"), _e(.5, .095, .065, .065, "skin"),
        _t(.15, .55, .08, .92, .12, .88, "shirt"), _t(.52, .96, .27, .5, .27, .47, "pants"),
        _t(.52, .96, .5, .73, .53, .73, "pants"), _r(.95, 1, .25, .47, "dark"),
        _r(.95, 1, .53, .75, "dark"),
    ),
    (_PEDESTRIAN, "side"): (
        _e(.52, .07, .075, .07, "hair"), _e(.54, .095, .065, .065, "skin"),
        _t(.15, .55, .28, .72, .3, .7, "shirt"), _t(.52, .96, .4, .56, .1, .3, "pants"),
        _t(.52, .96, .44, .6, .7, .9, "pants"), _t(.18, .5, .45, .6, .55, .7, "shirt2"),
        _r(.95, 1, .06, .32, "dark"), _r(.95, 1, .7, .96, "dark"),
    ),
    (_CYCLIST, "rear"): (
        _r(.62, 1, .42, .58, "tyre"), _r(.4, .45, .05, .95, "dark"),
        _t(.12, .5, .15, .85, .1, .9, "shirt"), _t(.48, .82, .2, .45, .28, .42, "pants"),
        _t(.48, .82, .55, .8, .58, .72, "pants"), _e(.5, .08, .08, .08, "skin"),
        _e(.5, .06, .085, .06, "helmet"), _r(.58, .63, .43, .57, "red"),
    ),
    (_CYCLIST, "side"): (
        _e(.2, .78, .2, .2, "tyre", .75), _e(.8, .78, .2, .2, "tyre", .75),
        _r(.5, .56, .35, .72, "body"), _t(.5, .8, .66, .72, .45, .51, "body"),
        _t(.45, .8, .36, .41, .45, .5, "body"), _r(.76, .81, .2, .5, "body"),
        _t(.45, .8, .72, .76, .79, .83, "body"), _r(.4, .46, .68, .8, "dark"),
        _t(.4, .78, .3, .48, .42, .52, "pants"), _t(.12, .46, .45, .6, .3, .48, "shirt"),
        _t(.18, .44, .5, .58, .68, .75, "shirt2"), _e(.55, .08, .08, .08, "skin"),
        _e(.55, .06, .085, .06, "helmet"),
    ),
    (_SIGN, "rear"): (_r(.2, 1, .44, .56, "pole"),),
}  # fmt: skip
_SIGN_FACES = (
    (_e(.5, .12, .12, .12, "red"), _e(.5, .12, .085, .085, "white")),  # prohibitory
    (_e(.5, .12, .12, .12, "blue"), _r(.07, .17, .42, .58, "white")),  # mandatory
    (_t(0, .24, .5, .5, 0, 1, "red"), _t(.06, .21, .5, .5, .17, .83, "white")),  # warning
    (_r(0, .24, 0, 1, "blue"), _r(.07, .17, .18, .82, "white")),  # information
)  # fmt: skip
# Lamps (u, v, colour) that glow at night; "light" is a headlight for oncoming traffic.
_LAMPS = {
    (_CAR, "rear"): ((.11, .57, "light"), (.89, .57, "light")),
    (_CAR, "side"): ((.98, .55, "head"), (.02, .55, "red")),
    (_TRUCK, "rear"): ((.07, .83, "light"), (.93, .83, "light")),
    (_TRUCK, "side"): ((.99, .7, "head"), (.01, .75, "red")),
    (_BUS, "rear"): ((.08, .74, "light"), (.92, .74, "light")),
    (_BUS, "side"): ((.995, .78, "head"), (.005, .8, "red")),
    (_CYCLIST, "rear"): ((.5, .6, "red"),),
}  # fmt: skip


def render_scene(
    rng: np.random.Generator | int | Sequence[int],
    height: int = 128,
    width: int = 256,
    *,
    max_objects: int = 12,
    hard_fraction: float = 0.05,
    class_probs: Sequence[float] = DEFAULT_CLASS_PROBS,
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
    if probs.shape != (len(DET_CLASSES),) or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"class_probs must be {len(DET_CLASSES)} non-negative weights")
    if height < 16 or width < 16 or max_objects < 0 or not 0.0 <= hard_fraction <= 1.0:
        raise ValueError(f"bad {height=}, {width=}, {max_objects=} or {hard_fraction=}")
    rng = np.random.default_rng(rng)
    hard = rng.random() < hard_fraction
    condition = CONDITIONS[1 + rng.integers(3)] if hard else "day"
    scene = _layout(rng, height, width)
    image, seg, invd, lit = _draw_stuff(rng, scene, condition == "night")
    if street_furniture:
        _draw_furniture(rng, scene, image, seg, invd)
    inst = np.zeros((height, width), np.int16)  # 0 = stuff, k + 1 = object k
    objects = _sample_objects(rng, scene, rng.binomial(max_objects, 0.6), probs / probs.sum())
    for k, obj in enumerate(objects):  # far to near: nearer objects overwrite farther ones
        obj["area"] = _draw_object(rng, obj, k + 1, image, seg, inst, invd)
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


def _layout(rng: np.random.Generator, height: int, width: int) -> dict:
    """Samples the camera, road and roadside geometry of one scene."""
    sc = {"H": height, "W": width, "f": 2.0 * height}  # f: focal length in pixels
    sc["y_h"] = height * rng.uniform(0.36, 0.5)
    sc["x_v"] = width * rng.uniform(0.3, 0.7)
    sc["XL"], sc["XR"] = -rng.uniform(1.2, 4.5), rng.uniform(1.2, 4.5)  # road edges
    sc["SL"], sc["SR"] = rng.uniform(0.8, 2.5, 2)  # sidewalk widths
    # Roadside segments along depth Z (camera heights), per side: a building or a tree row.
    n = 200
    for side in "LR":
        urban = rng.random(n) < rng.uniform(0.1, 0.95)
        lengths = np.where(urban, rng.uniform(6, 20, n), rng.uniform(3, 12, n))
        sc["bounds" + side] = np.cumsum(lengths)
        sc["urban" + side] = urban
        sc["tall" + side] = np.where(urban, rng.uniform(3, 13, n), rng.uniform(1.6, 4.5, n))
        sc["rgb" + side] = np.where(
            urban[:, None],
            np.asarray(_FACADE_RGB, np.float32)[rng.integers(len(_FACADE_RGB), size=n)],
            np.array([45, 105, 40], np.float32),
        ) * rng.uniform(0.8, 1.15, (n, 1)).astype(np.float32)
        sc["win" + side] = rng.uniform(1.4, 2.6, n)  # window spacing along the street
    return sc


def _roadside_plane(sc: dict, xx: np.ndarray):
    """Where each column meets the roadside plane (the vertical plane of facades and tree
    rows at the sidewalks' outer edges): its inverse depth ``dcol`` [1, W], depth ``Zc``
    [1, W] and roadside segment ``idx`` [1, W] (left segments first, then right ones);
    ``xx`` [1, W] are the column centres."""
    f32 = np.float32
    left = xx < sc["x_v"]  # [1, W]
    outer = np.where(left, f32(sc["XL"] - sc["SL"]), f32(sc["XR"] + sc["SR"]))
    dcol = np.maximum((xx - sc["x_v"]) / outer, f32(1e-3))
    Zc = sc["f"] / dcol
    nseg = len(sc["boundsL"])
    idx = np.where(
        left,
        np.minimum(np.searchsorted(sc["boundsL"], Zc), nseg - 1),
        nseg + np.minimum(np.searchsorted(sc["boundsR"], Zc), nseg - 1),
    )
    return dcol, Zc, idx


def _draw_stuff(rng: np.random.Generator, sc: dict, night: bool):
    """Paints sky, road, sidewalks and roadside.

    Returns image [3, H, W] float32 (channel-first: masks broadcast over the leading axis,
    which NumPy vectorises well), seg [H, W] uint8, inverse depth [H, W] float32 (0 = sky)
    and the lit windows [H, W] bool (used at night).
    """
    H, W, f, y_h, x_v = sc["H"], sc["W"], sc["f"], sc["y_h"], sc["x_v"]
    XL, XR, SL, SR = sc["XL"], sc["XR"], sc["SL"], sc["SR"]
    f32 = np.float32
    yy = (np.arange(H, dtype=f32) + 0.5)[:, None]  # [H, 1]
    xx = (np.arange(W, dtype=f32) + 0.5)[None, :]  # [1, W]
    ground = yy > y_h + 0.3  # [H, 1]
    dg = np.maximum(yy - y_h, f32(0.3))  # [H, 1] inverse depth of the ground row
    Xg = (xx - x_v) / dg  # [H, W] lateral world position of ground pixels
    Zg = f / dg  # [H, 1] depth of the ground row
    road = ground & (Xg >= XL) & (Xg <= XR)
    walk = ground & ~road & (Xg >= XL - SL) & (Xg <= XR + SR)
    # Facades / tree rows are vertical planes at the sidewalks' outer edges.
    dcol, Zc, idx = _roadside_plane(sc, xx)
    urban = np.concatenate([sc["urbanL"], sc["urbanR"]])[idx]
    tall = np.concatenate([sc["tallL"], sc["tallR"]])[idx].astype(f32)
    tall = tall + ~urban * 0.6 * np.abs(np.sin(Zc * 1.3))  # scalloped tree crowns
    v = (y_h + dcol - yy) / dcol  # [H, W] height above ground on the roadside plane
    side = (v <= tall) & ~road & ~walk
    sky = ~(road | walk | side)
    seg = road * np.uint8(_ROAD) + walk * np.uint8(_SIDEWALK)
    seg += side * np.where(urban, _BUILDING, _VEGETATION).astype(np.uint8)
    invd = ground * dg + side * (dcol - ground * dg)  # [H, W]
    # Colour = palette[material] * brightness: one gather instead of many [3, H, W] ops.
    t = np.clip(yy / max(y_h, 1.0), 0, 1)  # [H, 1]
    if night:
        sky_top, sky_low = np.array([8, 10, 30], f32), np.array([30, 30, 55], f32)
    else:
        grey = rng.uniform(0, 0.8)
        blue_top, blue_low = np.array([60, 120, 210], f32), np.array([175, 205, 240], f32)
        sky_top = blue_top + grey * (np.array([170, 175, 185], f32) - blue_top)  # overcast
        sky_low = blue_low + grey * (np.array([205, 208, 212], f32) - blue_low)
    k_road, k_walk, k_glass, k_side = H, H + 2, H + 3, H + 4  # k_road + 1: lane marking
    palette = (
        np.concatenate(
            [
                sky_top + (sky_low - sky_top) * t,  # [H, 3] one sky colour per row
                [np.array([90, 90, 95]) * rng.uniform(0.75, 1.25), (225, 225, 215)],
                [np.array([165, 158, 145]) * rng.uniform(0.8, 1.15), _GLASS],
                sc["rgbL"],
                sc["rgbR"],
            ]
        )
        .astype(f32)
        .T.copy()
    )  # [3, K]
    dash = _frac(Zg / 6.0) < 0.45  # [H, 1]
    lines = (np.abs(Xg - (XL + 0.15)) < 0.05) | (np.abs(Xg - (XR - 0.15)) < 0.05)  # edges
    for x_line in np.arange(XL + _LANE, XR - 0.5, _LANE):  # dashed lane separators
        lines |= (np.abs(Xg - x_line) < 0.06) & dash
    win = np.concatenate([sc["winL"], sc["winR"]])[idx].astype(f32)  # [1, W] window spacing
    wcol = urban & (_frac(Zc / win) > 0.3)  # [1, W] columns with windows
    windows = wcol & (_frac(v / 2.0) > 0.4) & (v > 1.7) & (v < tall - 0.5)
    i16 = np.int16
    col_k = (k_side + idx).astype(i16)  # [1, W]
    material = sky * np.arange(H, dtype=i16)[:, None] + road * (lines + i16(k_road))
    material += walk * i16(k_walk) + side * (col_k + windows * (i16(k_glass) - col_k))
    tiles = _frac(Zg / 1.2) < 0.08  # [H, 1]
    curb = (np.abs(Xg - XL) < 0.12) | (np.abs(Xg - XR) < 0.12)
    walk_shade = 0.15 * (curb.astype(f32) - (tiles & ~curb))  # bool * float would be f64
    side_shade = urban * (-0.3 * (v < 1.5).astype(f32)) + ~urban * (0.1 * np.minimum(v, 3.0) - 0.25)
    bright = 1 + walk * walk_shade + (side & ~windows) * side_shade  # [H, W]
    lit = np.zeros((H, W), bool)
    if night:  # a fixed pseudo-random 40 % of the window cells are lit
        cell = np.floor(Zc / win).astype(np.int64) * 7919 + np.floor(v / 2).astype(np.int64) * 131
        lit = windows & (cell % 10 < 4)
    # A building row on one side casts a banded shadow over the ground.
    reach = rng.uniform(0.0, 1.0) * (XR - XL)
    band = _frac(Zg / rng.uniform(10, 30) + rng.random()) < rng.uniform(0.3, 0.8)  # [H, 1]
    across = Xg < XL - SL + reach if rng.random() < 0.5 else Xg > XR + SR - reach
    bright *= 1 - 0.4 * ((road | walk) & band & across).astype(f32)
    image = np.take(palette, material, axis=1) * bright  # [3, H, W]
    return image.astype(f32), seg, invd.astype(f32), lit


def _draw_furniture(rng: np.random.Generator, sc: dict, image, seg, invd) -> None:
    """Paints fences and lamp posts in place (image [3, H, W]; seg, invd [H, W]).

    Fences: on half of the roadside segments, the lowest 0.45-0.75 camera heights
    of the facade or tree row become a fence (slats and a rail, dark metal or wood). Lamp
    posts: on both sidewalks, near the curb, every 8-20 camera heights along the street,
    0.12 wide and 3-4.5 tall with an arm over the road; each covers only what lies behind
    it (its inverse depth is larger than the pixel's), and objects drawn later cover it.
    """
    H, W, f, y_h, x_v = sc["H"], sc["W"], sc["f"], sc["y_h"], sc["x_v"]
    XL, XR = sc["XL"], sc["XR"]
    f32 = np.float32
    yy = (np.arange(H, dtype=f32) + 0.5)[:, None]  # [H, 1]
    xx = (np.arange(W, dtype=f32) + 0.5)[None, :]  # [1, W]
    # Fences on the roadside plane (the one _draw_stuff paints facades and trees on).
    dcol, Zc, idx = _roadside_plane(sc, xx)
    n = len(sc["boundsL"])
    fenced = rng.random(2 * n) < 0.5
    fence_h = rng.uniform(0.45, 0.75, 2 * n).astype(f32)
    wood = rng.random(2 * n) < 0.4
    v = (y_h + dcol - yy) / dcol  # [H, W] height above ground on the plane
    plane = (seg == _BUILDING) | (seg == _VEGETATION)
    fence = plane & fenced[idx] & (v <= fence_h[idx]) & (v >= 0)
    slat = (_frac(Zc / 0.3) < 0.45) | (np.abs(v - 0.8 * fence_h[idx]) < 0.05)  # [H, W]
    metal, timber = np.array([60, 62, 66], f32), np.array([120, 85, 50], f32)
    colour = np.where(wood[idx][None], timber[:, None, None], metal[:, None, None])  # [3, 1, W]
    shade = np.where(slat, f32(1.0), f32(0.55))  # [H, W]
    image[:] = np.where(fence[None], colour * shade, image)
    seg[fence] = _FENCE
    # Lamp posts, far to near, each occluding only what is farther than itself.
    posts = []
    for X in (XL - 0.35, XR + 0.35):
        z = rng.uniform(2.0, 20.0)
        while z < 400.0:
            posts.append((z, X, rng.uniform(3.0, 4.5), rng.uniform(0.6, 1.4)))
            z += rng.uniform(8.0, 20.0)
    grey = rng.uniform(0.7, 1.2) * np.array([115, 118, 122], f32)
    for z, X, height, arm in sorted(posts, reverse=True):
        d = f / z  # inverse depth: pixels per camera height at this depth
        if 0.12 * d < 0.7:  # thinner than a pixel: not drawn (no one-pixel fringe of posts)
            continue
        x, base = x_v + X * d, y_h + d
        half = 0.06 * d
        j0, j1 = max(int(np.floor(x - half)), 0), min(int(np.ceil(x + half)), W)
        i0, i1 = max(int(np.floor(base - height * d)), 0), min(int(np.ceil(base)), H)
        if j0 < j1 and i0 < i1:
            _paint_post(image, seg, invd, i0, i1, j0, j1, d, grey)
        # The arm: towards the road, one post width thick, at the top.
        toward = 1.0 if X < 0 else -1.0
        a0, a1 = sorted((x, x + toward * arm * d))
        j0, j1 = max(int(np.floor(a0)), 0), min(int(np.ceil(a1)), W)
        top = base - height * d
        i0, i1 = max(int(np.floor(top)), 0), min(int(np.ceil(top + max(0.1 * d, 1.0))), H)
        if j0 < j1 and i0 < i1:
            _paint_post(image, seg, invd, i0, i1, j0, j1, d, grey)


def _paint_post(image, seg, invd, i0, i1, j0, j1, d, rgb) -> None:
    """Paints the rectangle [i0:i1, j0:j1] as pole where it lies behind inverse depth d."""
    behind = invd[i0:i1, j0:j1] < d
    image[:, i0:i1, j0:j1] = np.where(behind, rgb[:, None, None], image[:, i0:i1, j0:j1])
    seg[i0:i1, j0:j1][behind] = _POLE
    invd[i0:i1, j0:j1][behind] = d


def _rgb(values) -> np.ndarray:
    """[3, 1, 1] float32 colour, broadcastable against [3, H, W] images."""
    return np.asarray(values, np.float32).reshape(3, 1, 1)


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)  # np.mod is ~30x slower on float arrays


def _sample_objects(rng: np.random.Generator, sc: dict, n: int, probs: np.ndarray) -> list:
    """Samples n objects on the ground plane, returned far to near."""
    XL, XR, SL, SR = sc["XL"], sc["XR"], sc["SL"], sc["SR"]
    lanes = np.arange(XL + _LANE / 2, XR - 0.5, _LANE)
    objects = []
    for cls in rng.choice(len(DET_CLASSES), size=n, p=probs):
        view = "side" if rng.random() < _SIDE_VIEW_PROB[cls] else "rear"
        right = rng.random() < 0.5
        if cls in (_CAR, _TRUCK, _BUS) and view == "rear":
            X = (rng.choice(lanes) if lanes.size else 0.0) + rng.normal(0, 0.2)
        elif cls == _PEDESTRIAN and view == "rear":  # on a sidewalk, else crossing
            X = XR + rng.uniform(0.2, SR) if right else XL - rng.uniform(0.2, SL)
        elif cls == _CYCLIST and view == "rear":
            X = XR - rng.uniform(0.3, 1.0) if right else XL + rng.uniform(0.3, 1.0)
        elif cls == _SIGN:
            X = XR + rng.uniform(0.15, 0.6) if right else XL - rng.uniform(0.15, 0.6)
        else:
            X = rng.uniform(XL, XR)
        wu, hu = _SIZES[cls, view]
        wu, hu = wu * rng.uniform(0.9, 1.1), hu * rng.uniform(0.9, 1.1)
        d_min = max(6.0 / hu, 2.5 / wu, 1.0)  # at least 6 px tall and 2.5 px wide
        d_max = 1.15 * (sc["H"] - sc["y_h"])
        d = d_min * (d_max / d_min) ** rng.random() if d_max > d_min else d_max
        obj = {"cls": int(cls), "view": view, "d": d, "w": wu * d, "h": hu * d}
        obj["x0"], obj["y0"] = sc["x_v"] + X * d - obj["w"] / 2, sc["y_h"] + d - obj["h"]
        obj["oncoming"] = X < 0
        objects.append(obj)
    return sorted(objects, key=lambda o: o["d"])


def _colours(rng: np.random.Generator, obj: dict) -> dict:
    """Resolves the colour roles of `_SHAPES` for one instance (one draw from rng)."""
    x = rng.random(28)
    palettes = (
        {_TRUCK: _CARGO_RGB, _BUS: _BUS_RGB, _CYCLIST: _BUS_RGB}.get(obj["cls"], _CAR_RGB),
        _CAR_RGB, _SKIN_RGB, _CARGO_RGB,
    )  # fmt: skip
    base = np.array([pal[int(x[i] * len(pal))] for i, pal in enumerate(palettes)], np.float32)
    jittered = base * (0.85 + 0.3 * x[4:8, None]) + 20 * x[8:20].reshape(4, 3) - 10  # [4, 3]
    body, cab, skin, helmet = np.clip(jittered, 0, 255)
    shirt = 20 + 215 * x[20:23]
    return {
        **_FIXED_RGB,
        "body": body, "body2": 0.85 * body, "trim": 0.6 * body, "cab": cab, "skin": skin,
        "helmet": helmet, "shirt": shirt, "shirt2": 0.8 * shirt, "pants": 15 + 145 * x[23:26],
        "hair": np.full(3, 10 + 110 * x[26]),
        "light": _FIXED_RGB["head"] if obj["oncoming"] else _FIXED_RGB["red"],
    }  # fmt: skip


def _part_mask(shape: tuple, u: np.ndarray, v: np.ndarray, aspect: float) -> np.ndarray:
    """Pixels of one shape; u [1, w], v [h, 1] box coordinates of pixel centres."""
    if shape[0] == "e":
        _, cu, cv, rx, ry, inner, _ = shape
        r2 = ((u - cu) * (aspect / rx)) ** 2 + ((v - cv) / ry) ** 2
        return (r2 <= 1.0) & (r2 >= inner * inner)
    if shape[0] == "w":
        _, v0, v1, u0, u1, n, gap, _ = shape
        inside = (u >= u0) & (u <= u1) & (_frac((u - u0) * (n / (u1 - u0))) > gap)
        return inside & (v >= v0) & (v <= v1)
    _, v0, v1, tu0, tu1, bu0, bu1, _ = shape
    t = (v - v0) / (v1 - v0)  # [h, 1]
    return (v >= v0) & (v <= v1) & (u >= tu0 + (bu0 - tu0) * t) & (u <= tu1 + (bu1 - tu1) * t)


def _draw_object(rng, obj: dict, k: int, image, seg, inst, invd) -> int:
    """Paints object k (and its ground shadow) in place; returns its in-image area.

    ``image`` is [3, H, W] float32; ``seg``, ``inst`` and ``invd`` are [H, W].
    """
    H, W = seg.shape
    x0, y0, w, h = obj["x0"], obj["y0"], obj["w"], obj["h"]
    # Contact shadow: darken stuff pixels in an ellipse under the object.
    rx, ry, cx, cy = 0.6 * w, max(0.6, 0.06 * h + 0.04 * w), x0 + w / 2, y0 + h
    si0, si1 = max(int(cy - ry), 0), min(int(np.ceil(cy + ry)), H)
    sj0, sj1 = max(int(cx - rx), 0), min(int(np.ceil(cx + rx)), W)
    if si0 < si1 and sj0 < sj1:
        sv = ((np.arange(si0, si1, dtype=np.float32) + 0.5 - cy) / ry)[:, None]
        su = ((np.arange(sj0, sj1, dtype=np.float32) + 0.5 - cx) / rx)[None, :]
        under = (su * su + sv * sv <= 1.0) & (inst[si0:si1, sj0:sj1] == 0)
        image[:, si0:si1, sj0:sj1] *= 1 - 0.45 * under
    i0, i1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y0 + h)), H)
    j0, j1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x0 + w)), W)
    obj["window"], obj["k"] = (i0, max(i1, i0), j0, max(j1, j0)), k
    key = (obj["cls"], obj["view"])
    shapes = _SHAPES[key] + (_SIGN_FACES[rng.integers(4)] if obj["cls"] == _SIGN else ())
    colours = _colours(rng, obj)
    obj["lamps"] = [(u, v, colours[c]) for u, v, c in _LAMPS.get(key, ())]
    obj["mirror"] = obj["view"] == "side" and rng.random() < 0.5
    if i0 >= i1 or j0 >= j1:
        return 0
    v = ((np.arange(i0, i1, dtype=np.float32) + 0.5 - y0) / h)[:, None]  # [h, 1]
    u = ((np.arange(j0, j1, dtype=np.float32) + 0.5 - x0) / w)[None, :]  # [1, w]
    if obj["mirror"]:
        u = 1.0 - u
    pid = np.zeros((i1 - i0, j1 - j0), np.intp)
    for p, shape in enumerate(shapes):
        if shape[0] == "t" and shape[3:5] == shape[5:7]:  # rectangle: a slice, no mask
            _, v0, v1, u0, u1 = shape[:5]
            if obj["mirror"]:
                u0, u1 = 1.0 - u1, 1.0 - u0
            # Pixel centres (i + 0.5 - y0) / h in [v0, v1] and (j + 0.5 - x0) / w in [u0, u1].
            r0, r1 = math.ceil(v0 * h + y0 - 0.5) - i0, math.floor(v1 * h + y0 - 0.5) + 1 - i0
            c0, c1 = math.ceil(u0 * w + x0 - 0.5) - j0, math.floor(u1 * w + x0 - 0.5) + 1 - j0
            pid[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = p + 1
        else:
            pid[_part_mask(shape, u, v, w / h)] = p + 1
    lut = np.array([(0, 0, 0)] + [colours[s[-1]] for s in shapes], np.float32).T  # [3, P + 1]
    mask = pid > 0
    rgb = np.take(lut, pid, axis=1) * (1.12 - 0.25 * v)  # [3, h, w], top-lit shading
    image[:, i0:i1, j0:j1] = np.where(mask, rgb, image[:, i0:i1, j0:j1])
    seg[i0:i1, j0:j1][mask] = DET_TO_SEG[obj["cls"]]
    inst[i0:i1, j0:j1][mask] = k
    invd[i0:i1, j0:j1][mask] = obj["d"]
    return int(np.count_nonzero(mask))


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


# ----------------------------------------------------------------------------------------
# TFDS builder (the imperative shell around render_scene).


@dataclasses.dataclass(eq=False)
class SyntheticDrivingConfig(tfds.core.BuilderConfig):
    """Parameters of one ``synthetic_driving`` variant; build it with :func:`make_config`.

    The name encodes every parameter (readable fields plus a hash of all of them), so each
    variant lives in its own directory and a changed size never reads a stale cache.
    """

    num_train: int = 800
    num_test: int = 200
    height: int = 128
    width: int = 256
    seed: int = 0
    hard_fraction: float = 0.05
    max_objects: int = 12
    class_probs: tuple[float, ...] = DEFAULT_CLASS_PROBS
    min_visible_px: int = 8
    min_visible_fraction: float = 0.2
    street_furniture: bool = False

    def render_params(self) -> dict:
        """Keyword arguments of :func:`render_scene` (besides rng, height, width)."""
        return {
            "max_objects": self.max_objects,
            "hard_fraction": self.hard_fraction,
            "class_probs": self.class_probs,
            "min_visible_px": self.min_visible_px,
            "min_visible_fraction": self.min_visible_fraction,
            "street_furniture": self.street_furniture,
        }

    def seg_classes(self) -> tuple[str, ...]:
        """The segmentation classes of this variant."""
        return SEG_CLASSES + (FURNITURE_CLASSES if self.street_furniture else ())


# Fields added after datasets had been generated, with their default: left out of the name
# while at the default, so that existing variants keep their names (and caches).
_LATER_FIELDS = {"street_furniture": False}


def make_config(**params) -> SyntheticDrivingConfig:
    """Returns the config of the given ``SyntheticDrivingConfig`` fields (others default).

    Raises:
      TypeError: on an unknown parameter name.
      ValueError: on a value that does not convert to the field's type.
    """
    fields = {f.name for f in dataclasses.fields(SyntheticDrivingConfig)} - {
        f.name for f in dataclasses.fields(tfds.core.BuilderConfig)
    }
    if unknown := set(params) - fields:
        raise TypeError(f"unknown parameters {sorted(unknown)}; valid: {sorted(fields)}")
    defaults = SyntheticDrivingConfig(name="default")
    for key, value in params.items():  # plain Python types, so the name hash is stable
        if key == "class_probs":
            params[key] = tuple(float(p) for p in value)
        else:
            params[key] = type(getattr(defaults, key))(value)
    values = dataclasses.asdict(dataclasses.replace(defaults, **params))
    values = {
        k: values[k]
        for k in sorted(fields)
        if not (k in _LATER_FIELDS and values[k] == _LATER_FIELDS[k])
    }
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    name = (
        f"h{values['height']}_w{values['width']}_train{values['num_train']}"
        f"_test{values['num_test']}_seed{values['seed']}_{digest}"
    )
    return SyntheticDrivingConfig(name=name, description=json.dumps(values), **params)


class SyntheticDriving(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of procedurally generated street scenes (no download, no TensorFlow).

    ``SyntheticDriving(data_dir=..., height=64, width=128, ...)`` takes the
    ``SyntheticDrivingConfig`` fields as keyword arguments (or ``config=``). Splits ``train``
    and ``test``; example ``i`` of a split is stored at position ``i`` (shuffling disabled).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release."
    }  # bump VERSION when the renderer changes
    BUILDER_CONFIGS: ClassVar[list] = [
        make_config()
    ]  # the default; any other parameters make a new config

    def __init__(
        self, *, config=None, data_dir=None, file_format="array_record", version=None, **params
    ):
        if config is None:
            config = make_config(**params)
        elif params:
            raise TypeError(f"pass either config or parameters, not both: {sorted(params)}")
        if isinstance(config, SyntheticDrivingConfig):  # TFDS wants the class's own instance
            config = next((c for c in self.BUILDER_CONFIGS if c.name == config.name), config)
        super().__init__(config=config, data_dir=data_dir, file_format=file_format, version=version)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Procedural street scenes with exact boxes and semantic masks.",
            features=features.make_features(),
            metadata=features.make_metadata(
                list(DET_CLASSES), list(self.builder_config.seg_classes()), list(DET_TO_SEG)
            ),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        c = self.builder_config
        return {"train": self._generate_examples("train", c.num_train),
                "test": self._generate_examples("test", c.num_test)}  # fmt: skip

    def _generate_examples(self, split: str, num: int):
        c = self.builder_config
        for i in range(num):
            rng = [c.seed, SPLITS.index(split), i]
            scene = render_scene(rng, c.height, c.width, **c.render_params())
            yield (
                i,
                {
                    "image": _png(scene["image"]),
                    "segmentation": _png(scene["segmentation"]),
                    "boxes": scene["boxes"],
                    "box_labels": scene["box_labels"],
                    "image_id": f"{split}_{i:06d}_{scene['condition']}",
                },
            )


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def prepare(data_dir: str, **params) -> SyntheticDriving:
    """Builds ``synthetic_driving`` under data_dir unless already there; returns the builder.

    Args:
      data_dir: TFDS data directory (the data lands in
        ``data_dir/synthetic_driving/<config name>/<version>``).
      **params: ``SyntheticDrivingConfig`` fields (num_train, num_test, height, width, seed,
        hard_fraction, max_objects, class_probs, min_visible_px, min_visible_fraction,
        street_furniture).
    """
    builder = SyntheticDriving(data_dir=data_dir, **params)
    return cache.download_and_prepare(builder)  # generated here: no download, quiet
