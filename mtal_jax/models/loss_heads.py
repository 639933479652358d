"""LL4AL loss-prediction modules (Yoo & Kweon, CVPR 2019), one per task (paper III-A, IV-B).

Each module pools every backbone stage (GAP -> Dense(hidden) -> ReLU), concatenates the
levels and predicts one scalar loss. The multi-task network carries two of them:
detection and segmentation (the MTAL paper's variant; docs/baselines.md, "LL4AL").
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class LossPredictionHead(nn.Module):
    """Predicts per-image (detection, segmentation) losses from backbone stages.

    Attributes:
      hidden: width of each per-stage projection (reference: 128).
      num_tasks: number of predicted losses (2: detection, segmentation).
    """

    hidden: int = 128
    num_tasks: int = 2

    @nn.compact
    def __call__(self, stages: list[jax.Array], detach: jax.Array | bool = False) -> jax.Array:
        """Args:
          stages: backbone outputs, [B, h_s, w_s, C_s] each.
          detach: scalar bool; when True no gradient flows from this module into the
            backbone (reference: detach after epoch 120; CALD's detection port: always).

        Returns:
          [B, num_tasks] float32 predicted losses.
        """
        outs = []
        for t in range(self.num_tasks):
            pooled = []
            for i, f in enumerate(stages):
                f = jnp.mean(f, axis=(1, 2))  # [B, C_s]
                f = jnp.where(detach, jax.lax.stop_gradient(f), f)
                pooled.append(nn.relu(nn.Dense(self.hidden, name=f"task{t}_fc{i + 1}")(f)))
            outs.append(nn.Dense(1, name=f"task{t}_out")(jnp.concatenate(pooled, -1))[:, 0])
        return jnp.stack(outs, axis=-1)


def margin_ranking_loss(pred: jax.Array, target: jax.Array, *, margin: float = 1.0) -> jax.Array:
    """LL4AL loss-prediction loss on pairs (i, B-1-i) of a batch.

    sign = +1 where target_i > target_j else -1 (ties count as -1, the reference quirk);
    loss = sum_pairs max(0, margin - sign * (pred_i - pred_j)) / (B / 2). The target is
    detached.

    Args:
      pred: [B] predicted losses, B even.
      target: [B] true per-image losses.
      margin: xi (reference 1.0).

    Returns:
      scalar float32.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(margin_ranking_loss(jnp.array([2.0, 0.0]), jnp.array([1.0, 0.0])))
      0.0
    """
    b = pred.shape[0]
    if b % 2:
        raise ValueError(f"LL4AL ranking loss needs an even batch, got {b}")
    target = jax.lax.stop_gradient(target)
    half = b // 2
    d_pred = pred[:half] - pred[::-1][:half]
    d_true = target[:half] - target[::-1][:half]
    sign = jnp.where(d_true > 0, 1.0, -1.0)
    return jnp.sum(jnp.maximum(0.0, margin - sign * d_pred)) / half
