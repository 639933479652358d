"""Sim-to-real pretraining: the synthetic config it derives, and weights the target loads."""

import os

import jax
import numpy as np
import pytest

from configs import default, tiny
from mtal_jax import sim2real
from mtal_jax.al import experiment
from mtal_jax.models import multitask, pretrained


def test_synthetic_config_takes_the_targets_size_and_network():
    target = tiny.get_config()
    target.data.image_size = (96, 128)
    target.model.pretrained_backbone = "/somewhere/weights.npz"
    cfg = sim2real.synthetic_config(target, default.get_config(), eval_images=20)
    assert cfg.data.name == "synthetic_driving"
    assert tuple(cfg.data.image_size) == (96, 128)
    assert (cfg.data.builder_kwargs["height"], cfg.data.builder_kwargs["width"]) == (96, 128)
    assert cfg.data.builder_kwargs["num_train"] == 2400  # the synthetic config's pool
    assert cfg.model.backbone == "test" and cfg.model.neck_channels == 16
    assert cfg.model.pretrained_backbone == "" and cfg.eval.max_images == 20
    assert "street_furniture" not in cfg.data.builder_kwargs  # the default scenes
    cfg = sim2real.synthetic_config(
        target, default.get_config(), eval_images=20, street_furniture=True
    )
    assert cfg.data.builder_kwargs["street_furniture"] is True
    cfg = sim2real.synthetic_config(
        target, default.get_config(), eval_images=20, init_backbone="imagenet:x"
    )
    assert cfg.model.pretrained_backbone == "imagenet:x"  # the start, not the target's output
    not_synthetic = default.get_config()
    not_synthetic.data.name = "camvid"
    with pytest.raises(ValueError, match="synthetic"):
        sim2real.synthetic_config(target, not_synthetic, eval_images=1)


@pytest.mark.slow  # prepares a tiny synthetic dataset and trains twice (~1-2 min loaded)
def test_pretrain_writes_weights_the_target_loads_and_resumes(tmp_path):
    target = tiny.get_config()
    target.data.data_dir = str(tmp_path / "tfds")
    synthetic = tiny.get_config()
    synthetic.data.data_dir = str(tmp_path / "tfds")
    out = str(tmp_path / "weights" / "s2r.npz")
    kwargs = {"out": out, "workdir": str(tmp_path / "run"), "steps": 2, "eval_images": 8}
    record = sim2real.pretrain(target, synthetic, progress=False, **kwargs)
    assert record["steps"] == 2 and record["best_step"] == 2
    assert os.path.isfile(out[: -len(".npz")] + ".json")
    with np.load(out) as data:
        first = {k: data[k] for k in data.files}
    assert any(k.startswith(pretrained.NECK_PREFIX) for k in first)
    # Again: the finished run is resumed, nothing is retrained, the same weights are written.
    sim2real.pretrain(target, synthetic, progress=False, **kwargs)
    with np.load(out) as data:
        assert data.files == list(first)
        for k in data.files:
            np.testing.assert_array_equal(data[k], first[k])
    # The target loads them into backbone and neck; its heads keep their initialisation.
    target.model.pretrained_backbone = out
    setup = experiment.build_setup(target)
    fresh = multitask.create_variables(setup.model, jax.random.key(7), setup.spec.image_hw)
    loaded = pretrained.load_backbone(fresh, out)
    flat = pretrained._module_flat(loaded, "fpn")
    for k, v in flat.items():
        np.testing.assert_array_equal(v, first[pretrained.NECK_PREFIX + k])
    for k, v in pretrained._module_flat(loaded, "resnet").items():
        np.testing.assert_array_equal(v, first[k])
    jax.tree.map(np.testing.assert_array_equal, loaded["params"]["det"], fresh["params"]["det"])


def test_missing_weights_fail_before_the_data_is_prepared(tmp_path):
    config = tiny.get_config()
    config.data.data_dir = str(tmp_path / "tfds")
    config.model.pretrained_backbone = str(tmp_path / "absent.npz")
    with pytest.raises(pretrained.WeightsNotFoundError, match="mtal_jax.sim2real"):
        experiment.build_setup(config)
    assert not (tmp_path / "tfds").exists()


@pytest.mark.slow  # a train.py subprocess (JAX import)
def test_train_cli_missing_weights_is_one_line(tmp_path):
    import subprocess
    import sys

    absent = tmp_path / "absent.npz"
    result = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/tiny.py", "--workdir",
         str(tmp_path / "w"), f"--config.model.pretrained_backbone={absent}",
         f"--config.data.data_dir={tmp_path / 'tfds'}", "--noprogress"],
        check=False, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(absent) in last and "mtal_jax.sim2real" in last
    assert "Traceback" not in result.stderr
