"""select.py's output and input files: symlinks, pipes, devices, '-', folders, no leftover
temporary files; id files that are folders, pipes or binary; non-finite checkpoints."""

import json
import os
import threading

import jax
import numpy as np
import pytest

from mtal_jax import checkpointing, output_file
from mtal_jax.al import select_cli
from mtal_jax.train import finite, run_files
from tests.test_select_cli import trained  # noqa: F401  (module fixture: a 2-step run)


def _leftovers(folder):
    return [n for n in os.listdir(folder) if ".tmp" in n]


def test_regular_file_is_replaced_atomically_keeping_its_mode(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    path.chmod(0o640)
    output_file.write_text(str(path), "new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o640
    output_file.write_text(str(tmp_path / "fresh.csv"), "a,b\n")
    assert (tmp_path / "fresh.csv").read_text() == "a,b\n" and not _leftovers(tmp_path)


def test_symlink_is_written_through_to_its_target(tmp_path):
    target = tmp_path / "real" / "sel.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    output_file.write_text(str(link), "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert not _leftovers(tmp_path) and not _leftovers(target.parent)
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "not_yet.json")
    output_file.write_text(str(dangling), "x")
    assert dangling.is_symlink() and (tmp_path / "real" / "not_yet.json").read_text() == "x"


def test_named_pipe_and_character_device_are_streamed_to(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    output_file.write_text(str(fifo), "through the pipe")
    reader.join(timeout=10)
    assert got == ["through the pipe"] and fifo.exists() and not _leftovers(tmp_path)
    output_file.write_text(os.devnull, "discarded")  # /dev/null stays a device
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
    if os.path.exists("/dev/full"):  # Was replaced by a regular file when run as root.
        with pytest.raises(OSError, match="No space"):
            output_file.write_text("/dev/full", "x" * 100_000)
        assert not os.path.isfile("/dev/full")


def test_dash_writes_to_stdout(capsys):
    output_file.write_text("-", '{"selected": []}\n')
    assert capsys.readouterr().out == '{"selected": []}\n'


def test_folders_and_missing_folders_are_refused_without_leftovers(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        output_file.write_text(str(tmp_path), "x")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        output_file.check(str(tmp_path / "missing" / "sel.json"))
    link = tmp_path / "to_folder"
    link.symlink_to(tmp_path / "sub", target_is_directory=True)
    (tmp_path / "sub").mkdir()
    with pytest.raises(IsADirectoryError, match=r"to_folder \(-> .*sub\) is a folder"):
        output_file.check(str(link))
    assert not _leftovers(tmp_path)


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        output_file.write_text(str(tmp_path / "sel.json"), "x")
    assert os.listdir(tmp_path) == []


def test_id_files_that_are_folders_binary_or_pipes(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        select_cli.read_id_file(str(tmp_path))
    binary = tmp_path / "pool.bin"
    binary.write_bytes(b"img1\n\xff\xfe\x00img2\n")
    with pytest.raises(ValueError, match=r"pool.bin is not UTF-8 text \(byte 5\)"):
        select_cli.read_id_file(str(binary))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        select_cli.read_id_file(str(tmp_path / "missing.txt"))
    fifo = tmp_path / "pool_pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text('["a", "b"]'))
    writer.start()
    assert select_cli.read_id_file(str(fifo)) == ["a", "b"]  # read once, JSON list
    writer.join(timeout=10)


def test_a_runs_pool_json_names_its_labeled_images(tmp_path):
    ids = ["a", "b", "c", "d"]
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps({"labeled_ids": [3, 1], "num_labeled": 2, "pool_size": 4}))
    assert select_cli.read_id_file(str(pool), ids) == ["d", "b"]
    with pytest.raises(ValueError, match="pass it as --labeled"):
        select_cli.read_id_file(str(pool))  # as --pool: a pool.json lists labeled images
    with pytest.raises(ValueError, match="a pool of 4 images, but this config's pool has 3"):
        select_cli.read_id_file(str(pool), ids[:3])
    pool.write_text(json.dumps({"labeled_ids": [0, 7, True], "pool_size": 4}))
    with pytest.raises(ValueError, match=r"2 bad pool indices, e.g. \[7, True\]"):
        select_cli.read_id_file(str(pool), ids)
    pool.write_text(json.dumps({"ids": ["a"]}))
    with pytest.raises(ValueError, match="not a run's pool.json"):
        select_cli.read_id_file(str(pool), ids)


def test_select_writes_through_a_symlink_and_to_stdout(trained, tmp_path, capsys):  # noqa: F811
    config, run_dir, _ = trained
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    rows = select_cli.run(
        config, strategy="random", checkpoint=run_dir, budget=2, output=str(link), progress=False
    )
    assert link.is_symlink() and json.loads(target.read_text())["selected"] == rows
    capsys.readouterr()
    select_cli.run(
        config, strategy="random", checkpoint=run_dir, budget=2, output="-", progress=False
    )
    assert json.loads(capsys.readouterr().out)["selected"] == rows
    with pytest.raises(IsADirectoryError):  # refused before scoring
        select_cli.run(
            config, strategy="random", checkpoint=run_dir, budget=2, output=str(tmp_path)
        )
    assert not _leftovers(tmp_path)


def test_select_refuses_a_checkpoint_with_non_finite_parameters(trained, tmp_path):  # noqa: F811
    config, run_dir, _ = trained
    best = run_files.checkpoint_dir(run_dir)
    manager = checkpointing.make_manager(best, best_metric="metric")
    try:
        step = manager.best_step()
        state, meta = checkpointing.restore(manager, step, _like(config))
    finally:
        checkpointing.close(manager)
    poisoned = state.replace(
        params=jax.tree.map(lambda p: np.full_like(np.asarray(p), np.nan), state.params)
    )
    nan_dir = str(tmp_path / "nan_run" / "train" / "best")
    manager = checkpointing.make_manager(nan_dir, best_metric="metric")
    try:
        checkpointing.save(manager, step, poisoned, meta=meta, metrics={"metric": 1.0})
    finally:
        checkpointing.close(manager)
    out = tmp_path / "sel.json"
    with pytest.raises(finite.NonFiniteError, match="nan_run.*NaN or infinite"):
        select_cli.run(
            config, strategy="ours", checkpoint=str(tmp_path / "nan_run"), budget=2,
            output=str(out), progress=False,
        )  # fmt: skip
    assert not out.exists()


def _like(config):
    from mtal_jax.al import experiment
    from mtal_jax.train import state as state_lib

    setup = experiment.build_setup(config)
    cfg = experiment.train_config(config)
    tx = state_lib.create_optimizer(
        learning_rate=cfg.learning_rate, warmup_steps=cfg.lr_warmup_steps,
        total_steps=cfg.num_steps, weight_decay=cfg.weight_decay, grad_clip_norm=cfg.grad_clip_norm,
    )  # fmt: skip
    return jax.eval_shape(
        lambda: state_lib.create_train_state(
            setup.model, tx, jax.random.key(0), setup.spec.image_hw
        )
    )
