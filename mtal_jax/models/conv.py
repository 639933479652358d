"""Convolutions of the network: ``flax.linen.Conv`` whose pointwise (1x1) convolutions are
matrix products.

XLA:CPU runs every convolution through its own convolution kernels, even a 1x1 one, which
is a product over the channels; its matrix products go through a faster library (YNNPACK).
Forward and backward of one 1x1 convolution on [8, 64, 80, 16] -> 96 channels take 172 ms
as a convolution and 49 ms as a product, and the CamVid network (EfficientNet-Lite0,
mostly 1x1 convolutions) trains its step 1.34-1.67x faster (three measurements on a noisy
box; docs/benchmarks.md, "Pointwise convolutions as matrix products", which also gives
what was tried for the kxk ones).
``Conv`` is ``flax.linen.Conv`` with ``conv_general_dilated`` below: the same parameters
(names, shapes, initialisers), so checkpoints and the packaged pretrained weights load
unchanged; outputs and gradients are the same sums in another order (equal to float32
rounding).

Only XLA:CPU gets the products (``products_pay``): XLA:GPU lowers a 1x1 convolution to
cuDNN or cuBLAS itself, and its Triton GEMM fusion aborted while compiling the product form
of our evaluation step (jax 0.11.2 on an H100, 2026-12-06: ``triton_tiling_propagation.cc``
"Check failed: subdim_size_accumulator == dim_size"; docs/benchmarks.md, "GPU check").
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
from jax import lax


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: lax.ConvDimensionNumbers | None = None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision: lax.PrecisionLike = None,
    preferred_element_type: jax.typing.DTypeLike | None = None,
) -> jax.Array:
    """``lax.conv_general_dilated``, computed as a matrix product when it is one.

    A pointwise convolution (``is_pointwise``: kernel 1 in every spatial dimension, no
    dilation, no padding, one group, channels last as ``flax.linen.Conv`` lays them out)
    takes every ``stride``-th position of ``lhs`` [B, *S, C_in] (all of them at stride 1)
    and contracts it with ``rhs`` [1, ..., 1, C_in, C_out] over C_in (``lax.dot_general``),
    giving [B, *ceil(S / stride), C_out], on a CPU backend (``products_pay``). Anything
    else, and everything on another backend, is passed to ``lax.conv_general_dilated``
    unchanged.
    """
    args = (
        lhs.ndim, rhs.shape, window_strides, padding, lhs_dilation, rhs_dilation,
        dimension_numbers, feature_group_count, batch_group_count,
    )  # fmt: skip
    if products_pay() and is_pointwise(*args):
        kernel = rhs.reshape(rhs.shape[-2:])  # [C_in, C_out]
        if any(s != 1 for s in window_strides):  # a 1x1 kernel pads nothing, even "SAME"
            lhs = lhs[(slice(None), *(slice(None, None, s) for s in window_strides))]
        return lax.dot_general(
            lhs,
            kernel,
            (((lhs.ndim - 1,), (0,)), ((), ())),
            precision=precision,
            preferred_element_type=preferred_element_type,
        )
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, batch_group_count=batch_group_count,
        precision=precision, preferred_element_type=preferred_element_type,
    )  # fmt: skip


def products_pay() -> bool:
    """Whether pointwise convolutions are computed as products: when JAX's default backend
    (the one a jitted function without placement runs on) is the CPU."""
    return jax.default_backend() == "cpu"


def is_pointwise(
    ndim: int,
    kernel_shape: Sequence[int],
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None,
    rhs_dilation: Sequence[int] | None,
    dimension_numbers: lax.ConvDimensionNumbers | None,
    feature_group_count: int,
    batch_group_count: int,
) -> bool:
    """Whether ``lax.conv_general_dilated`` with these arguments is a product over the
    channels of a channels-last ``lhs`` (``ndim`` dimensions: batch, spatial, channels),
    subsampled by the strides, with a [1, ..., 1, C_in, C_out] kernel. "SAME" and "VALID"
    pad a 1x1 kernel by nothing at any stride (both give ceil(S / stride) positions)."""
    n = ndim - 2  # spatial dimensions
    ones = (1,) * n
    channels_last = lax.ConvDimensionNumbers(  # flax.linen.Conv's [B, *S, C], [*K, C_in, C_out]
        lhs_spec=(0, n + 1, *range(1, n + 1)),
        rhs_spec=(n + 1, n, *range(n)),
        out_spec=(0, n + 1, *range(1, n + 1)),
    )
    no_padding = padding in ("SAME", "VALID") or (
        not isinstance(padding, str) and all(tuple(p) == (0, 0) for p in padding)
    )
    return (
        n >= 1
        and dimension_numbers == channels_last
        and tuple(kernel_shape[:n]) == ones
        and tuple(lhs_dilation or ones) == ones
        and tuple(rhs_dilation or ones) == ones
        and no_padding
        and feature_group_count == 1
        and batch_group_count == 1
    )


Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)
"""``flax.linen.Conv`` with ``conv_general_dilated`` above (the same arguments, parameters
and outputs)."""
