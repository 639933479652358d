"""The objects of a synthetic scene: shapes, colours, placement and drawing.

Objects (``synthetic_classes.DET_CLASSES``) stand on the ground of
:mod:`mtal_jax.data.synthetic_street`, in lanes, on sidewalks, by the roadside or crossing
the road, and are drawn far to near, so nearer ones occlude farther ones, each object as a
few flat parts (car body, windows and wheels; a truck's cargo box; a bus's window band;
...), seen from the rear or from the side, with per-instance colours and a shadow on the
ground. Each drawn pixel writes its colour, its segmentation class and its instance id
from the same mask, which makes ``synthetic_scene.render_scene``'s labels exact. Part of
the synthetic_driving dataset (``mtal_jax.data.synthetic``, docs/design.md §5).
"""

from __future__ import annotations

import math

import numpy as np

from mtal_jax.data import synthetic_classes, synthetic_street

_CAR, _TRUCK, _BUS, _PEDESTRIAN, _CYCLIST, _SIGN = range(6)  # ids into DET_CLASSES
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
_CAR_RGB = [(205, 205, 210), (30, 30, 35), (240, 240, 240), (165, 25, 30), (30, 55, 140),
            (95, 100, 105), (25, 85, 45), (120, 80, 40)]  # fmt: skip
_CARGO_RGB = [(235, 235, 230), (190, 190, 195), (220, 120, 30), (40, 80, 160), (150, 30, 30)]
_BUS_RGB = [(230, 180, 20), (190, 30, 30), (30, 80, 170), (235, 235, 235), (40, 140, 70)]
_SKIN_RGB = [(230, 190, 160), (190, 140, 100), (120, 80, 55)]
_FIXED_RGB = {
    "glass": synthetic_street.GLASS_RGB, "tyre": (22, 22, 24), "hub": (150, 150, 150),
    "dark": (45, 45, 45), "red": (200, 20, 20), "white": (240, 240, 240), "head": (255, 245, 215),
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


def sample_objects(rng: np.random.Generator, sc: dict, n: int, probs: np.ndarray) -> list:
    """Samples n objects on the ground plane, returned far to near.

    Args:
      rng: consumed.
      sc: the scene of ``synthetic_street.sample_layout``.
      n: number of objects.
      probs: [C_det] float64 class probabilities (sum 1), order of ``DET_CLASSES``.

    Returns:
      One dict per object, by increasing inverse depth ``d``: class id ``cls``, ``view``
      (``"rear"`` or ``"side"``), ``d`` (pixels per camera height), box ``x0``, ``y0``,
      ``w``, ``h`` in pixels (may extend past the image), and ``oncoming`` (left of the
      camera).
    """
    XL, XR, SL, SR = sc["XL"], sc["XR"], sc["SL"], sc["SR"]
    lanes = np.arange(XL + synthetic_street.LANE / 2, XR - 0.5, synthetic_street.LANE)
    objects = []
    for cls in rng.choice(len(synthetic_classes.DET_CLASSES), size=n, p=probs):
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
        inside = (u >= u0) & (u <= u1) & (synthetic_street.frac((u - u0) * (n / (u1 - u0))) > gap)
        return inside & (v >= v0) & (v <= v1)
    _, v0, v1, tu0, tu1, bu0, bu1, _ = shape
    t = (v - v0) / (v1 - v0)  # [h, 1]
    return (v >= v0) & (v <= v1) & (u >= tu0 + (bu0 - tu0) * t) & (u <= tu1 + (bu1 - tu1) * t)


def draw_object(
    rng: np.random.Generator,
    obj: dict,
    k: int,
    image: np.ndarray,
    seg: np.ndarray,
    inst: np.ndarray,
    invd: np.ndarray,
) -> int:
    """Paints object k (and its ground shadow) in place; returns its in-image area.

    ``image`` is [3, H, W] float32; ``seg``, ``inst`` and ``invd`` are [H, W].

    Args:
      rng: consumed.
      obj: one object of :func:`sample_objects`; gains ``window`` (its pixel rows and
        columns ``(i0, i1, j0, j1)`` in the image), ``k``, ``lamps`` (``(u, v, rgb)`` in
        box coordinates) and ``mirror`` (a side view facing left).
      k: instance id written into ``inst`` (> 0; 0 is stuff).
      image: painted in place.
      seg: segmentation ids, written in place.
      inst: instance ids, written in place; its zeros are where the shadow falls.
      invd: inverse depth, written in place.

    Returns:
      The number of pixels the object covers in the image (before later, nearer objects).
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
    seg[i0:i1, j0:j1][mask] = synthetic_classes.DET_TO_SEG[obj["cls"]]
    inst[i0:i1, j0:j1][mask] = k
    invd[i0:i1, j0:j1][mask] = obj["d"]
    return int(np.count_nonzero(mask))
