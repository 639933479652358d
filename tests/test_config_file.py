"""Tests of config_file.py: config files with presets and overrides outside absl's flags."""

import os

import pytest

from configs import camvid, default
from mtal_jax import config_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_presets_and_overrides_as_train_py_would_read_them():
    path = os.path.join(ROOT, "configs", "default.py")
    assert config_file.load(path).to_dict() == default.get_config().to_dict()
    table1 = config_file.load(f"{path}:table1")
    assert table1.to_dict() == default.get_config("table1").to_dict()
    got = config_file.load(
        os.path.join(ROOT, "configs", "camvid.py"),
        ["train.cycle_epochs=3", "data.image_size=[192,256]", "al.strategies=ours,random"],
    )
    want = camvid.get_config()
    assert got.train.cycle_epochs == 3 and list(got.data.image_size) == [192, 256]
    assert got.al.strategies == "ours,random"  # not JSON: kept as a string
    assert got.model.to_dict() == want.model.to_dict()
    # what train.py's absl flags accept, parsed by the field's type (a TypeError before)
    got = config_file.load(
        os.path.join(ROOT, "configs", "tiny.py"),
        ["data.image_size=(64,64)", "model.loss_prediction=False", "data.root=2024",
         "train.learning_rate=1e-3"],
    )  # fmt: skip
    assert got.data.image_size == (64, 64) and got.model.loss_prediction is False
    assert got.data.root == "2024" and got.train.learning_rate == 1e-3


def test_bad_specs_and_overrides_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file .*nowhere.py not found"):
        config_file.load(str(tmp_path / "nowhere.py:repro"))
    path = os.path.join(ROOT, "configs", "tiny.py")
    with pytest.raises(ValueError, match=r"has no config key 'train.cycle_epoch'"):
        config_file.load(path, ["train.cycle_epoch=3"])
    with pytest.raises(ValueError, match=r"has no config key 'trian.steps'"):
        config_file.load(path, ["trian.steps=3"])
    with pytest.raises(ValueError, match="expected key.path=value"):
        config_file.load(path, ["train.steps"])
    with pytest.raises(ValueError, match=r"override 'train.batch_size=abc' of .*tiny.py: "):
        config_file.load(path, ["train.batch_size=abc"])  # ConfigDict's type check
    with pytest.raises(ValueError, match="unknown preset"):
        config_file.load(os.path.join(ROOT, "configs", "default.py") + ":nope")
