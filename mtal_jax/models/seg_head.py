"""Semantic segmentation head: logits over C_seg at the input map's stride.

Paper III-A; docs/design.md.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from mtal_jax.models import conv


class SegHead(nn.Module):
    """3x3 conv, ReLU, 1x1 conv to C_seg logits.

    Attributes:
      num_classes: C_seg.
      channels: hidden width.
    """

    num_classes: int
    channels: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, h, w, F]. Returns logits [B, h, w, C_seg]."""
        x = nn.relu(conv.Conv(self.channels, (3, 3), name="conv")(x))
        return conv.Conv(self.num_classes, (1, 1), name="out")(x)
