"""EquAL: flip consistency of the segmentation (Golestaneh & Kitani 2020; paper IV-B).

There is no official EquAL code (docs/baselines.md, "EquAL"). Three
variants, all "higher = more informative", are offered:

* ``"kl"`` (default): mean over pixels of KL(P || P_f), P the softmax of the image and
  P_f the softmax of the flipped image flipped back (the MTAL paper's description, Sec. II:
  "the KL-divergence of the predictions from the original and the flipped image");
* ``"sym_kl"``: 0.5 (KL(P || P_f) + KL(P_f || P));
* ``"entropy_sum"``: mean pixel entropy of P plus that of P_f, the only public
  reimplementation (sud0301/best_practices_ALSS); it measures no consistency.

The mean runs over the content pixels (``pixel_valid``, from ``Predictions.pixel_valid``):
the bottom/right padding of the input pipeline is left out, as the losses leave it out.
The flipped view comes from ``flip_extra``, which calls ``ctx.segment_fn`` (the
strategy never calls the model itself); it flips the padded image, so the flipped view
sees its padding on the left, which is the one place padding still touches the score.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax.scores import uncertainty

VARIANTS = ("kl", "sym_kl", "entropy_sum")
FLIP_KEY = "seg_probs_flip"


def flip_extra(ctx: Any, images: jax.Array, preds: Any) -> dict[str, jax.Array]:
    """ExtraFn: segmentation of the horizontally flipped image, flipped back.

    With W divisible by the output stride s, output column j of the flipped image covers
    input columns of output column w - 1 - j, so flipping the output back aligns pixels
    exactly.

    Args:
      ctx: ``strategy_types.PredictContext`` (uses ``segment_fn``).
      images: [B, H, W, 3] uint8.
      preds: unused.

    Returns:
      ``{"seg_probs_flip": [B, h, w, C_seg] float32}`` in the original orientation.
    """
    del preds
    logits = ctx.segment_fn(jnp.flip(images, axis=2))  # [B, h, w, C]
    return {FLIP_KEY: jnp.flip(jax.nn.softmax(logits.astype(jnp.float32), axis=-1), axis=2)}


def kl_map(p: ArrayLike, q: ArrayLike, *, eps: float = 1e-8) -> jax.Array:
    """Per-pixel KL(p || q) = sum_c p_c (log max(p_c, eps) - log max(q_c, eps)).

    Args:
      p: [..., C] distributions.
      q: [..., C] distributions.
      eps: clip before the log.

    Returns:
      [...] float32.
    """
    p = jnp.asarray(p, jnp.float32)
    q = jnp.asarray(q, jnp.float32)
    return jnp.sum(p * (jnp.log(jnp.maximum(p, eps)) - jnp.log(jnp.maximum(q, eps))), axis=-1)


def flip_consistency(
    seg_probs: ArrayLike,
    seg_probs_flip: ArrayLike,
    *,
    variant: str = "kl",
    eps: float = 1e-8,
    pixel_valid: ArrayLike | None = None,
) -> jax.Array:
    """EquAL image score: a per-pixel (in)consistency averaged over valid pixels.

    Args:
      seg_probs: [B, h, w, C] softmax of the image.
      seg_probs_flip: [B, h, w, C] softmax of the flipped image, flipped back.
      variant: one of ``VARIANTS``.
      eps: probability clip inside the logs.
      pixel_valid: [B, h, w] bool or None (all pixels valid).

    Returns:
      [B] float32, higher = more informative; 0 for identical predictions (KL variants).

    Raises:
      ValueError: for an unknown variant.
    """
    if variant == "kl":
        per_pixel = kl_map(seg_probs, seg_probs_flip, eps=eps)
    elif variant == "sym_kl":
        per_pixel = 0.5 * (
            kl_map(seg_probs, seg_probs_flip, eps=eps) + kl_map(seg_probs_flip, seg_probs, eps=eps)
        )
    elif variant == "entropy_sum":
        per_pixel = uncertainty.entropy(seg_probs) + uncertainty.entropy(seg_probs_flip)
    else:
        raise ValueError(f"unknown EquAL variant {variant!r}; valid: {VARIANTS}")
    if pixel_valid is None:
        return jnp.mean(per_pixel, axis=(1, 2))
    valid = jnp.asarray(pixel_valid, jnp.float32)
    return jnp.sum(per_pixel * valid, axis=(1, 2)) / jnp.maximum(jnp.sum(valid, axis=(1, 2)), 1.0)
