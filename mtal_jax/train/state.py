"""Training state: plain data (docs/design.md §7)."""

from __future__ import annotations

import flax.struct
import jax
import optax

from mtal_jax.models import multitask


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training.

    Attributes:
      step: scalar int32 number of optimizer steps taken.
      params: model parameters.
      batch_stats: BatchNorm running statistics.
      opt_state: optax state.
    """

    step: jax.Array
    params: dict
    batch_stats: dict
    opt_state: optax.OptState


def create_train_state(
    model: multitask.Model,
    tx: optax.GradientTransformation,
    key: jax.Array,
    image_hw: tuple[int, int],
) -> TrainState:
    """Initialises parameters, BatchNorm statistics and optimizer state."""
    variables = multitask.create_variables(model, key, image_hw)
    params = variables["params"]
    return TrainState(
        step=jax.numpy.zeros((), jax.numpy.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
    )


def create_optimizer(
    *,
    learning_rate: float,
    warmup_steps: int,
    total_steps: int,
    weight_decay: float,
    grad_clip_norm: float,
) -> optax.GradientTransformation:
    """AdamW with linear warm-up and cosine decay, gradient clipping by global norm."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        learning_rate,
        max(warmup_steps, 1),
        max(total_steps, warmup_steps + 1),
        learning_rate * 0.01,
    )
    return optax.chain(
        optax.clip_by_global_norm(grad_clip_norm), optax.adamw(schedule, weight_decay=weight_decay)
    )
