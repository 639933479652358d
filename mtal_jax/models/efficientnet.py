"""EfficientNet-Lite0 feature extractor and the converter of its ImageNet PyTorch weights.

EfficientNet-Lite (Tan & Le, 2019, the "Lite" variant for mobile accelerators): the
EfficientNet-B0 layout with ReLU6 instead of swish, no squeeze-and-excitation, and the stem
(32 channels) and head fixed. Convolutions pad like TensorFlow ``"SAME"`` (flax's
``"SAME"``), batch norm has epsilon 1e-3 and momentum 0.99, convolutions have no bias.
Depthwise convolutions are shifted multiply-adds (``depthwise_conv``), not grouped
convolutions, for speed on XLA:CPU; the kernel layout is flax's ([k, k, 1, C]).

``STAGES`` is the block table; the model returns the outputs of stages 2, 3, 5 and 7, at
strides 4, 8, 16, 32 with 24, 40, 112 and 320 channels (the 1280-channel head and the
classifier are left out).

``convert_efficientnet_lite0`` maps a state dict in the naming of the PyTorch
EfficientNet-Lite0 ImageNet weights (``_conv_stem.weight``, ``_blocks.N._expand_conv.weight``,
``_blocks.N._bn0.running_mean``, ...; read with ``torch_file.read_state_dict``) to our flat
``params/...`` and ``batch_stats/...`` paths.

Input scaling: those weights appear to expect the TF-Lite preprocessing ``(rgb - 127) / 128``
(``normalize_images``) rather than ImageNet mean/std: on street images the stem's batch
statistics match its running statistics far better that way, and the classifier is more
confident (checked on 8 images; no labelled ImageNet images were at hand).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtal_jax.models import conv


class Stage(NamedTuple):
    kernel: int
    stride: int  # of the first block; the others have stride 1
    expand: int  # expansion ratio of the inverted bottleneck
    width: int  # output channels
    repeats: int


STAGES: tuple[Stage, ...] = (
    Stage(3, 1, 1, 16, 1),
    Stage(3, 2, 6, 24, 2),
    Stage(5, 2, 6, 40, 2),
    Stage(3, 2, 6, 80, 3),
    Stage(5, 1, 6, 112, 3),
    Stage(5, 2, 6, 192, 4),
    Stage(3, 1, 6, 320, 1),
)
STEM_WIDTH = 32
OUTPUT_STAGES = (1, 2, 4, 6)
"""Indices into ``STAGES`` of the returned outputs (strides 4, 8, 16, 32)."""
CHANNELS = tuple(STAGES[i].width for i in OUTPUT_STAGES)
"""Channels of the returned outputs: (24, 40, 112, 320)."""


def _norm(train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3, name=name)


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    """Depthwise convolution with TF "SAME" padding, as k*k shifted multiply-adds.

    Equal to ``lax.conv_general_dilated(..., feature_group_count=C)`` but many times faster
    on XLA:CPU, forward and backward (one 5x5 layer on [8, 32, 40, 240]: 4.8 vs 90 ms).

    Args:
      x: [B, H, W, C].
      kernel: [k, k, 1, C] (flax's grouped-conv layout).
      stride: the same in both spatial dimensions.

    Returns:
      [B, ceil(H / stride), ceil(W / stride), C].
    """
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1:3]
    oh, ow = -(-h // stride), -(-w // stride)
    ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
    x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    span_h, span_w = (oh - 1) * stride + 1, (ow - 1) * stride + 1
    return sum(
        x[:, i : i + span_h : stride, j : j + span_w : stride, :] * kernel[i, j, 0]
        for i in range(kh)
        for j in range(kw)
    )


class DepthwiseConv(nn.Module):
    """kxk depthwise convolution without bias (``depthwise_conv``); kernel [k, k, 1, C]."""

    kernel_size: int
    stride: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, x.shape[-1]))
        return depthwise_conv(x, kernel, self.stride)


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expansion (when ``expand`` > 1), depthwise kxk, 1x1
    projection; residual when the stride is 1 and the channels are unchanged."""

    width: int
    kernel: int
    stride: int
    expand: int

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        """[B, H, W, C_in] -> [B, H/stride, W/stride, width]."""
        c = x.shape[-1]
        y = x
        if self.expand != 1:
            y = conv.Conv(c * self.expand, (1, 1), use_bias=False, name="expand")(y)
            y = nn.relu6(_norm(train, "bn_expand")(y))
        y = DepthwiseConv(self.kernel, self.stride, name="depthwise")(y)
        y = nn.relu6(_norm(train, "bn_depthwise")(y))
        y = conv.Conv(self.width, (1, 1), use_bias=False, name="project")(y)
        y = _norm(train, "bn_project")(y)
        if self.stride == 1 and c == self.width:
            y = x + y
        return y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 feature extractor (no head, no classifier)."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> list[jax.Array]:
        """Returns the outputs of the stride-4, 8, 16 and 32 stages.

        Args:
          x: [B, H, W, 3] float32 normalised images (see ``normalize_images``), H and W
            divisible by 32.
          train: batch statistics (True) or running averages (False).

        Returns:
          [B, H/s, W/s, C_s] float32 for s = 4, 8, 16, 32 and C_s = 24, 40, 112, 320.
        """
        x = conv.Conv(STEM_WIDTH, (3, 3), (2, 2), "SAME", use_bias=False, name="stem")(x)
        x = nn.relu6(_norm(train, "bn_stem")(x))
        outputs = []
        for i, st in enumerate(STAGES):
            for j in range(st.repeats):
                stride = st.stride if j == 0 else 1
                name = f"stage{i + 1}_block{j + 1}"
                x = MBConv(st.width, st.kernel, stride, st.expand, name=name)(x, train=train)
            if i in OUTPUT_STAGES:
                outputs.append(x)
        return outputs


def normalize_images(images: jax.Array) -> jax.Array:
    """Maps uint8-range RGB [..., 3] to the TF-Lite input scaling ``(x - 127) / 128``, float32."""
    return (images.astype(jnp.float32) - 127.0) / 128.0


def _block_names() -> list[str]:
    """Module name of each block in torch order (``_blocks.N`` -> ``[N]``)."""
    return [f"stage{i + 1}_block{j + 1}" for i, st in enumerate(STAGES) for j in range(st.repeats)]


def variable_shapes() -> dict[str, tuple[int, ...]]:
    """Flat path (``params/stem/kernel``, ``batch_stats/bn_stem/mean``, ...) -> shape, of
    every variable of ``EfficientNetLite0``."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(conv: str, bn: str, kernel: tuple[int, ...]) -> None:
        shapes[f"params/{conv}/kernel"] = kernel
        for leaf, col in (("scale", "params"), ("bias", "params")):
            shapes[f"{col}/{bn}/{leaf}"] = (kernel[-1],)
        for leaf in ("mean", "var"):
            shapes[f"batch_stats/{bn}/{leaf}"] = (kernel[-1],)

    conv_bn("stem", "bn_stem", (3, 3, 3, STEM_WIDTH))
    names = iter(_block_names())
    c = STEM_WIDTH
    for st in STAGES:
        for _ in range(st.repeats):
            b, e = next(names), c * st.expand
            if st.expand != 1:
                conv_bn(f"{b}/expand", f"{b}/bn_expand", (1, 1, c, e))
            conv_bn(f"{b}/depthwise", f"{b}/bn_depthwise", (st.kernel, st.kernel, 1, e))
            conv_bn(f"{b}/project", f"{b}/bn_project", (1, 1, e, st.width))
            c = st.width
    return shapes


_PARTS = {
    "_expand_conv": "expand",
    "_bn0": "bn_expand",
    "_depthwise_conv": "depthwise",
    "_bn1": "bn_depthwise",
    "_project_conv": "project",
    "_bn2": "bn_project",
}
_BN = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}
_HEAD = re.compile(r"_conv_head\.weight|_bn1\.\w+|_fc\.(weight|bias)")


def convert_efficientnet_lite0(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch EfficientNet-Lite0 names -> our flat paths (``params/...``, ``batch_stats/...``).

    Args:
      state: torch name -> array, e.g. ``_blocks.3._depthwise_conv.weight`` [144, 1, 5, 5].
        Conv kernels are OIHW (depthwise: [C, 1, k, k]).

    Returns:
      flat path -> float32 array (kernels HWIO; depthwise [k, k, 1, C]), exactly the keys
      and shapes of ``variable_shapes()``. The head (``_conv_head``, ``_bn1``), the
      classifier (``_fc``) and ``num_batches_tracked`` are dropped.

    Raises:
      ValueError: a key this converter does not know, a missing variable, or a wrong shape
        (naming them).
    """
    blocks = _block_names()
    out = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name.endswith("num_batches_tracked") or _HEAD.fullmatch(name):
            continue
        m = re.fullmatch(r"_(conv_stem|bn0)\.(\w+)", name)
        if m:
            module = "stem" if m.group(1) == "conv_stem" else "bn_stem"
            leaf = m.group(2)
        else:
            m = re.fullmatch(r"_blocks\.(\d+)\.(_\w+?)\.(\w+)", name)
            if not m or int(m.group(1)) >= len(blocks) or m.group(2) not in _PARTS:
                raise ValueError(f"unknown EfficientNet-Lite0 key {name!r}")
            module = f"{blocks[int(m.group(1))]}/{_PARTS[m.group(2)]}"
            leaf = m.group(3)
        if leaf == "weight" and value.ndim == 4:  # OIHW -> HWIO; depthwise [C,1,k,k] -> [k,k,1,C]
            out[f"params/{module}/kernel"] = value.transpose(2, 3, 1, 0)
        elif leaf in _BN and value.ndim == 1:
            col = "batch_stats" if leaf.startswith("running_") else "params"
            out[f"{col}/{module}/{_BN[leaf]}"] = value
        else:
            raise ValueError(f"unknown EfficientNet-Lite0 key {name!r} (shape {value.shape})")
    shapes = variable_shapes()
    missing = sorted(set(shapes) - set(out))
    if missing:
        raise ValueError(f"EfficientNet-Lite0 weights miss {len(missing)} variables: {missing[:5]}")
    unexpected = sorted(set(out) - set(shapes))
    if unexpected:
        raise ValueError(f"unknown EfficientNet-Lite0 variables: {unexpected[:5]}")
    bad = [f"{k}: {v.shape} vs {shapes[k]}" for k, v in out.items() if v.shape != shapes[k]]
    if bad:
        raise ValueError(f"wrong EfficientNet-Lite0 weight shapes: {bad[:5]}")
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}
