"""A tiny CamVid-layout folder written at test time (no shared data needed)."""

import numpy as np
import PIL.Image

from mtal_jax.data import camvid


def write_tiny_camvid(root, num_frames=3, height=24, width=32):
    """A tiny CamVid-layout folder: each frame has a 4x4 car, a 2x2 car and some void."""
    for folder in ("train", "trainannot"):
        (root / folder).mkdir(parents=True)
    lines = []
    for i in range(num_frames):
        image = np.full((height, width, 3), 40 * i % 256, np.uint8)
        labels = np.full((height, width), 3, np.uint8)
        labels[2:6, 2:6] = 8
        labels[10:12, 20:22] = 8
        labels[0, :] = camvid.VOID_ID
        PIL.Image.fromarray(image).save(root / "train" / f"f{i}.png")
        PIL.Image.fromarray(labels).save(root / "trainannot" / f"f{i}.png")
        lines.append(f"train/f{i}.png trainannot/f{i}.png")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root
