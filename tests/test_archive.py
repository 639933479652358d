"""Archived experiments (al.experiment.archive): a run directory without checkpoints, plus
the weights its unfinished runs continue from, resumes on a new directory to the same
records as an uninterrupted run."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from flax import traverse_util

from configs import tiny
from mtal_jax import jsonio
from mtal_jax.al import experiment
from mtal_jax.al.experiment import archive
from mtal_jax.train import run_files, weights_file
from tests import crashes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir):
    config = tiny.get_config()
    config.data.data_dir = str(data_dir)
    config.al.reference_map = 0.5  # no reference run: test_experiment covers it
    config.al.reference_miou = 0.5
    config.al.num_cycles = 3  # cycles 0, 1, 2: a strategy can stop after a finished cycle 1
    return config


def _same_weights(a, b):
    a, b = (traverse_util.flatten_dict(v, sep="/") for v in (a, b))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _key(records):
    return [(r["trial"], r["strategy"], r["cycle"], tuple(r["labeled_ids"])) for r in records]


def _same_records(got, want):
    assert _key(got) == _key(want)
    for g, w in zip(got, want):
        for k in ("map", "ap50", "miou"):
            assert g[k] == pytest.approx(w[k], abs=1e-6), (g["strategy"], g["cycle"], k)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    records = experiment.run(_config(data_dir), workdir, progress=False)
    return workdir, [r.to_json() for r in records]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, data_dir):
    """An experiment killed while training ``ours``' cycle 2 (the third training run, after
    cycle 0 and ours' cycle 1, crashes after a batch), archived."""
    workdir = str(tmp_path_factory.mktemp("stopped"))
    with crashes.in_training_run(3), pytest.raises(crashes.Crash):
        experiment.run(_config(data_dir), workdir, progress=False)
    out = str(tmp_path_factory.mktemp("archives") / "stopped")
    manifest = archive.save(workdir, out)
    return workdir, out, manifest


def _files(folder):
    return {
        os.path.relpath(os.path.join(r, n), folder)
        for r, _, names in os.walk(folder)
        for n in names
    }


def test_archive_keeps_records_and_only_the_weights_still_needed(stopped):
    workdir, out, manifest = stopped
    ours = os.path.join("trial_0", "ours")
    # ours continues from its cycle 1, random (not started) from the trial's cycle 0
    assert manifest["weights"] == [
        os.path.join(ours, "cycle_1"),
        os.path.join("trial_0", "cycle_0"),
    ]
    assert manifest["unfinished"] == [
        {"trial": 0, "strategy": "ours", "last_finished_cycle": 1},
        {"trial": 0, "strategy": "random", "last_finished_cycle": 0},
    ]
    assert manifest["finished_runs"] == 2 and manifest["records"] == 2
    files = _files(out)
    assert not any(
        os.sep + "latest" + os.sep in f or os.sep + "best" + os.sep in f for f in files
    )  # no checkpoint travels
    assert not any(f.startswith(".lock") or ".tmp" in f or "tfevents" in f for f in files)
    assert os.path.join("trial_0", "cycle_0", "logs", "metrics.jsonl") in files
    for rel in (
        "config.json",
        "results.json",
        archive.MANIFEST,
        os.path.join("trial_0", "cycle_0", "metrics.json"),
        os.path.join("trial_0", "cycle_0", "pool.json"),
        os.path.join("trial_0", "cycle_0", "train", "final_eval.json"),
        os.path.join(ours, "cycle_1", "selection.json"),
        os.path.join(ours, "cycle_1", "scores.npz"),
        os.path.join(ours, "cycle_2", "selection.json"),  # selected, training under way
    ):
        assert rel in files, rel
    assert {f for f in files if f.endswith(weights_file.FILENAME)} == {
        os.path.join(w, weights_file.FILENAME) for w in manifest["weights"]
    }
    assert jsonio.read(os.path.join(out, "results.json")) == jsonio.read(
        os.path.join(workdir, "results.json")
    )
    # the archive is much smaller than the run directory (its checkpoints stay behind)
    size = lambda d: sum(os.path.getsize(os.path.join(d, f)) for f in _files(d))
    assert size(out) < 0.5 * size(workdir)


def test_restored_archive_resumes_to_the_uninterrupted_records(
    stopped, uninterrupted, tmp_path, data_dir
):
    _, out, _ = stopped
    _, expected = uninterrupted
    workdir = str(tmp_path / "restored")
    archive.restore(out, workdir)
    records = [r.to_json() for r in experiment.run(_config(data_dir), workdir, progress=False)]
    _same_records(records, expected)
    # archiving the finished experiment keeps no weights, and resuming it trains nothing
    again = str(tmp_path / "finished_archive")
    manifest = archive.save(workdir, again)
    assert manifest["weights"] == [] and manifest["unfinished"] == []
    final = str(tmp_path / "final")
    archive.restore(again, final)
    with crashes.in_training_run(1):  # would raise if any run trained
        records = [r.to_json() for r in experiment.run(_config(data_dir), final, progress=False)]
    _same_records(records, expected)
    # --keep: finished runs whose weights the analyses read later
    kept = archive.save(
        workdir, str(tmp_path / "kept"), keep=["trial_0/cycle_0", "trial_0/*/cycle_2"]
    )
    runs = [os.path.join("trial_0", "cycle_0")] + [
        os.path.join("trial_0", s, "cycle_2") for s in ("ours", "random")
    ]
    assert kept["weights"] == runs and kept["keep"] == ["trial_0/cycle_0", "trial_0/*/cycle_2"]
    for run in runs:
        run_files.check_weights(os.path.join(tmp_path, "kept", run))


def test_archived_weights_equal_the_checkpoint_and_load_like_it(stopped, data_dir):
    workdir, out, _ = stopped
    config = _config(data_dir)
    setup = experiment.build_setup(config)
    run = os.path.join("trial_0", "cycle_0")
    from_ckpt = run_files.load_variables(
        os.path.join(workdir, run), setup.model, setup.train_cfg, setup.spec
    )
    from_file = run_files.load_variables(
        os.path.join(out, run), setup.model, setup.train_cfg, setup.spec
    )
    _same_weights(from_ckpt, from_file)
    run_files.check_weights(os.path.join(out, run))  # select.py's fail-fast check accepts it
    with pytest.raises(FileNotFoundError, match="weights.npz"):
        run_files.check_weights(os.path.join(out, "trial_0", "ours", "cycle_2"))


def test_weights_of_another_model_are_refused_naming_the_file(tmp_path, stopped, data_dir):
    _, out, _ = stopped
    setup = experiment.build_setup(_config(data_dir))
    path = os.path.join(out, "trial_0", "cycle_0", weights_file.FILENAME)
    like = weights_file.load(path)
    like["params"]["extra"] = {"kernel": np.zeros(3, np.float32)}
    bad = tmp_path / "bad" / weights_file.FILENAME
    weights_file.save(str(bad), like)
    with pytest.raises(
        ValueError, match=r"bad/weights.npz does not match.*unexpected \['params/extra"
    ):
        run_files.load_variables(str(bad.parent), setup.model, setup.train_cfg, setup.spec)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable weights file"):
        weights_file.load(str(tmp_path / "junk.npz"))


def test_missing_weights_stop_the_resume_naming_the_run(stopped, tmp_path, data_dir):
    _, out, _ = stopped
    workdir = str(tmp_path / "no_weights")
    archive.restore(out, workdir)
    os.remove(os.path.join(workdir, "trial_0", "ours", "cycle_1", weights_file.FILENAME))
    with pytest.raises(RuntimeError, match=r"ours/cycle_1 finished, but its weights are not"):
        experiment.run(_config(data_dir), workdir, progress=False)


def test_an_unfinished_run_s_marker_stays_behind_and_every_trial_is_archived(stopped, tmp_path):
    workdir, _, _ = stopped
    copy = str(tmp_path / "copy")
    shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns(".lock*"))
    # ours' cycle 2 (unfinished) with its final evaluation's marker, as a kill between the
    # marker and metrics.json leaves it: the archive has no checkpoint, so no marker either
    marker = os.path.join("trial_0", "ours", "cycle_2", *run_files.FINAL_EVAL)
    jsonio.write_atomic(os.path.join(copy, marker), {"step": 1})
    # config.json keeps the first session's al.run_trials (an order key): a session that ran
    # trial 1 only must not make the archive skip trial 0's runs and weights
    config = jsonio.read(os.path.join(copy, "config.json"))
    config["al"]["run_trials"] = "1"
    jsonio.write_atomic(os.path.join(copy, "config.json"), config)
    assert archive.read_plan(copy).run_trials == ()
    manifest = archive.save(copy, str(tmp_path / "out"))
    files = _files(str(tmp_path / "out"))
    assert marker not in files
    assert os.path.join("trial_0", "cycle_0", *run_files.FINAL_EVAL) in files  # finished: kept
    assert manifest["weights"] == stopped[2]["weights"]  # trial 0's, as before


def test_restore_refuses_a_used_directory_and_a_non_archive(stopped, tmp_path):
    workdir, out, _ = stopped
    with pytest.raises(FileExistsError, match="not empty"):
        archive.restore(out, workdir)
    with pytest.raises(FileNotFoundError, match="not an experiment archive"):
        archive.restore(workdir, str(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="holds no experiment"):
        archive.save(str(tmp_path), str(tmp_path / "y"))


def test_a_failed_save_leaves_the_previous_archive(stopped, tmp_path):
    workdir, out, _ = stopped
    target = str(tmp_path / "arch")
    shutil.copytree(out, target)
    before = _files(target)

    def failing(run_dir):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        archive.save(workdir, target, load_variables=failing)
    assert _files(target) == before
    assert os.listdir(tmp_path) == ["arch"]  # no temporary folder left behind


def test_a_save_with_nothing_new_leaves_the_archive_as_it_was(stopped, tmp_path):
    """Saving the same run directory again keeps the archive (its ``saved_at`` too: no
    spurious change to commit) and leaves no temporary folder; any changed byte, or a file
    more, replaces it."""
    workdir, out, _ = stopped
    run = str(tmp_path / "run")
    shutil.copytree(workdir, run)
    target = str(tmp_path / "arch")
    first = archive.save(run, target)
    inode = os.stat(target).st_ino
    again = archive.save(run, target)
    assert first["changed"] and not again["changed"]
    assert {**again, "changed": True} == first and os.stat(target).st_ino == inode
    assert sorted(os.listdir(tmp_path)) == ["arch", "run"]
    assert archive.same_archive(target, target) and not archive.same_archive(target, out + "x")
    log = next(os.path.join(d, "metrics.jsonl") for d, _, names in os.walk(run)
               if "metrics.jsonl" in names)  # fmt: skip
    with open(log, "a") as f:
        f.write("{}\n")
    archive.save(run, target)
    assert os.stat(target).st_ino != inode  # replaced
    inode = os.stat(target).st_ino
    with open(os.path.join(run, "notes.json"), "w") as f:
        f.write("{}")
    archive.save(run, target)
    assert os.stat(target).st_ino != inode and "notes.json" in os.listdir(target)


def test_two_saves_of_one_archive_at_once_take_turns(stopped, tmp_path, monkeypatch):
    """Two saves into the same archive at once (a manual save while continue.sh refreshes
    it; here two threads of one process, which would even share the temporary folder's
    name): the folder lock makes the second wait, so both succeed, the archive is the one
    saved last, complete, and nothing is left beside it."""
    import threading

    workdir, _, _ = stopped
    runs = [str(tmp_path / "run_a"), str(tmp_path / "run_b")]
    for run in runs:
        shutil.copytree(workdir, run)
    (tmp_path / "run_b" / "notes.json").write_text("{}")  # the two saves differ
    target = str(tmp_path / "arch")
    load = archive.variables_loader(workdir)
    slow_compare = archive.same_archive

    def same_archive_slowly(a, b):  # widens the window between writing and renaming
        time.sleep(0.5)
        return slow_compare(a, b)

    monkeypatch.setattr(archive, "same_archive", same_archive_slowly)
    done, errors = [], []

    def save(run):
        try:
            archive.save(run, target, load_variables=load)
            done.append(run)
        except Exception as e:  # noqa: BLE001  (reported by the assertion below)
            errors.append(e)

    threads = [threading.Thread(target=save, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(done) == sorted(runs)
    last = done[-1]
    assert ("notes.json" in os.listdir(target)) == (last == runs[1])
    assert jsonio.read(os.path.join(target, archive.MANIFEST))["source"] == last
    assert sorted(os.listdir(tmp_path)) == ["arch", "run_a", "run_b"]
    # a restore or recovery from a mistyped path creates no folder on the way
    with pytest.raises(FileNotFoundError):
        archive.restore(str(tmp_path / "typo" / "arch"), str(tmp_path / "new"))
    assert archive.recover(str(tmp_path / "other" / "deeper" / "arch")) is None
    assert sorted(os.listdir(tmp_path)) == ["arch", "run_a", "run_b"]


def test_a_later_save_removes_what_a_killed_save_left(tmp_path):
    """A session killed mid-save leaves ``<archive>.tmp<pid>`` (or ``.old<pid>``): removed
    once its process is gone and it is an hour old; a live or recent one, another archive's,
    and an ``.old`` folder while the archive itself is missing, are left alone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone, live = int(dead.stdout), os.getpid()
    out = tmp_path / "arch"

    def leftover(name, age_s):
        path = tmp_path / name
        path.mkdir()
        (path / "results.json").write_text("[]")
        t = os.path.getmtime(path) - age_s
        os.utime(path, (t, t))
        return str(path)

    stale_tmp = leftover(f"arch.tmp{gone}", 7200)
    stale_old = leftover(f"arch.old{gone}", 7200)
    kept = [
        leftover(f"arch.tmp{live}", 7200),  # its save may still run
        leftover(f"arch.tmp{gone}0", 60),  # recent (a save on another machine)
        leftover(f"archive2.tmp{gone}", 7200),  # another archive's
    ]
    assert archive.remove_stale_leftovers(str(out)) == [stale_tmp]  # no archive: .old kept
    out.mkdir()
    (out / archive.MANIFEST).write_text("{}")
    assert archive.remove_stale_leftovers(str(out)) == [stale_old]
    assert sorted(os.listdir(tmp_path)) == sorted(["arch", *(os.path.basename(k) for k in kept)])


def test_an_archive_a_save_left_missing_between_its_renames_is_put_back(stopped, tmp_path):
    _, out, _ = stopped
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(gone.stdout)  # a process that has ended
    base = str(tmp_path / "arch")
    shutil.copytree(out, f"{base}.old{pid}")  # the previous archive, moved aside
    shutil.copytree(out, f"{base}.tmp{pid}")  # the new one, complete, not renamed yet
    jsonio.write_atomic(os.path.join(f"{base}.tmp{pid}", "newer"), 1)
    shutil.copytree(out, f"{base}.tmp{pid + 1}")  # a save still being written: no manifest
    os.remove(os.path.join(f"{base}.tmp{pid + 1}", archive.MANIFEST))
    workdir = str(tmp_path / "restored")
    archive.restore(base, workdir)  # puts the newer one back first
    assert os.path.exists(os.path.join(base, "newer")) and not os.path.exists(f"{base}.tmp{pid}")
    assert os.path.exists(os.path.join(workdir, archive.MANIFEST))
    assert archive.recover(base) is None  # nothing to do while the archive is in place
    # the CLI (experiments/continue.sh runs it before it looks for an archive)
    shutil.rmtree(f"{base}.old{pid}")  # (the older copy a later save would remove)
    os.rename(base, f"{base}.old{pid}")
    got = subprocess.run(
        [sys.executable, "-m", "mtal_jax.al.archive_cli", "recover", base], cwd=ROOT,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert os.path.exists(os.path.join(base, archive.MANIFEST))


def test_cli_usage_and_errors(stopped, tmp_path):
    def cli(*args):
        cmd = [sys.executable, "-m", "mtal_jax.al.archive_cli", *args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)

    bad = cli("keep", "a", "b")
    assert bad.returncode != 0 and "usage: python -m mtal_jax.al.archive_cli save" in bad.stderr
    missing = cli("restore", str(tmp_path / "none"), str(tmp_path / "w"))
    assert missing.returncode == 1 and "is not an experiment archive" in missing.stderr
    workdir, _, _ = stopped
    saved = cli("save", workdir, str(tmp_path / "a"), "--keep=trial_0/*/cycle_1")
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert "archived" in saved.stderr and "2 records" in saved.stderr  # the log line shows
    assert jsonio.read(str(tmp_path / "a" / archive.MANIFEST))["keep"] == ["trial_0/*/cycle_1"]
    again = cli("save", workdir, str(tmp_path / "a"), "--keep=trial_0/*/cycle_1")
    assert again.returncode == 0 and "nothing new: kept the archive of" in again.stderr
    assert cli("check", workdir, str(tmp_path / "a")).returncode == 0
    behind = cli("check", str(tmp_path / "empty"), str(tmp_path / "a"))
    assert behind.returncode == 1 and "holds 2 records that" in behind.stderr


def test_a_usage_error_prints_before_jax_is_imported():
    # the command line is checked first: JAX, orbax and the data modules take seconds
    code = (
        "import runpy, sys\n"
        "sys.argv = ['archive_cli', 'keep', 'a', 'b']\n"
        "try:\n"
        "    runpy.run_module('mtal_jax.al.archive_cli', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    print(e.code, 'jax' in sys.modules, 'orbax' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1", "False", "False"]
    assert "usage: python -m mtal_jax.al.archive_cli save" in out.stderr


def test_a_restored_run_stopped_again_archives_its_kept_weights(stopped, tmp_path, data_dir):
    """Session after session: the weights kept by one archive travel on to the next."""
    _, out, first = stopped
    workdir = str(tmp_path / "second_session")
    archive.restore(out, workdir)
    with crashes.in_training_run(1), pytest.raises(crashes.Crash):  # ours' cycle 2 again
        experiment.run(_config(data_dir), workdir, progress=False)
    again = str(tmp_path / "second_archive")
    manifest = archive.save(workdir, again)
    assert manifest["weights"] == first["weights"]
    for rel in manifest["weights"]:
        _same_weights(
            weights_file.load(os.path.join(out, rel, weights_file.FILENAME)),
            weights_file.load(os.path.join(again, rel, weights_file.FILENAME)),
        )


def test_an_archive_continued_elsewhere_is_not_replaced_by_an_older_run(
    stopped, tmp_path, data_dir
):
    """Machine A's run directory is behind an archive that machine B continued: saving A's
    state over it is refused, ``check`` says so, and ``continue.sh`` restores instead."""
    workdir, out, _ = stopped
    ahead = str(tmp_path / "ahead")
    shutil.copytree(out, ahead)
    results = jsonio.read(os.path.join(ahead, "results.json"))
    extra = dict(results[-1], strategy="random", cycle=1)  # a record the workdir lacks
    jsonio.write_atomic(os.path.join(ahead, "results.json"), [*results, extra])
    assert archive.missing_records(ahead, workdir) == [(0, "random", 1)]
    assert archive.missing_records(out, workdir) == []
    before = _files(ahead)
    with pytest.raises(ValueError, match=r"holds 1 records that .* lacks .*restore it"):
        archive.save(workdir, ahead)
    assert _files(ahead) == before
