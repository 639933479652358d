"""Diversity features and distances: CDAL and Core-set (paper IV-B).

**CDAL** (Agarwal et al., ECCV 2020; sharat29ag/CDAL; docs/baselines.md, "CDAL"). The
contextual-diversity feature of an image is, per predicted class c, the entropy-weighted
mean class distribution of the regions predicted as c:
P^c = (1 / |I^c|) sum_{r in I^c} H(p_r) p_r. Two images are compared row by row with the
symmetric KL 0.5 (KL(a||b) + KL(b||a)); rows of classes absent from either image are
dropped (the reference drops NaN / inf rows) and the rest averaged (``CDAL_CS.py``,
``row_reduce="mean"``) or summed (``rewards.KL_segment``, ``"sum"``); 0 when no row
remains (a reference quirk: images sharing no class are at distance 0).

Fidelity to ``CDAL_CS.py`` (sharat29ag/CDAL ``kl``, which computes ``a * log(a / b)``
without any clip):
* the logs are clipped at ``eps`` = 1e-30 (default). A trained network's softmax is
  peaked, so the entries H(p_r) p_r of a feature row routinely fall far below 1e-8; a clip
  at 1e-8 changed distances by more than 10 % relative on such outputs (and with them
  k-centre picks), while 1e-30 (still a normal float32) leaves them equal to the
  reference's to float32 precision, about 1e-6 relative (``tests/test_baseline_fidelity.py``);
* a row that holds an exact zero in either image gives NaN in the reference (0 log 0,
  0 log(0 / b)) and is dropped there; ``drop_zero_rows=True`` (default) drops it too.
  Such zeros arise when float32 softmax probabilities underflow (logit gaps above ~100)
  or when every pixel of a class is exactly one-hot (H = 0).

Multi-task recipe (our choice; the MTAL paper does not give one): distance =
``seg_weight`` * d(segmentation rows) + ``det_weight`` * d(detection rows), where
* segmentation: the paper's C_seg x C_seg matrix over the pixels of the stride-4 map;
* detection, ``det_form="vector"`` (default, the reference's detection code): one row,
  the entropy-weighted average of the class distributions of the valid detections
  (normalised by the weight sum; plain mean when every weight is 0), or
  ``det_form="per_class"`` (the paper's formula): C_det rows built from the detections,
  grouped by their predicted class.
The reference's detection code averages over all 8 732 SSD priors; our CenterNet gives
decoded detections only, so we use those.

Feature layout: per task ``[a (R*W), log max(a, eps) (R*W), row_valid (R)]`` with both
tasks zero-padded to W = max(C_seg, C_det) classes (exact: see ``_pack``), so the
distance reads the layout from the feature length. The logs are stored so the k-centre
loop does no transcendental work, and all distances are matmuls, so a block of k-centre
distances costs ``[N, block]`` memory. Per image F = 2 W^2 + W (segmentation) + 2 W + 1
(detection, vector form) floats; e.g. W = 19: 780 floats = 3.1 KB, 0.31 GB for 100 000
images (per_class form: 2 (2 W^2 + W), 0.59 GB).

**Core-set** (Sener & Savarese, ICLR 2018): the pooled backbone features
``Predictions.embedding`` with (squared) Euclidean distance (``selection.squared_euclidean``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from mtal_jax.scores import uncertainty

DET_FORMS = ("vector", "per_class")
ROW_REDUCES = ("mean", "sum")


def seg_contextual_diversity(
    seg_probs: ArrayLike, pixel_valid: ArrayLike | None = None
) -> tuple[jax.Array, jax.Array]:
    """CDAL segmentation feature, P^c over the pixels predicted as c.

    Args:
      seg_probs: [B, h, w, C] softmax probabilities.
      pixel_valid: [B, h, w] bool or None (all pixels); invalid (padding) pixels count
        for no class.

    Returns:
      (rows [B, C, C] (row c = P^c, zeros for absent classes), present [B, C] bool).
    """
    p = jnp.asarray(seg_probs, jnp.float32)
    c = p.shape[-1]
    weighted = uncertainty.entropy(p)[..., None] * p  # [B, h, w, C]
    onehot = jax.nn.one_hot(jnp.argmax(p, -1), c, dtype=jnp.float32)  # [B, h, w, C]
    if pixel_valid is not None:
        onehot = onehot * jnp.asarray(pixel_valid, jnp.float32)[..., None]
    sums = jnp.einsum("bhwr,bhwc->brc", onehot, weighted)  # [B, C(rows), C]
    count = jnp.sum(onehot, axis=(1, 2))  # [B, C]
    return sums / jnp.maximum(count, 1.0)[..., None], count > 0


def det_contextual_diversity(
    det_probs: ArrayLike, det_valid: ArrayLike, *, form: str = "vector"
) -> tuple[jax.Array, jax.Array]:
    """CDAL detection feature from the decoded detections.

    Args:
      det_probs: [B, K, C] class distributions.
      det_valid: [B, K] bool.
      form: ``"vector"`` (one row, the reference code) or ``"per_class"`` (C rows, the
        paper's formula).

    Returns:
      (rows [B, R, C], present [B, R] bool), R = 1 or C.

    Raises:
      ValueError: for an unknown form.
    """
    p = jnp.asarray(det_probs, jnp.float32)
    valid = jnp.asarray(det_valid, jnp.float32)  # [B, K]
    c = p.shape[-1]
    w = uncertainty.entropy(p) * valid  # [B, K]
    if form == "vector":
        wsum = jnp.sum(w, axis=1, keepdims=True)  # [B, 1]
        w = jnp.where(wsum > 0, w, valid)  # all weights 0: plain mean
        row = jnp.einsum("bk,bkc->bc", w, p) / jnp.maximum(jnp.sum(w, 1, keepdims=True), 1e-12)
        return row[:, None, :], (jnp.sum(valid, axis=1) > 0)[:, None]
    if form == "per_class":
        onehot = jax.nn.one_hot(jnp.argmax(p, -1), c) * valid[..., None]  # [B, K, C(rows)]
        sums = jnp.einsum("bkr,bk,bkc->brc", onehot, w, p)
        count = jnp.sum(onehot, axis=1)  # [B, C]
        return sums / jnp.maximum(count, 1.0)[..., None], count > 0
    raise ValueError(f"unknown CDAL det_form {form!r}; valid: {DET_FORMS}")


def _pack(
    rows: jax.Array, present: jax.Array, width: int, eps: float, drop_zero_rows: bool = True
) -> jax.Array:
    """[B, R, C], [B, R] -> [B, 2 R' W + R'] = [a, log a, valid], absent rows zeroed.

    Classes are zero-padded to ``width`` columns (and, for square C x C features, rows);
    a class that is 0 in both images adds exactly 0 to the symmetric KL, so padding does
    not change any distance. With ``drop_zero_rows`` a row holding an exact zero among
    its C real classes is marked absent (the reference's NaN rule, module docstring).
    """
    b, r, c = rows.shape
    if drop_zero_rows:
        present = present & jnp.all(rows > 0, axis=-1)
    r_out = width if r == c else r
    rows = jnp.pad(rows, ((0, 0), (0, r_out - r), (0, width - c)))
    present = jnp.pad(present, ((0, 0), (0, r_out - r)))
    v = present.astype(jnp.float32)
    a = rows * v[..., None]
    la = jnp.log(jnp.maximum(rows, eps)) * v[..., None]
    return jnp.concatenate([a.reshape(b, -1), la.reshape(b, -1), v], axis=-1)


def cdal_features(
    seg_probs: ArrayLike,
    det_probs: ArrayLike,
    det_valid: ArrayLike,
    *,
    det_form: str = "vector",
    eps: float = 1e-30,
    drop_zero_rows: bool = True,
    pixel_valid: ArrayLike | None = None,
) -> jax.Array:
    """Packed CDAL features of both tasks (layout: module docstring).

    Both tasks are padded to W = max(C_seg, C_det) classes, so the layout (and the
    distance) follows from F alone: see ``feature_dim``.

    Args:
      seg_probs: [B, h, w, C_seg].
      det_probs: [B, K, C_det].
      det_valid: [B, K] bool.
      det_form: see ``det_contextual_diversity``.
      eps: probability clip inside the logs (1e-30: the reference's unclipped logs to
        float32 precision; see the module docstring).
      drop_zero_rows: drop rows holding an exact zero, as the reference's NaN rule does.
      pixel_valid: [B, h, w] bool or None (all pixels); padding pixels are left out of P^c.

    Returns:
      [B, F] float32, F = ``feature_dim(W, det_form)``.
    """
    width = max(jnp.shape(seg_probs)[-1], jnp.shape(det_probs)[-1])
    seg = _pack(*seg_contextual_diversity(seg_probs, pixel_valid), width, eps, drop_zero_rows)
    det = _pack(
        *det_contextual_diversity(det_probs, det_valid, form=det_form), width, eps, drop_zero_rows
    )
    return jnp.concatenate([seg, det], axis=-1)


def feature_dim(width: int, det_form: str = "vector") -> int:
    """F of a packed CDAL feature with W = ``width`` = max(C_seg, C_det) classes."""
    seg = 2 * width * width + width
    return seg + (2 * width + 1 if det_form == "vector" else seg)


def _width_from_dim(dim: int, det_form: str) -> int:
    for width in range(1, dim + 1):
        if feature_dim(width, det_form) == dim:
            return width
        if feature_dim(width, det_form) > dim:
            break
    raise ValueError(f"{dim} is not the length of a packed CDAL feature (det_form={det_form!r})")


def _rows_sym_kl(x, y, rows, classes, reduce):
    """Row-wise symmetric KL between packed features x [N, F'] and y [M, F'] -> [N, M]."""
    rc = rows * classes
    a, la, va = x[:, :rc], x[:, rc : 2 * rc], x[:, 2 * rc :]
    b, lb, vb = y[:, :rc], y[:, rc : 2 * rc], y[:, 2 * rc :]
    hi = jax.lax.Precision.HIGHEST
    sa = jnp.sum((a * la).reshape(-1, rows, classes), -1)  # [N, R] sum_c a log a
    sb = jnp.sum((b * lb).reshape(-1, rows, classes), -1)  # [M, R]
    # sum over rows valid in both of 0.5 sum_c (a - b)(log a - log b); absent rows are 0.
    total = 0.5 * (
        jnp.dot(sa, vb.T, precision=hi)
        + jnp.dot(va, sb.T, precision=hi)
        - jnp.dot(a, lb.T, precision=hi)
        - jnp.dot(la, b.T, precision=hi)
    )  # [N, M]
    total = jnp.maximum(total, 0.0)
    if reduce == "sum":
        return total
    count = jnp.dot(va, vb.T, precision=hi)  # [N, M] rows valid in both
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), 0.0)


def make_cdal_distance(
    *,
    det_form: str = "vector",
    row_reduce: str = "mean",
    seg_weight: float = 1.0,
    det_weight: float = 1.0,
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """CDAL distance on packed features (a ``selection.DistanceFn``).

    Args:
      det_form: as used to build the features.
      row_reduce: ``"mean"`` (CDAL-CS) or ``"sum"`` (CDAL-RL reward) over shared rows.
      seg_weight: weight of the segmentation distance.
      det_weight: weight of the detection distance.

    Returns:
      ``(x [N, F], y [M, F]) -> [N, M]`` float32 >= 0.

    Raises:
      ValueError: for an unknown ``det_form`` or ``row_reduce`` (at once), or a feature
        length that no class count produces (when called).
    """
    if det_form not in DET_FORMS:
        raise ValueError(f"unknown CDAL det_form {det_form!r}; valid: {DET_FORMS}")
    if row_reduce not in ROW_REDUCES:
        raise ValueError(f"unknown CDAL row_reduce {row_reduce!r}; valid: {ROW_REDUCES}")

    def distance(x: jax.Array, y: jax.Array) -> jax.Array:
        w = _width_from_dim(x.shape[-1], det_form)
        fs = 2 * w * w + w
        rd = 1 if det_form == "vector" else w
        x = x.astype(jnp.float32)
        y = y.astype(jnp.float32)
        d_seg = _rows_sym_kl(x[:, :fs], y[:, :fs], w, w, row_reduce)
        d_det = _rows_sym_kl(x[:, fs:], y[:, fs:], rd, w, row_reduce)
        return seg_weight * d_seg + det_weight * d_det

    return distance
