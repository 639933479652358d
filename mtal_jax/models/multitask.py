"""The multi-task network: shared backbone + FPN, CenterNet detection head, segmentation head.

Backbones (``BACKBONES``): the ResNet variants of ``backbone.VARIANTS`` and
``"efficientnet_lite0"`` (``efficientnet``; ImageNet weights from a registry package,
``models.pretrained``). Each brings its own input scaling (``normalize``). Whatever the
backbone, its variables live under the top-level name ``resnet`` (the name predates the
EfficientNet variant; kept so that checkpoints and weight files written before it load).

``Model.__call__`` always returns raw outputs (``structs.Outputs``), in train and eval mode
alike; decoding, losses and scores are separate pure functions (docs/design.md §7).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtal_jax import structs
from mtal_jax.models import backbone, det_head, efficientnet, loss_heads, neck, seg_head

STRIDE = 4  # output stride of both heads

EFFICIENTNET_LITE0 = "efficientnet_lite0"
BACKBONES: tuple[str, ...] = (*backbone.VARIANTS, EFFICIENTNET_LITE0)
"""Valid values of ``Model.backbone`` (``config.model.backbone``)."""


def check_backbone(name: str) -> None:
    """Raises ``ValueError`` naming the option and the valid values when ``name`` is unknown."""
    if name not in BACKBONES:
        raise ValueError(
            f"unknown backbone {name!r} (config.model.backbone); valid: {', '.join(BACKBONES)}"
        )


def normalize(name: str, images: jax.Array) -> jax.Array:
    """The input scaling backbone ``name`` was trained with: uint8-range RGB -> float32.

    ResNets: ImageNet mean / std (torchvision's); EfficientNet-Lite0: ``(x - 127) / 128``
    (TF-Lite's, which its ImageNet weights expect).
    """
    if name == EFFICIENTNET_LITE0:
        return efficientnet.normalize_images(images)
    return backbone.normalize_images(images)


class Model(nn.Module):
    """Shared backbone, detection head and segmentation head (paper III-A; docs/design.md).

    Attributes:
      num_det_classes: C_det.
      num_seg_classes: C_seg.
      backbone: one of ``BACKBONES`` ("test", "tiny", "small", "resnet18/34/50",
        "efficientnet_lite0").
      neck_channels: FPN width.
      head_channels: hidden width of the heads.
      loss_prediction: add the two LL4AL loss-prediction modules (``Outputs.loss_pred``).
    """

    num_det_classes: int
    num_seg_classes: int
    backbone: str = "tiny"
    neck_channels: int = 64
    head_channels: int = 64
    loss_prediction: bool = False

    def setup(self):
        check_backbone(self.backbone)
        if self.backbone == EFFICIENTNET_LITE0:
            self.resnet = efficientnet.EfficientNetLite0()
        else:
            self.resnet = backbone.ResNet(self.backbone)
        self.fpn = neck.FPN(self.neck_channels)
        self.det = det_head.CenterNetHead(self.num_det_classes, self.head_channels)
        self.seg = seg_head.SegHead(self.num_seg_classes, self.head_channels)
        if self.loss_prediction:
            self.loss_pred_head = loss_heads.LossPredictionHead()

    def __call__(
        self, images: jax.Array, *, train: bool, detach_loss_features: jax.Array | bool = False
    ) -> structs.Outputs:
        """Runs the whole network.

        Args:
          images: [B, H, W, 3] uint8 (or float in [0, 255]) RGB, H and W divisible by 32.
          train: use batch statistics and update them (``mutable=["batch_stats"]``).
          detach_loss_features: scalar bool, stop LL4AL gradients into the backbone.

        Returns:
          ``structs.Outputs`` with maps at stride 4 (h = H / 4, w = W / 4).
        """
        _check_size(images)
        stages = self.resnet(normalize(self.backbone, images), train=train)
        features = self.fpn(stages)
        heat, size, offset = self.det(features)
        loss_pred = (
            self.loss_pred_head(stages, detach_loss_features) if self.loss_prediction else None
        )
        return structs.Outputs(
            heatmap_logits=heat,
            box_size=size,
            box_offset=offset,
            seg_logits=self.seg(features),
            embedding=jnp.mean(stages[-1], axis=(1, 2)),
            loss_pred=loss_pred,
        )

    def segment(self, images: jax.Array) -> jax.Array:
        """Backbone + neck + segmentation head only, eval mode (BoxMask crops).

        Args:
          images: [B, H, W, 3] uint8-range RGB, H and W divisible by 32.

        Returns:
          [B, H/4, W/4, C_seg] float32 logits.
        """
        _check_size(images)
        stages = self.resnet(normalize(self.backbone, images), train=False)
        return self.seg(self.fpn(stages))


def _check_size(images: jax.Array) -> None:
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [B, H, W, 3], got shape {images.shape}")
    if images.shape[1] % 32 or images.shape[2] % 32:
        raise ValueError(f"image height and width must be divisible by 32, got {images.shape[1:3]}")


def create_variables(model: Model, key: jax.Array, image_hw: tuple[int, int]) -> dict:
    """Initialises ``{"params", "batch_stats"}`` for images of size ``image_hw``.

    Jitted, once per (model, image size) in a process (and from XLA's persistent cache after
    that): op by op, the first initialisation of a process compiled every layer's operations
    one at a time (1.4-1.6x slower than jitted with a cold cache, 9-11x with a warm one:
    docs/benchmarks.md, "First model initialisation"); the values are bit for bit the same
    (``tests/test_models.py``).
    """
    return dict(_init(model, key, tuple(int(d) for d in image_hw)))


@functools.partial(jax.jit, static_argnames=("model", "image_hw"))
def _init(model: Model, key: jax.Array, image_hw: tuple[int, int]) -> dict:
    return model.init(key, jnp.zeros((1, *image_hw, 3), jnp.uint8), train=False)
