"""A light FPN: top-down merge of all backbone stages into one stride-4 map."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtal_jax.models import conv


def upsample2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2 upsampling: [B, h, w, C] -> [B, 2h, 2w, C]."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class FPN(nn.Module):
    """Laterals (1x1) to ``channels``, top-down x2 nearest upsampling with add, 3x3 output conv.

    Attributes:
      channels: width of every FPN level and of the output.
    """

    channels: int = 64

    @nn.compact
    def __call__(self, stages: list[jax.Array]) -> jax.Array:
        """Top-down fusion of the backbone stages.

        Args:
          stages: [B, H/4, W/4, C1], [B, H/8, W/8, C2], ...

        Returns:
          [B, H/4, W/4, channels].
        """
        x = conv.Conv(self.channels, (1, 1), name=f"lateral{len(stages)}")(stages[-1])
        for i in range(len(stages) - 2, -1, -1):
            lateral = conv.Conv(self.channels, (1, 1), name=f"lateral{i + 1}")(stages[i])
            x = lateral + upsample2x(x)
        return nn.relu(conv.Conv(self.channels, (3, 3), name="out")(x))
