"""``python -m mtal_jax.data summary``: prepares if needed, last line is the JSON summary."""

import json
import pathlib
import subprocess
import sys

import pytest

from mtal_jax.data import __main__ as cli
from tests import fixtures_camvid

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_summary_of_a_tiny_camvid_folder(tmp_path, capsys):
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    # configs/camvid.py with min_area 16 (it ships 256): the fixture's cars are 4x4.
    config = tmp_path / "camvid_min16.py"
    config.write_text(
        "from configs import camvid\n\n\ndef get_config(arg=None):\n"
        "    config = camvid.get_config(arg)\n"
        "    config.data.builder_kwargs['min_area'] = 16\n"
        "    return config\n"
    )
    argv = [
        "summary",
        "--config",
        str(config),
        "--data-root",
        str(root),
        "--data-dir",
        str(tmp_path / "tfds"),
    ]
    assert cli.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == {
        "splits": {
            "train": {"images": 3, "boxes_per_class": {"car": 3, "pedestrian": 0, "bicyclist": 0}}
        }
    }  # min_area 16: only the 4x4 car of each frame
    assert cli.main(argv) == 0  # The second call reads the prepared cache.
    assert capsys.readouterr().out.strip().splitlines()[-1] == last


def test_seg_weights_of_a_tiny_camvid_folder(tmp_path, capsys):
    # Every frame: 716 road pixels, 20 car pixels, 32 void (not counted); both classes in
    # all 3 frames: freq road 716/736, car 20/736, median 0.5; absent classes weigh 0.
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    argv = ["seg-weights", "--config", "configs/camvid.py", "--data-root", str(root),
            "--data-dir", str(tmp_path / "tfds")]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    expected = [0.0] * 11
    expected[3], expected[8] = round(0.5 * 736 / 716, 4), round(0.5 * 736 / 20, 4)
    assert out[-1] == f'--config.loss.seg_class_weights="{tuple(expected)}"'
    assert any(line.split()[:3] == ["road", "pixels", str(3 * 716)] for line in out)


def test_summary_of_real_camvid_from_the_command_line(shared_data, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtal_jax.data",
            "summary",
            "--config",
            "configs/camvid.py",
            "--data-dir",
            str(tmp_path / "tfds"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    # Regression values at 240x180 with the config's min_area 256 (with 64: train 842 / 401 /
    # 119, test 262 / 258 / 38; with 16: train 1204 / 927 / 204, close to the data folder's
    # SOURCE.md 1231 / 928 / 198 at 480x360 with 64 px).
    assert summary == {
        "splits": {
            "train": {
                "images": 367,
                "boxes_per_class": {"car": 549, "pedestrian": 92, "bicyclist": 51},
            },
            "test": {
                "images": 233,
                "boxes_per_class": {"car": 161, "pedestrian": 50, "bicyclist": 23},
            },
        }
    }


def test_a_missing_dataset_folder_is_one_line_naming_this_commands_option(tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["summary", "--config", str(REPO / "configs" / "camvid.py"),
                        "--data-root", str(tmp_path / "nope"), "--data-dir", str(tmp_path)])  # fmt: skip
    message = str(exc.value.code)
    assert message.startswith("error: CamVid files not found") and "\n" not in message
    assert "set --data-root to the CamVid folder" in message and "--config.data" not in message


def test_mtal_traceback_shows_the_data_clis_errors_with_their_traceback(tmp_path, monkeypatch):
    """``MTAL_TRACEBACK=1``: the error itself is raised instead of the one line."""
    from mtal_jax.data import catalog

    monkeypatch.setenv("MTAL_TRACEBACK", "1")
    with pytest.raises(catalog.DataRootError, match="CamVid files not found"):
        cli.main(["summary", "--config", str(REPO / "configs" / "camvid.py"),
                  "--data-root", str(tmp_path / "nope"), "--data-dir", str(tmp_path)])  # fmt: skip


def test_a_damaged_dataset_file_and_a_foreign_option_are_one_line(tmp_path):
    # A label PNG cut short: the reader's DatasetError, naming the file, as one line; and
    # builder_kwargs of another dataset (the synthetic default's size options) on CamVid.
    root = fixtures_camvid.write_tiny_camvid(tmp_path / "camvid")
    label = min((root / "trainannot").glob("*.png"))
    label.write_bytes(label.read_bytes()[:40])
    argv = ["summary", "--config", str(REPO / "configs" / "camvid.py"), "--data-root",
            str(root), "--data-dir", str(tmp_path / "tfds")]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    message = str(exc.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert label.name in message
    config = tmp_path / "camvid_foreign.py"
    config.write_text(
        "from configs import camvid\n\n\ndef get_config(arg=None):\n"
        "    config = camvid.get_config(arg)\n"
        "    config.data.builder_kwargs = {'height': 64, 'min_area': 16}\n"
        "    return config\n"
    )
    with pytest.raises(SystemExit) as exc:
        cli.main(["summary", "--config", str(config), "--data-root", str(root),
                  "--data-dir", str(tmp_path / "tfds2")])  # fmt: skip
    assert str(exc.value.code) == (
        "error: config.data.builder_kwargs sets ['height'], not options of dataset 'camvid' "
        "(its options: min_area, on_error); a config written for another dataset keeps its "
        "builder_kwargs: replace them, e.g. --config.data.builder_kwargs='{}'"
    )


def test_train_py_prints_a_dataset_error_as_one_line(tmp_path):
    # The tiny config pointed at a COCO-style folder without replacing the synthetic
    # default's builder_kwargs: one line naming the options, before any work.
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    (tmp_path / "coco" / "annotations" / "instances_train.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/tiny.py", "--workdir",
         str(tmp_path / "run"), "--noprogress", "--config.data.name=coco_folder",
         f"--config.data.root={tmp_path / 'coco'}", f"--config.data.data_dir={tmp_path / 'tfds'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: config.data.builder_kwargs sets [") and "'height'" in last
    assert "its options: splits, images_dir" in last
    assert "Traceback" not in result.stderr
