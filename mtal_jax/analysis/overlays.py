"""Qualitative overlays (paper Fig. 5): boxes, segmentation, BoxMasks, task disagreement.

Host-side NumPy on one image. The four panels, left to right:
  1. the image with the valid detected boxes (box colour = its class colour);
  2. the segmentation (argmax class colours) blended over the image;
  3. the BoxMasks, each in its box's class colour, with the box outlines;
  4. where the tasks disagree: green = BoxMask pixels whose segmentation agrees with the
     box class, red = BoxMask pixels that disagree (S_loc), yellow = pixels outside every
     BoxMask segmented as a detection class (S_seg).
Maps on the h x w output grid are shown at input size (nearest neighbour).

With ``background="gray"`` every panel is drawn on a flat mid-gray canvas instead of the
photo, so the figure holds model outputs only (no dataset pixels; CamVid's terms are
non-commercial). Comparisons of several models (random vs CALD vs ours) put one labelled row
of panels per model under each other: ``label_strip``, ``compare_rows``, ``stack_rows``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGREE, LOC_DISAGREE, SEG_DISAGREE = 1, 2, 3
_CODE_RGB = np.array([[0, 0, 0], [40, 170, 60], [220, 30, 30], [250, 210, 20]], np.uint8)
BACKGROUNDS = ("image", "gray")
GRAY = 128  # the flat background of background="gray"


def palette(num_classes: int) -> np.ndarray:
    """Distinct class colours: [num_classes, 3] uint8 (deterministic)."""
    base = np.array(
        [[128, 64, 128], [70, 70, 70], [70, 130, 180], [244, 35, 232], [107, 142, 35],
         [0, 0, 142], [0, 60, 100], [0, 80, 100], [220, 20, 60], [119, 11, 32],
         [220, 220, 0], [250, 170, 30], [152, 251, 152], [102, 102, 156], [190, 153, 153]],
        np.uint8,
    )  # fmt: skip
    reps = -(-num_classes // len(base))
    return np.tile(base, (reps, 1))[:num_classes]


def disagreement_codes(
    seg_labels: np.ndarray,
    box_masks: np.ndarray,
    box_classes: np.ndarray,
    box_valid: np.ndarray,
    det_to_seg: np.ndarray,
) -> np.ndarray:
    """Per-pixel agreement code of one image (see the module docstring).

    Args:
      seg_labels: [h, w] int argmax segmentation.
      box_masks: [K, h, w] bool.
      box_classes: [K] int segmentation class of each box.
      box_valid: [K] bool.
      det_to_seg: [C_det] int.

    Returns:
      [h, w] uint8 in {0, AGREE, LOC_DISAGREE, SEG_DISAGREE}; a pixel in several BoxMasks
      disagrees when any of their classes differs from its label.
    """
    masks = np.asarray(box_masks, bool) & np.asarray(box_valid, bool)[:, None, None]
    wrong = masks & (seg_labels[None] != np.asarray(box_classes)[:, None, None])
    inside = masks.any(0)
    codes = np.zeros(seg_labels.shape, np.uint8)
    codes[inside] = AGREE
    codes[wrong.any(0)] = LOC_DISAGREE
    codes[~inside & np.isin(seg_labels, np.asarray(det_to_seg))] = SEG_DISAGREE
    return codes


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = np.floor(np.arange(height) * grid.shape[0] / height).astype(int)
    cols = np.floor(np.arange(width) * grid.shape[1] / width).astype(int)
    return grid[rows][:, cols]


def _draw_boxes(canvas: np.ndarray, boxes: np.ndarray, colours: np.ndarray) -> None:
    height, width = canvas.shape[:2]
    for (x1, y1, x2, y2), rgb in zip(boxes, colours):
        c1, r1 = int(np.clip(np.floor(x1), 0, width - 1)), int(np.clip(np.floor(y1), 0, height - 1))
        c2, r2 = (
            int(np.clip(np.ceil(x2) - 1, 0, width - 1)),
            int(np.clip(np.ceil(y2) - 1, 0, height - 1)),
        )
        canvas[r1 : r2 + 1, [c1, c2]] = rgb
        canvas[[r1, r2], c1 : c2 + 1] = rgb


def render_panels(
    image: np.ndarray,
    boxes: np.ndarray,
    box_classes: np.ndarray,
    box_valid: np.ndarray,
    seg_labels: np.ndarray,
    box_masks: np.ndarray,
    det_to_seg: np.ndarray,
    *,
    num_seg_classes: int,
    alpha: float = 0.55,
    gap: int = 4,
    background: str = "image",
) -> np.ndarray:
    """The four Fig. 5 panels of one image side by side.

    Args:
      image: [H, W, 3] uint8.
      boxes: [K, 4] xyxy in input pixels.
      box_classes: [K] int segmentation class of each box.
      box_valid: [K] bool.
      seg_labels: [h, w] int argmax segmentation.
      box_masks: [K, h, w] bool.
      det_to_seg: [C_det] int.
      num_seg_classes: C_seg.
      alpha: opacity of the colour layers.
      gap: white pixels between panels.
      background: "image" draws on the photo; "gray" on a flat mid-gray canvas of the same
        size (model outputs only, no pixel of ``image``).

    Returns:
      [H, 4 W + 3 gap, 3] uint8.

    Raises:
      ValueError: ``background`` is not one of ``BACKGROUNDS``.
    """
    if background not in BACKGROUNDS:
        raise ValueError(f"background {background!r} is not one of {', '.join(BACKGROUNDS)}")
    image = np.asarray(image, np.uint8)
    if background == "gray":
        image = np.full(image.shape, GRAY, np.uint8)
    height, width = image.shape[:2]
    colours = palette(num_seg_classes)
    box_valid = np.asarray(box_valid, bool)
    boxes, box_classes = np.asarray(boxes)[box_valid], np.asarray(box_classes)[box_valid]
    masks = np.asarray(box_masks, bool)[box_valid]
    base = image.astype(np.float32)

    def blend(layer: np.ndarray, where: np.ndarray) -> np.ndarray:
        out = base.copy()
        out[where] = (1 - alpha) * out[where] + alpha * layer[where]
        return out.astype(np.uint8)

    panel_boxes = image.copy()
    _draw_boxes(panel_boxes, boxes, colours[box_classes])
    seg = _upsample(np.asarray(seg_labels), height, width)
    panel_seg = blend(colours[seg].astype(np.float32), np.ones(seg.shape, bool))
    mask_class = np.full(masks.shape[1:], -1)
    for k in np.argsort(-(masks.sum((1, 2)))):  # small masks drawn last, on top
        mask_class[masks[k]] = box_classes[k]
    mask_class = _upsample(mask_class, height, width)
    panel_masks = blend(colours[np.maximum(mask_class, 0)].astype(np.float32), mask_class >= 0)
    _draw_boxes(panel_masks, boxes, colours[box_classes])
    codes = _upsample(
        disagreement_codes(
            np.asarray(seg_labels), masks, box_classes, np.ones(len(masks), bool), det_to_seg
        ),
        height,
        width,
    )
    panel_codes = blend(_CODE_RGB[codes].astype(np.float32), codes > 0)
    _draw_boxes(panel_codes, boxes, np.full((len(boxes), 3), 255, np.uint8))
    spacer = np.full((height, gap, 3), 255, np.uint8)
    return np.concatenate(
        [panel_boxes, spacer, panel_seg, spacer, panel_masks, spacer, panel_codes], axis=1
    )


def _text_box(text: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``text`` in PIL's default font, drawn at (0, 0)."""
    import PIL.Image
    import PIL.ImageDraw

    return PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1))).textbbox((0, 0), text)


def label_width(labels: Sequence[str], *, margin: int = 4) -> int:
    """Width in pixels of a label strip that fits every label (PIL's default font)."""
    return max([_text_box(t)[2] for t in labels] + [0]) + 2 * margin


def label_strip(text: str, height: int, width: int, *, margin: int = 4) -> np.ndarray:
    """A white strip with ``text`` in black, vertically centred (PIL's default font).

    Text that does not fit is clipped.

    Returns:
      [height, width, 3] uint8.
    """
    import PIL.Image
    import PIL.ImageDraw

    strip = PIL.Image.new("RGB", (width, height), (255, 255, 255))
    _, top, _, bottom = _text_box(text)
    y = (height - (bottom - top)) // 2 - top
    PIL.ImageDraw.Draw(strip).text((margin, y), text, fill=(0, 0, 0))
    return np.asarray(strip, np.uint8)


PANEL_TITLES = (
    "detected boxes",
    "segmentation",
    "BoxMasks (box's class colour)",
    "green ok, red S_loc, yellow S_seg",  # fits a 160-pixel panel (CamVid)
)
"""Titles of ``render_panels``' four panels, for ``column_header``."""


def column_header(
    titles: Sequence[str], panel_width: int, *, gap: int = 4, left: int = 0, margin: int = 4
) -> np.ndarray:
    """A white strip with one title over each panel (PIL's default font; clipped to the
    panel), ``left`` white columns first (a label strip's width).

    Returns:
      [h, left + n panel_width + (n - 1) gap, 3] uint8 with h the font's height + 2 margin.
    """
    import PIL.Image
    import PIL.ImageDraw

    height = max([_text_box(t)[3] for t in titles] + [0]) + 2 * margin
    total = left + len(titles) * panel_width + (len(titles) - 1) * gap
    strip = PIL.Image.new("RGB", (total, height), (255, 255, 255))
    for i, title in enumerate(titles):
        x = left + i * (panel_width + gap)
        cell = PIL.Image.new("RGB", (panel_width, height), (255, 255, 255))
        PIL.ImageDraw.Draw(cell).text((margin, margin), title, fill=(0, 0, 0))
        strip.paste(cell, (x, 0))
    return np.asarray(strip, np.uint8)


def stack_rows(rows: Sequence[np.ndarray], *, gap: int, fill: int = 255) -> np.ndarray:
    """Stacks equally wide [h_i, W, 3] uint8 arrays top to bottom, ``gap`` rows between them.

    Returns:
      [sum(h_i) + (len(rows) - 1) gap, W, 3] uint8.
    """
    if not rows:
        raise ValueError("stack_rows needs at least one row")
    widths = {r.shape[1] for r in rows}
    if len(widths) != 1:
        raise ValueError(f"rows differ in width: {sorted(widths)}")
    spacer = np.full((gap, rows[0].shape[1], 3), fill, np.uint8)
    return np.concatenate([x for r in rows for x in (r, spacer)][:-1], axis=0)


def compare_rows(
    panels: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    width: int | None = None,
    gap: int = 4,
) -> np.ndarray:
    """One image under several models: each model's panels behind a strip with its label.

    Args:
      panels: R arrays [H, P, 3] uint8 (``render_panels`` of the same image, one per model).
      labels: R texts (e.g. the strategy names).
      width: label strip width; None = ``label_width(labels)``.
      gap: white rows between the models.

    Returns:
      [R H + (R - 1) gap, width + P, 3] uint8.
    """
    if len(panels) != len(labels):
        raise ValueError(f"{len(panels)} panel rows but {len(labels)} labels")
    width = label_width(labels) if width is None else width
    rows = [
        np.concatenate([label_strip(text, p.shape[0], width), np.asarray(p, np.uint8)], axis=1)
        for p, text in zip(panels, labels)
    ]
    return stack_rows(rows, gap=gap)


def save_png(array: np.ndarray, path: str) -> None:
    """Writes an [H, W, 3] uint8 array as PNG."""
    import PIL.Image

    PIL.Image.fromarray(np.asarray(array, np.uint8)).save(path)
