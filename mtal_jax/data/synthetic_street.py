"""The street of a synthetic scene: camera, road, sidewalks, roadside and street furniture.

Scene model. A pinhole camera one unit above a flat ground (1 unit = camera height = 1.5 m)
looks along the road. A ground point at lateral position X and inverse depth ``d`` (pixels
between its image row and the horizon row ``y_h``) projects to ``x = x_v + X * d``,
``y = y_h + d``, and an object of world size (w, h) standing there covers ``w * d`` by
``h * d`` pixels: near objects are large, far ones small, everything converges to the
vanishing point ``(x_v, y_h)``. The road trapezoid, sidewalks, building facades (with
perspective-correct windows) and tree rows follow the same geometry; the objects of
:mod:`mtal_jax.data.synthetic_objects` stand on it.

Street furniture (``street_furniture=True`` in ``synthetic_scene.render_scene``): lamp
posts on both sidewalks and fences along the roadside, segmentation classes
``synthetic_classes.FURNITURE_CLASSES`` (ids after ``SEG_CLASSES``) without boxes.

Images are painted channel-first, [3, H, W] float32, and finished by
``synthetic_scene.render_scene``; part of the synthetic_driving dataset
(``mtal_jax.data.synthetic``, docs/design.md §5).
"""

from __future__ import annotations

import numpy as np

from mtal_jax.data import synthetic_classes

_SKY, _BUILDING, _ROAD, _SIDEWALK, _VEGETATION = range(5)  # sky = 0 is the seg default
_POLE = len(synthetic_classes.SEG_CLASSES)  # seg ids (street_furniture only)
_FENCE = _POLE + 1
LANE = 2.33  # lane width (3.5 m) in camera heights
_FACADE_RGB = [(185, 165, 135), (150, 75, 55), (125, 125, 130), (215, 210, 200), (105, 95, 85)]
GLASS_RGB = (45, 55, 70)  # window glass: facades and vehicles


def sample_layout(rng: np.random.Generator, height: int, width: int) -> dict:
    """Samples the camera, road and roadside geometry of one scene.

    Args:
      rng: consumed.
      height: H, image rows.
      width: W, image columns.

    Returns:
      The scene dict every drawing step reads: ``H``, ``W``, focal length ``f`` (pixels),
      horizon row ``y_h`` and vanishing column ``x_v``, road edges ``XL`` < 0 < ``XR`` and
      sidewalk widths ``SL``, ``SR`` (camera heights), and per side (``L``, ``R``) the
      roadside segments along depth: ``bounds*`` [200] cumulative far ends, ``urban*``
      [200] bool (building, else tree row), ``tall*`` [200] heights, ``rgb*`` [200, 3]
      float32 colours and ``win*`` [200] window spacings.
    """
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


def draw_stuff(
    rng: np.random.Generator, sc: dict, night: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paints sky, road, sidewalks and roadside.

    Args:
      rng: consumed.
      sc: the scene of :func:`sample_layout`.
      night: a night sky, and a fixed 40 % of the windows lit (else ``lit`` is all False).

    Returns:
      image [3, H, W] float32 (channel-first: masks broadcast over the leading axis,
      which NumPy vectorises well), seg [H, W] uint8, inverse depth [H, W] float32
      (0 = sky) and the lit windows [H, W] bool (used at night).
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
                [np.array([165, 158, 145]) * rng.uniform(0.8, 1.15), GLASS_RGB],
                sc["rgbL"],
                sc["rgbR"],
            ]
        )
        .astype(f32)
        .T.copy()
    )  # [3, K]
    dash = frac(Zg / 6.0) < 0.45  # [H, 1]
    lines = (np.abs(Xg - (XL + 0.15)) < 0.05) | (np.abs(Xg - (XR - 0.15)) < 0.05)  # edges
    for x_line in np.arange(XL + LANE, XR - 0.5, LANE):  # dashed lane separators
        lines |= (np.abs(Xg - x_line) < 0.06) & dash
    win = np.concatenate([sc["winL"], sc["winR"]])[idx].astype(f32)  # [1, W] window spacing
    wcol = urban & (frac(Zc / win) > 0.3)  # [1, W] columns with windows
    windows = wcol & (frac(v / 2.0) > 0.4) & (v > 1.7) & (v < tall - 0.5)
    i16 = np.int16
    col_k = (k_side + idx).astype(i16)  # [1, W]
    material = sky * np.arange(H, dtype=i16)[:, None] + road * (lines + i16(k_road))
    material += walk * i16(k_walk) + side * (col_k + windows * (i16(k_glass) - col_k))
    tiles = frac(Zg / 1.2) < 0.08  # [H, 1]
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
    band = frac(Zg / rng.uniform(10, 30) + rng.random()) < rng.uniform(0.3, 0.8)  # [H, 1]
    across = Xg < XL - SL + reach if rng.random() < 0.5 else Xg > XR + SR - reach
    bright *= 1 - 0.4 * ((road | walk) & band & across).astype(f32)
    image = np.take(palette, material, axis=1) * bright  # [3, H, W]
    return image.astype(f32), seg, invd.astype(f32), lit


def draw_furniture(
    rng: np.random.Generator, sc: dict, image: np.ndarray, seg: np.ndarray, invd: np.ndarray
) -> None:
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
    # Fences on the roadside plane (the one draw_stuff paints facades and trees on).
    dcol, Zc, idx = _roadside_plane(sc, xx)
    n = len(sc["boundsL"])
    fenced = rng.random(2 * n) < 0.5
    fence_h = rng.uniform(0.45, 0.75, 2 * n).astype(f32)
    wood = rng.random(2 * n) < 0.4
    v = (y_h + dcol - yy) / dcol  # [H, W] height above ground on the plane
    plane = (seg == _BUILDING) | (seg == _VEGETATION)
    fence = plane & fenced[idx] & (v <= fence_h[idx]) & (v >= 0)
    slat = (frac(Zc / 0.3) < 0.45) | (np.abs(v - 0.8 * fence_h[idx]) < 0.05)  # [H, W]
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


def frac(x: np.ndarray) -> np.ndarray:
    """Fractional part ``x - floor(x)`` in [0, 1), same shape: periodic patterns (lane dashes,
    windows, tiles, slats)."""
    return x - np.floor(x)  # np.mod is ~30x slower on float arrays
