"""EfficientNet-Lite0 in plain torch.nn, the independent reference of ``models.efficientnet``,
and a small state dict of every tensor type ``models.torch_file`` reads (used by
tests/test_efficientnet.py and tests/make_torch_fixtures.py; need torch)."""

import math

from mtal_jax.models import efficientnet


def torch_twin(torch):
    """EfficientNet-Lite0 in plain torch.nn with the PyTorch checkpoint's module names and
    TF "SAME" padding by ``F.pad`` (as lukemelas' Conv2dStaticSamePadding)."""
    nn, F = torch.nn, torch.nn.functional

    class SameConv(nn.Conv2d):
        def forward(self, x):
            (ih, iw), (kh, kw), (s, _) = x.shape[-2:], self.kernel_size, self.stride
            ph = max((math.ceil(ih / s) - 1) * s + kh - ih, 0)
            pw = max((math.ceil(iw / s) - 1) * s + kw - iw, 0)
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
            return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, cin, cout, k, s, e):
            super().__init__()
            c = cin * e
            if e != 1:
                self._expand_conv, self._bn0 = SameConv(cin, c, 1, bias=False), bn(c)
            self._depthwise_conv = SameConv(c, c, k, s, groups=c, bias=False)
            self._bn1 = bn(c)
            self._project_conv, self._bn2 = SameConv(c, cout, 1, bias=False), bn(cout)
            self.residual = s == 1 and cin == cout

        def forward(self, x):
            y = x
            if hasattr(self, "_expand_conv"):
                y = F.relu6(self._bn0(self._expand_conv(y)))
            y = F.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return x + y if self.residual else y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), bn(32)
            blocks, self.outputs, cin = [], [], 32
            for i, st in enumerate(efficientnet.STAGES):
                for j in range(st.repeats):
                    blocks.append(
                        Block(cin, st.width, st.kernel, st.stride if j == 0 else 1, st.expand)
                    )
                    cin = st.width
                if i in efficientnet.OUTPUT_STAGES:
                    self.outputs.append(len(blocks) - 1)
            self._blocks = nn.ModuleList(blocks)
            self._conv_head, self._bn1 = SameConv(320, 1280, 1, bias=False), bn(1280)
            self._fc = nn.Linear(1280, 1000)

        def forward(self, x):
            x, outs = F.relu6(self._bn0(self._conv_stem(x))), []
            for i, b in enumerate(self._blocks):
                x = b(x)
                if i in self.outputs:
                    outs.append(x)
            return outs

    return Net()


def small_state(torch):
    """Every storage type the reader supports, and views sharing one storage."""
    g = torch.Generator().manual_seed(0)
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    return {
        "f32": torch.randn(3, 4, generator=g),
        "f64": torch.randn(5, dtype=torch.float64, generator=g),
        "f16": torch.randn(2, 3, generator=g).half(),
        "i64": torch.tensor([1, -2, 2**40]),
        "i32": torch.tensor([7, -8], dtype=torch.int32),
        "i16": torch.tensor([300, -3], dtype=torch.int16),
        "i8": torch.tensor([-5, 6], dtype=torch.int8),
        "u8": torch.arange(7, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),  # shares base's storage, stride (1, 10)
        "sliced": base[2:5, 3:9:2],  # storage offset 23, stride (10, 2)
        "base": base,
    }
