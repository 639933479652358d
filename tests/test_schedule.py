"""Schedules in passes over the pool (mtal_jax.al.schedule) and the missing-data message."""

import ml_collections
import pytest

from mtal_jax.al import schedule
from mtal_jax.data import catalog


def test_paper_numbers_convert_to_the_papers_steps():
    # nuImages front camera: 13,187 images, batch 4, 30,000 steps per cycle, 300,000 reference.
    passes = 30_000 * 4 / 13_187
    assert 9.0 < passes < 9.2
    assert schedule.passes_to_steps(passes, 13_187, 4) == 30_000
    assert schedule.passes_to_steps(10 * passes, 13_187, 4) == 300_000
    assert schedule.steps_to_passes(30_000, 13_187, 4) == pytest.approx(passes)


def test_steps_scale_with_pool_and_batch_and_round_up():
    assert schedule.passes_to_steps(3, 2400, 16) == 450
    assert schedule.passes_to_steps(3, 4800, 16) == 900
    assert schedule.passes_to_steps(3, 2400, 32) == 225
    assert schedule.passes_to_steps(1, 10, 4) == 3  # a partial last batch still counts
    assert schedule.passes_to_steps(0.001, 10, 4) == 1
    with pytest.raises(ValueError, match="> 0"):
        schedule.passes_to_steps(0, 10, 4)


def test_explicit_steps_override_passes_and_cycle0_falls_back():
    s = schedule.resolve(pool_size=2400, batch_size=16, cycle_epochs=3, reference_epochs=12)
    assert s == schedule.Schedule(cycle_steps=450, initial_steps=450, reference_steps=1800)
    s = schedule.resolve(
        pool_size=2400, batch_size=16, cycle_epochs=3, initial_epochs=10, reference_epochs=12,
        steps=7, full_steps=9,
    )  # fmt: skip
    assert s == schedule.Schedule(cycle_steps=7, initial_steps=1500, reference_steps=9)
    with pytest.raises(ValueError, match="train.reference_epochs"):
        schedule.resolve(pool_size=10, batch_size=2, cycle_epochs=1)


def test_from_config_reads_old_configs_without_epoch_keys():
    train = ml_collections.ConfigDict({"batch_size": 4, "steps": 6, "full_steps": 8})
    assert schedule.from_config(train, 40) == schedule.Schedule(6, 6, 8)


@pytest.mark.parametrize("name", ["nuimages", "a9", "camvid", "coco_folder"])
def test_missing_data_root_is_one_line_naming_the_option(tmp_path, name):
    data_dir = tmp_path / "tfds"
    for root in ("", str(tmp_path / "absent"), str(tmp_path / "empty")):
        if root.endswith("empty"):  # a folder without the files: found after TFDS fails
            (tmp_path / "empty").mkdir()
        with pytest.raises(catalog.DataRootError) as err:
            catalog.prepare(name, data_dir=str(data_dir), root=root)
        message = str(err.value)
        assert "\n" not in message and "--config.data.root" in message, message
        if not root.endswith("empty"):  # unset or absent: caught before any preparation
            assert not data_dir.exists()


def test_check_root_accepts_a_complete_nuimages_layout(tmp_path):
    for table in ("v1.0-train", "v1.0-val"):
        (tmp_path / table).mkdir()
        (tmp_path / table / "category.json").write_text("[]")
    (tmp_path / "samples").mkdir()
    catalog.check_root("nuimages", str(tmp_path), {"splits": {"a": "v1.0-train", "b": "v1.0-val"}})
    with pytest.raises(catalog.DataRootError, match="v1.0-test"):
        catalog.check_root("nuimages", str(tmp_path), {"splits": {"a": "v1.0-test"}})
