"""Divergences between class distributions, the per-pixel summands of S_cls (paper Eq. 2).

``kl_divergence`` and ``js_divergence`` compare two [..., C] distributions;
``symmetric_kl_map`` and ``js_map`` compare every pixel's segmentation distribution p_ij
with every box's transformed detection distribution q_k, giving the [K, h, w] maps that
``consistency.classification_inconsistency`` averages over each BoxMask (docs/design.md §4).
Logs are floored at ``eps`` (``log max(x, eps)``), so 0 log 0 = 0; the maps sum per-class
terms that are each >= 0, so float32 loses no precision to cancellation.

Examples:
  >>> import jax.numpy as jnp
  >>> round(float(js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.5, 0.5]))), 6)
  0.311278
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _log_floor(x: jax.Array, eps: float) -> jax.Array:
    return jnp.log(jnp.maximum(x, eps))


def _sym_kl_terms(p: jax.Array, q: jax.Array, eps: float) -> jax.Array:
    """Per-class summands of KL(p||q) + KL(q||p): ``(p - q)(log p - log q) >= 0`` (floored)."""
    return (p - q) * (_log_floor(p, eps) - _log_floor(q, eps))


def _js_terms(p: jax.Array, q: jax.Array, eps: float) -> jax.Array:
    """Per-class summands of KL(p||m) + KL(q||m), m = (p + q) / 2 (each >= 0 up to the floor)."""
    log_m = _log_floor((p + q) / 2, eps)
    return p * (_log_floor(p, eps) - log_m) + q * (_log_floor(q, eps) - log_m)


def _pixel_box_sum(terms_fn, seg_probs: ArrayLike, box_probs: ArrayLike, eps: float) -> jax.Array:
    """``sum_c terms_fn(p_ij[c], q_k[c])`` -> [K, h, w], one class at a time.

    The class loop is unrolled (C_seg is static and small) and accumulates [K, h, w], so no
    [K, h, w, C_seg] array is ever built (memory stays that of the BoxMasks).
    """
    p = jnp.asarray(seg_probs, jnp.float32)  # [h, w, C]
    q = jnp.asarray(box_probs, jnp.float32)  # [K, C]
    total = jnp.zeros((q.shape[0], *p.shape[:2]), jnp.float32)
    for c in range(p.shape[-1]):
        total = total + terms_fn(p[None, :, :, c], q[:, c, None, None], eps)  # [K, h, w]
    return total


def kl_divergence(p: ArrayLike, q: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
    """``KL(p || q) = sum_c p_c * (log max(p_c, eps) - log max(q_c, eps))`` (0 log 0 = 0).

    Args:
      p: [..., C] distribution.
      q: [..., C] distribution (broadcasts against ``p``).
      eps: log floor.

    Returns:
      [...] float32 (natural log).
    """
    p = jnp.asarray(p, jnp.float32)
    q = jnp.asarray(q, jnp.float32)
    return jnp.sum(p * (_log_floor(p, eps) - _log_floor(q, eps)), axis=-1)


def js_divergence(p: ArrayLike, q: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
    """Jensen-Shannon divergence in bits: ``(KL(p||m) + KL(q||m)) / (2 ln 2)``, m = (p + q) / 2.

    In [0, 1], 0 iff p = q, 1 for disjoint supports; symmetric. Each class contributes
    ``p_c log(p_c / m_c) + q_c log(q_c / m_c) >= 0``, so float32 sums without cancellation.

    Args:
      p: [..., C] distribution.
      q: [..., C] distribution (broadcasts against ``p``).
      eps: log floor of ``kl_divergence``.

    Returns:
      [...] float32 in [0, 1] (rounding clipped).

    Examples:
      >>> round(float(js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))), 6)
      1.0
    """
    p = jnp.asarray(p, jnp.float32)
    q = jnp.asarray(q, jnp.float32)
    total = jnp.sum(_js_terms(p, q, eps), axis=-1)
    return jnp.clip(total / (2.0 * jnp.log(2.0)), 0.0, 1.0)


def symmetric_kl_map(seg_probs: ArrayLike, box_probs: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
    """``KL(p_ij || q_k) + KL(q_k || p_ij)`` for every pixel and box (the summand of Eq. 2).

    Computed per pixel and class as ``sum_c (p_c - q_c) (log max(p_c, eps) - log max(q_c,
    eps))``, which equals the two KL terms exactly and whose summands are all >= 0 (the log
    floor is monotonic), so float32 loses no precision to cancellation.

    Args:
      seg_probs: [h, w, C_seg] segmentation probabilities p.
      box_probs: [K, C_seg] transformed detection distributions q.
      eps: log floor.

    Returns:
      [K, h, w] float32 >= 0.
    """
    return _pixel_box_sum(_sym_kl_terms, seg_probs, box_probs, eps)


def js_map(seg_probs: ArrayLike, box_probs: ArrayLike, *, eps: float = 1e-6) -> jax.Array:
    """``JS(p_ij, q_k)`` in bits for every pixel and box (``js_divergence``).

    Args:
      seg_probs: [h, w, C_seg] segmentation probabilities p.
      box_probs: [K, C_seg] transformed detection distributions q.
      eps: log floor.

    Returns:
      [K, h, w] float32 in [0, 1].
    """
    total = _pixel_box_sum(_js_terms, seg_probs, box_probs, eps)
    return jnp.clip(total / (2.0 * jnp.log(2.0)), 0.0, 1.0)
