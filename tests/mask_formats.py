"""Mask encoders for writing dataset files in tests and benchmarks (COCO RLE, nuImages).

The library only decodes these formats (``mtal_jax.data.rasterize``); writing them is
what fixtures do.
"""

import base64

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict:
    """Encodes [h, w] bool as ``{"size": [h, w], "counts": <compressed RLE str>}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def encode_nuimages_mask(mask: np.ndarray) -> dict:
    """Encodes [h, w] bool in the nuImages table form (base64 of compressed RLE)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": base64.b64encode(rle["counts"]).decode("ascii"),
    }
