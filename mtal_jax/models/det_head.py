"""CenterNet-style detection head at stride 4 (paper III-A; docs/design.md)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax

from mtal_jax.models import conv

HEATMAP_PRIOR = 0.1  # initial peak probability; bias = -log((1 - p) / p) = -2.19 (CenterNet)


class _Branch(nn.Module):
    channels: int
    out: int
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(conv.Conv(self.channels, (3, 3), name="conv")(x))
        return conv.Conv(
            self.out, (1, 1), bias_init=nn.initializers.constant(self.bias_init), name="out"
        )(x)


class CenterNetHead(nn.Module):
    """Class heat map, box size and centre offset branches.

    Attributes:
      num_classes: C_det.
      channels: hidden width of each branch.
    """

    num_classes: int
    channels: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Args: x [B, h, w, F]. Returns heatmap logits [B, h, w, C_det], size [B, h, w, 2]
        (w, h in cells, non-negative), offset [B, h, w, 2] (x, y in cells)."""
        bias = -math.log((1.0 - HEATMAP_PRIOR) / HEATMAP_PRIOR)
        heat = _Branch(self.channels, self.num_classes, bias, name="heatmap")(x)
        size = jax.nn.softplus(_Branch(self.channels, 2, name="size")(x))
        offset = _Branch(self.channels, 2, name="offset")(x)
        return heat, size, offset
