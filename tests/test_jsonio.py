"""The one atomic-write helper (``jsonio.write_file_atomic``) and strict JSON."""

import math
import os

import numpy as np
import pytest

from mtal_jax import jsonio


def test_write_file_atomic_replaces_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    jsonio.write_file_atomic(str(path), lambda f: f.write(b"one"), binary=True)
    jsonio.write_file_atomic(str(path), lambda f: f.write(b"two"), binary=True, mode=0o640)
    assert path.read_bytes() == b"two"
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.bin"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    jsonio.write_file_atomic(str(path), lambda f: f.write("old"))

    def fail(f):
        f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        jsonio.write_file_atomic(str(path), fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_write_atomic_is_strict_json_and_never_rewrites_when_asked(tmp_path):
    path = str(tmp_path / "x.json")
    jsonio.write_atomic(path, {"a": np.float32(1.5), "b": math.nan, "c": (1, np.int64(2))})
    assert jsonio.read(path) == {"a": 1.5, "b": None, "c": [1, 2]}
    with pytest.raises(FileExistsError, match="never rewritten"):
        jsonio.write_atomic(path, {}, overwrite=False)


def test_fsync_tree_flushes_every_file_and_folder(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "x.json").write_text("1")
    (tree / "a" / "b" / "y.npz").write_bytes(b"2")
    os.symlink(tree / "x.json", tree / "link")  # not followed
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: flushed.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd)
    )
    jsonio.fsync_tree(str(tree))
    want = {
        tree / "x.json",
        tree / "a" / "b" / "y.npz",
        tree,
        tree / "a",
        tree / "a" / "b",
        tmp_path,
    }
    assert {os.path.realpath(p) for p in flushed} == {os.path.realpath(p) for p in want}
