"""ResNet backbones (BasicBlock for 18/34, Bottleneck for 50) plus small CPU variants.

``VARIANTS`` is the local variant table (docs/design.md §7 allows it): name -> (blocks per
stage, channels per stage, bottleneck, stem channels, stem kind). Every variant returns
its stage outputs at strides 4, 8, 16, 32 (fewer stages: the first ones).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from mtal_jax.models import conv


class Variant(NamedTuple):
    blocks: tuple[int, ...]
    widths: tuple[int, ...]
    bottleneck: bool
    stem_width: int
    stem_7x7: bool  # ResNet stem (7x7 s2 conv + 3x3 s2 max-pool) vs two cheap 3x3 s2 convs
    # (the 7x7 variants pad like torchvision, whose ImageNet weights they load: see ResNet)


VARIANTS: dict[str, Variant] = {
    # Test-only: 2 stages (strides 4, 8), a few thousand parameters.
    "test": Variant((1, 1), (8, 16), False, 8, False),
    # CPU default: ~0.7 M parameters.
    "tiny": Variant((1, 1, 1, 1), (16, 32, 64, 128), False, 16, False),
    "small": Variant((2, 2, 2, 2), (32, 64, 128, 256), False, 32, False),
    "resnet18": Variant((2, 2, 2, 2), (64, 128, 256, 512), False, 64, True),
    "resnet34": Variant((3, 4, 6, 3), (64, 128, 256, 512), False, 64, True),
    "resnet50": Variant((3, 4, 6, 3), (64, 128, 256, 512), True, 64, True),
}


def _norm(train: bool, name: str | None = None, scale_init=nn.initializers.ones) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=scale_init, name=name
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    width: int
    stride: int = 1
    padding: Any = "SAME"  # of the 3x3 convolutions (ResNet: "SAME" or torchvision's)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        s = (self.stride, self.stride)
        y = conv.Conv(self.width, (3, 3), s, self.padding, use_bias=False, name="conv1")(x)
        y = nn.relu(_norm(train, "bn1")(y))
        y = conv.Conv(self.width, (3, 3), padding=self.padding, use_bias=False, name="conv2")(y)
        y = _norm(train, "bn2", nn.initializers.zeros)(y)
        if x.shape[-1] != self.width or self.stride != 1:
            x = conv.Conv(self.width, (1, 1), s, use_bias=False, name="proj")(x)
            x = _norm(train, "bn_proj")(x)
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4) residual block (ResNet-50)."""

    width: int
    stride: int = 1
    padding: Any = "SAME"  # of the 3x3 convolution (ResNet: "SAME" or torchvision's)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        s = (self.stride, self.stride)
        out = self.width * 4
        y = nn.relu(
            _norm(train, "bn1")(conv.Conv(self.width, (1, 1), use_bias=False, name="conv1")(x))
        )
        y = conv.Conv(self.width, (3, 3), s, self.padding, use_bias=False, name="conv2")(y)
        y = nn.relu(_norm(train, "bn2")(y))
        y = conv.Conv(out, (1, 1), use_bias=False, name="conv3")(y)
        y = _norm(train, "bn3", nn.initializers.zeros)(y)
        if x.shape[-1] != out or self.stride != 1:
            x = _norm(train, "bn_proj")(conv.Conv(out, (1, 1), s, use_bias=False, name="proj")(x))
        return nn.relu(x + y)


class ResNet(nn.Module):
    """ResNet feature extractor.

    The 7x7-stem variants (``resnet18/34/50``) load torchvision's ImageNet weights
    (``models.pretrained``), so they pad like torchvision: ``k // 2`` on every side. Flax's
    "SAME" pads a stride-2 layer of an even-sized input only after (3x3: (0, 1); 7x7:
    (2, 3)), which samples every downsampling layer one pixel off the grid those weights
    were trained on and puts a block's stride-2 3x3 branch one pixel off its 1x1 shortcut.
    The other variants are trained from scratch and keep "SAME".

    Attributes:
      variant: a key of ``VARIANTS``.
    """

    variant: str = "tiny"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> list[jax.Array]:
        """Returns the stage outputs.

        Args:
          x: [B, H, W, 3] float32 normalised images, H and W divisible by 32.
          train: batch statistics (True) or running averages (False).

        Returns:
          One [B, H/s, W/s, C_s] array per stage, strides s = 4, 8, 16, 32.
        """
        v = VARIANTS[self.variant]
        padding = ((1, 1), (1, 1)) if v.stem_7x7 else "SAME"  # of the 3x3 convolutions
        if v.stem_7x7:
            x = conv.Conv(
                v.stem_width, (7, 7), (2, 2), ((3, 3), (3, 3)), use_bias=False, name="stem"
            )(x)
            x = nn.relu(_norm(train, "bn_stem")(x))
            x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))  # pads with -inf
        else:
            x = conv.Conv(v.stem_width, (3, 3), (2, 2), use_bias=False, name="stem1")(x)
            x = nn.relu(_norm(train, "bn_stem1")(x))
            x = conv.Conv(v.stem_width, (3, 3), (2, 2), use_bias=False, name="stem2")(x)
            x = nn.relu(_norm(train, "bn_stem2")(x))
        block = Bottleneck if v.bottleneck else BasicBlock
        stages = []
        for i, (n, w) in enumerate(zip(v.blocks, v.widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                name = f"stage{i + 1}_block{j + 1}"
                x = block(w, stride, padding, name=name)(x, train=train)
            stages.append(x)
        return stages


def normalize_images(images: jax.Array) -> jax.Array:
    """Maps uint8-range RGB [..., 3] to ImageNet-normalised float32."""
    mean = jnp.array([0.485, 0.456, 0.406], jnp.float32) * 255.0
    std = jnp.array([0.229, 0.224, 0.225], jnp.float32) * 255.0
    return (images.astype(jnp.float32) - mean) / std
