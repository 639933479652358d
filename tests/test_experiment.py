"""End-to-end AL experiment on the tiny config: records, durable state, crash + exact resume."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import tiny
from mtal_jax import jsonio, pool
from mtal_jax import records as rec_lib
from mtal_jax.al import experiment, schedule
from mtal_jax.al.experiment import durable
from tests import crashes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir, **al):
    config = tiny.get_config()
    config.data.data_dir = str(data_dir)
    config.al.reference_map = 0.5  # skip the reference run here; test_reference_run covers it
    config.al.reference_miou = 0.5
    for k, v in al.items():
        setattr(config.al, k, v)
    return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    records = experiment.run(_config(data_dir), str(workdir), progress=False)
    assert all(isinstance(r, rec_lib.CycleRecord) for r in records)
    return workdir, [r.to_json() for r in records]


def _key(records):
    return [(r["trial"], r["strategy"], r["cycle"], tuple(r["labeled_ids"])) for r in records]


def test_records_and_files(uninterrupted):
    workdir, records = uninterrupted
    assert [(r["strategy"], r["cycle"]) for r in records] == [
        ("ours", 0),
        ("ours", 1),
        ("random", 0),
        ("random", 1),
    ]
    on_disk = jsonio.read(os.path.join(workdir, "results.json"))
    assert _key(on_disk) == _key(records)
    for r in records:
        assert set(r) >= {
            "trial",
            "strategy",
            "cycle",
            "labeled_fraction",
            "labeled_ids",
            "map",
            "ap50",
            "miou",
            "mdsq",
        }
        assert 0.0 <= r["map"] <= 1.0 and 0.0 <= r["miou"] <= 1.0
        assert np.isclose(r["mdsq"], (r["map"] / 0.5 + r["miou"] / 0.5) / 2)
    # cycle 0 is shared by every strategy of a trial
    assert records[0]["labeled_ids"] == records[2]["labeled_ids"]
    assert records[0]["map"] == records[2]["map"]
    for name in ("ours", "random"):
        c0, c1 = [r for r in records if r["strategy"] == name]
        assert len(c0["labeled_ids"]) == 16 and len(c1["labeled_ids"]) == 20  # 40 % + 10 % of 40
        assert set(c0["labeled_ids"]) < set(c1["labeled_ids"])
        sel = jsonio.read(os.path.join(workdir, "trial_0", name, "cycle_1", "selection.json"))
        assert len(sel["selected"]) == 4 == len(set(sel["selected"]))
        assert not set(sel["selected"]) & set(c0["labeled_ids"])
        assert set(sel["components"]) >= {"score"}
        assert all(len(v) == 4 for v in sel["components"].values())
        assert len(sel["image_ids"]) == 4
    for f in ("summary.md", "summary.json", "mdsq.png", "map.png", "miou.png", "config.json"):
        assert os.path.getsize(os.path.join(workdir, f)) > 0
    # cycle 0 runs train.initial_steps (8 in tiny.py), later cycles train.steps (6)
    assert (
        jsonio.read(os.path.join(workdir, "trial_0", "cycle_0", "train", "final_eval.json"))["step"]
        == 8
    )
    for name in ("ours", "random"):
        fin = jsonio.read(
            os.path.join(workdir, "trial_0", name, "cycle_1", "train", "final_eval.json")
        )
        assert fin["step"] == 6


def test_crash_anywhere_then_resume_gives_same_result(tmp_path, data_dir, uninterrupted):
    _, expected = uninterrupted
    workdir = str(tmp_path / "crashy")
    config = _config(data_dir)

    # 1. Crash during training of cycle 1 of "ours" (the second training run).
    with crashes.in_training_run(2), pytest.raises(crashes.Crash):
        experiment.run(config, workdir, progress=False)
    # 2. Crash while scoring the pool for "random".
    with crashes.in_scoring(), pytest.raises(crashes.Crash):
        experiment.run(config, workdir, progress=False)
    # 3. Crash while writing the selection record (before the rename).
    with crashes.in_writing("selection.json"), pytest.raises(crashes.Crash):
        experiment.run(config, workdir, progress=False)

    records = [r.to_json() for r in experiment.run(config, workdir, progress=False)]
    assert _key(records) == _key(expected)
    for got, want in zip(records, expected):
        for k in ("map", "ap50", "miou"):
            assert got[k] == pytest.approx(want[k], abs=1e-6), (got["strategy"], got["cycle"], k)


def test_a_finished_experiment_resumes_without_reading_weights(
    tmp_path, data_dir, uninterrupted, monkeypatch
):
    """A resumed session replays finished runs from their JSON files (``loop.train``'s
    ``with_variables=False``) and renders the summary once, at the end."""
    from mtal_jax import checkpointing, reporting

    source, expected = uninterrupted
    workdir = tmp_path / "again"
    shutil.copytree(source, workdir)
    restored, summaries = [], []
    monkeypatch.setattr(checkpointing, "restore", lambda *a: restored.append(a))
    write = reporting.write_summary
    monkeypatch.setattr(
        reporting, "write_summary", lambda *a, **k: summaries.append(1) or write(*a, **k)
    )
    records = [r.to_json() for r in experiment.run(_config(data_dir), str(workdir), progress=False)]
    assert restored == [] and summaries == [1]
    assert records == expected


def test_the_weights_of_a_finished_run_are_read_once_when_a_later_run_needs_them(
    tmp_path, data_dir, uninterrupted, monkeypatch
):
    """Both strategies' cycle 1 lost (say, a copy of an experiment without them): cycle 0's
    weights are read back once for both, and the records equal the uninterrupted ones."""
    from mtal_jax.train import run_files

    source, expected = uninterrupted
    workdir = tmp_path / "partial"
    shutil.copytree(source, workdir)
    for name in ("ours", "random"):
        shutil.rmtree(workdir / "trial_0" / name)
    os.remove(workdir / "results.json")
    loaded = []
    load = run_files.load_variables
    monkeypatch.setattr(
        run_files, "load_variables", lambda path, *a: loaded.append(path) or load(path, *a)
    )
    records = [r.to_json() for r in experiment.run(_config(data_dir), str(workdir), progress=False)]
    assert loaded == [str(workdir / "trial_0" / "cycle_0")]
    assert _key(records) == _key(expected)
    for got, want in zip(records, expected):
        for k in ("map", "ap50", "miou"):
            assert got[k] == pytest.approx(want[k], abs=1e-6), (got["strategy"], got["cycle"], k)


def test_selection_is_never_rewritten(uninterrupted):
    workdir, _ = uninterrupted
    path = os.path.join(workdir, "trial_0", "ours", "cycle_1", "selection.json")
    with pytest.raises(FileExistsError):
        jsonio.write_atomic(path, {}, overwrite=False)


def test_config_mismatch_on_resume_is_an_error(uninterrupted, data_dir):
    workdir, _ = uninterrupted
    config = _config(data_dir)
    config.train.steps = 7
    with pytest.raises(ValueError, match="another config"):
        experiment.run(config, str(workdir), progress=False)


def test_bad_input_fails_before_work(tmp_path, data_dir):
    with pytest.raises(ValueError, match="unknown strategy 'nope'.*valid names"):
        experiment.run(
            _config(data_dir, strategies="ours,nope"), str(tmp_path / "a"), progress=False
        )
    assert not os.path.exists(tmp_path / "a" / "trial_0")
    config = _config(data_dir)
    config.loss.seg_class_weights = (1.0, 2.0)
    with pytest.raises(ValueError, match=r"loss.seg_class_weights has 2 values.*classes"):
        experiment.run(config, str(tmp_path / "b"), progress=False)
    assert not os.path.exists(tmp_path / "b" / "config.json")


@pytest.mark.parametrize("name", ["default", "tiny", "camvid", "nuimages", "a9", "coco_folder"])
def test_shipped_configs_give_sane_schedules(name):
    import importlib

    config = importlib.import_module(f"configs.{name}").get_config()
    pool_size = {"camvid": 367, "nuimages": 13187, "a9": 13187, "coco_folder": 1000}.get(
        name, config.data.builder_kwargs.get("num_train")
    )
    sched = schedule.from_config(config.train, pool_size)
    cfg = experiment.train_config(config, num_steps=sched.cycle_steps)
    assert 1 <= cfg.lr_warmup_steps <= max(cfg.num_steps // 4, 1)  # short cycles still decay
    assert sched.reference_steps > sched.cycle_steps
    assert sched.initial_steps >= sched.cycle_steps
    if name in ("nuimages", "a9"):  # the paper's 30,000 / 300,000 steps of batch 4
        assert (sched.cycle_steps, sched.reference_steps) == (30_000, 300_000)
        assert config.train.batch_size == 4 and config.train.learning_rate == 1e-3
    assert experiment.train_config(config, num_steps=1000).lr_warmup_steps == min(
        config.train.lr_warmup_steps, 250
    )


def test_pool_budgets():
    assert pool.cycle_budgets(100, 0.4, 0.1, 6) == [10, 10, 10, 10, 10]
    assert pool.cycle_budgets(10, 0.4, 0.3, 4) == [3, 3, 0]
    labeled = pool.initial_labeled(50, 0.4, seed=3)
    assert labeled.sum() == 20
    assert (labeled == pool.initial_labeled(50, 0.4, seed=3)).all()
    assert not (labeled == pool.initial_labeled(50, 0.4, seed=4)).all()
    with pytest.raises(ValueError, match="labeled"):
        pool.add_selection(labeled, np.flatnonzero(labeled)[:1])
    with pytest.raises(ValueError, match="duplicate"):
        pool.add_selection(labeled, np.array([np.flatnonzero(~labeled)[0]] * 2))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path, data_dir, uninterrupted):
    """Real kills (SIGKILL) of `python train.py` at several moments, then a full resume."""
    _, expected = uninterrupted
    workdir = tmp_path / "killed"
    args = [
        sys.executable, "train.py", "--config", "configs/tiny.py", "--workdir", str(workdir), "--noprogress",
        f"--config.data.data_dir={data_dir}", "--config.al.reference_map=0.5", "--config.al.reference_miou=0.5",
        # checkpoints every 2 steps (configs/tiny.py saves at a run's end only), so that kills
        # land between saves and runs resume from them; the records do not depend on it
        "--config.checkpoint.every_steps=2",
    ]  # fmt: skip
    for delay in (8, 14, 20, 26):
        proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    with open(workdir / "results.json") as f:
        records = json.load(f)
    assert _key(records) == _key(expected)
    for got, want in zip(records, expected):
        assert got["map"] == pytest.approx(want["map"], abs=1e-6)
        assert got["miou"] == pytest.approx(want["miou"], abs=1e-6)


def test_results_json_reads_back_and_foreign_files_are_refused(uninterrupted):
    workdir, records = uninterrupted
    on_disk = jsonio.read(os.path.join(workdir, "results.json"))
    typed = rec_lib.as_records(on_disk)
    assert [r.to_json() for r in typed] == records
    old = dict(on_disk[0])
    del old["ap50"]  # a metric this version knows but an older run lacks reads as NaN
    assert np.isnan(rec_lib.CycleRecord.from_json(old).metrics["ap50"])
    with pytest.raises(rec_lib.RecordFormatError, match=r"other.json: a record lacks \['cycle'\]"):
        rec_lib.CycleRecord.from_json(
            {"trial": 0, "strategy": "x", "labeled_fraction": 0.4}, "other.json"
        )


def test_init_from_starts_cycle_zero_and_the_reference(tmp_path, data_dir, monkeypatch):
    """``config.checkpoint.init_from``: its weights start cycle 0 and the reference, and
    later cycles continue from the previous cycle (training and selection stubbed out).
    Each run's ``wall.json`` adds the training seconds of earlier sessions (every stub run
    "resumed" after 1000 s)."""
    from mtal_jax.train import loop, run_files, step_fns

    config = _config(data_dir)
    config.al.reference_map = config.al.reference_miou = 0.0
    config.al.full_reference = True
    config.checkpoint.init_from = "/pretrained/run"
    starts = {}

    def fake_load(path, model, cfg, spec):
        assert path == "/pretrained/run"
        return {"from": path}

    def fake_train(model, cfg, *, workdir, init_variables=None, **kwargs):
        name = os.path.relpath(workdir, tmp_path / "run")
        starts[name] = init_variables
        os.makedirs(workdir, exist_ok=True)  # as a real run does
        return rec_lib.RunResult(
            metrics={"map": 0.1, "ap50": 0.2, "miou": 0.3}, metric=0.2, step=cfg.num_steps,
            per_class_ap=[], per_class_iou=[], variables={"from": name}, resumed_seconds=1000.0,
        )  # fmt: skip

    def fake_select(setup, plan, strategy, variables, labeled, budget, key, **kwargs):
        return np.flatnonzero(~labeled)[:budget], {"score": np.zeros(len(labeled))}, ~labeled

    monkeypatch.setattr(run_files, "load_variables", fake_load)
    monkeypatch.setattr(loop, "train", fake_train)
    monkeypatch.setattr(step_fns, "build_step_fns", lambda *a, **k: None)
    monkeypatch.setattr(experiment.cycle, "select_images", fake_select)
    experiment.run(config, str(tmp_path / "run"), progress=False)
    assert starts["reference"] == {"from": "/pretrained/run"}
    assert starts[os.path.join("trial_0", "cycle_0")] == {"from": "/pretrained/run"}
    for name in ("ours", "random"):
        assert starts[os.path.join("trial_0", name, "cycle_1")] == {
            "from": os.path.join("trial_0", "cycle_0")
        }
    for run in ("reference", "trial_0/cycle_0", "trial_0/ours/cycle_1", "trial_0/random/cycle_1"):
        wall = jsonio.read(os.path.join(tmp_path, "run", run, "wall.json"))
        assert 1000.0 <= wall["seconds"] < 1100.0, (run, wall)
        assert wall["code"] == durable.session_code()  # the code that trained it
        assert wall["machine"] == durable.session_machine()  # and the machine


def test_score_diagnostics_beside_ours_selections_and_in_summary(uninterrupted):
    workdir, _ = uninterrupted
    diag = jsonio.read(os.path.join(workdir, "trial_0", "ours", "cycle_1", "diagnostics.json"))
    assert diag["num_images"] == 24  # the unlabeled pool of cycle 0 (40 - 16)
    assert set(diag["components"]) == {"S_loc", "S_cls", "S_seg"}
    assert not os.path.exists(
        os.path.join(workdir, "trial_0", "random", "cycle_1", "diagnostics.json")
    )
    with open(os.path.join(workdir, "summary.md"), encoding="utf-8") as f:
        assert "## Score diagnostics (ours)" in f.read()


def test_a_strategy_keyword_typo_is_refused_before_training(tmp_path, data_dir):
    config = _config(data_dir)
    config.al.strategy.kwargs = {"ours": {"tua": 0.5}}
    with pytest.raises(
        ValueError, match=r"kwargs\['ours'\]: strategy 'ours' takes no keyword\(s\) \['tua'\]"
    ):
        experiment.run(config, str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run" / "config.json").exists()
    config.al.strategy.kwargs = {"ours_x": {"base": "ours", "weights": (1, 1)}}
    config.al.strategies = "random,ours_x"
    with pytest.raises(
        ValueError, match=r"kwargs\['ours_x'\]: strategy 'ours': weights must be three finite"
    ):
        experiment.run(config, str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run" / "config.json").exists()
    # a value only the factory checks (a range), refused as early
    config.al.strategy.kwargs = {"ours_x": {"base": "ours", "det_score_threshold": 1.5}}
    with pytest.raises(
        ValueError, match=r"kwargs\['ours_x'\]: .*det_score_threshold must be in \[0, 1\]"
    ):
        experiment.run(config, str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run")


def test_config_without_a_later_added_key_resumes(tmp_path):
    # An experiment started before loss.seg_class_weights existed: its config.json lacks
    # the key; the key's neutral value resumes it, any other value is refused.
    from configs import default

    config = default.get_config()
    saved = jsonio.normalize(config.to_dict())
    del saved["loss"]["seg_class_weights"]
    del saved["al"]["order"]
    jsonio.write_atomic(str(tmp_path / "config.json"), saved)
    durable.check_config(config.to_dict(), str(tmp_path))
    config.loss.seg_class_weights = (1.0,) * 9
    with pytest.raises(ValueError, match=r"another config.*loss.seg_class_weights"):
        durable.check_config(config.to_dict(), str(tmp_path))
    assert "seg_class_weights" not in jsonio.read(str(tmp_path / "config.json"))["loss"]
    # al.order (also added later) only orders the work: any value resumes
    config.loss.seg_class_weights = ()
    for order in ("strategy", "trial"):
        config.al.order = order
        durable.check_config(config.to_dict(), str(tmp_path))


def test_more_trials_extend_an_experiment_and_fewer_are_refused(tmp_path):
    # al.num_trials may grow on resume (the experiment gains trials; config.json follows,
    # keeping the first session's order keys), never shrink; anything else still differs.
    from configs import default

    config = default.get_config()
    config.al.num_trials = 3
    config.al.order = "trial"
    durable.check_config(config.to_dict(), str(tmp_path))
    path = str(tmp_path / "config.json")
    config.al.num_trials = 5
    config.al.order = "strategy"
    durable.check_config(config.to_dict(), str(tmp_path), write=False)
    assert jsonio.read(path)["al"]["num_trials"] == 3  # checked, not written
    durable.check_config(config.to_dict(), str(tmp_path))
    saved = jsonio.read(path)["al"]
    assert (saved["num_trials"], saved["order"]) == (5, "trial")
    durable.check_config(config.to_dict(), str(tmp_path))  # resumes as extended
    config.al.num_trials = 4
    with pytest.raises(ValueError, match=r"al.num_trials=5.*can only grow.*al.run_trials"):
        durable.check_config(config.to_dict(), str(tmp_path))
    config.al.num_trials = 6
    config.train.batch_size = 8
    with pytest.raises(ValueError, match=r"another config.*al.num_trials.*train.batch_size"):
        durable.check_config(config.to_dict(), str(tmp_path))
    assert jsonio.read(path)["al"]["num_trials"] == 5


def test_each_extension_is_recorded_once_beside_the_config(tmp_path, monkeypatch):
    # extensions.json tells the trials added later (by a later session's code) from the
    # first ones; an entry a crash left before config.json followed never counts twice.
    from configs import default

    monkeypatch.setattr(durable, "session_code", lambda: "abc1234")
    config = default.get_config()
    config.al.num_trials = 3
    workdir = str(tmp_path)
    path = os.path.join(workdir, "config.json")
    durable.check_config(config.to_dict(), workdir)
    assert durable.extensions(workdir) == []
    config.al.num_trials = 5
    durable.check_config(config.to_dict(), workdir, write=False)  # a check writes nothing
    assert durable.extensions(workdir) == []
    durable.check_config(config.to_dict(), workdir)
    (entry,) = durable.extensions(workdir)
    assert {k: entry[k] for k in ("key", "from", "to", "code")} == {
        "key": "al.num_trials", "from": 3, "to": 5, "code": "abc1234"
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", entry["at"])
    durable.check_config(config.to_dict(), workdir)  # resumed as extended: nothing new
    assert len(durable.extensions(workdir)) == 1

    def crash_before_config():  # the entry is written, config.json still says 5
        saved = jsonio.read(path)
        durable.check_config(config.to_dict(), workdir)
        jsonio.write_atomic(path, saved)

    config.al.num_trials = 8
    crash_before_config()
    durable.check_config(config.to_dict(), workdir)  # the same extension again: one entry
    assert [(e["from"], e["to"]) for e in durable.extensions(workdir)] == [(3, 5), (5, 8)]
    config.al.num_trials = 10
    crash_before_config()
    config.al.num_trials = 12  # then another count: it replaces the entry never in force
    durable.check_config(config.to_dict(), workdir)
    assert [(e["from"], e["to"]) for e in durable.extensions(workdir)] == [(3, 5), (5, 8), (8, 12)]
    assert jsonio.read(path)["al"]["num_trials"] == 12
    with open(os.path.join(workdir, durable.EXTENSIONS), "w") as f:
        f.write('{"from": 3}')
    with pytest.raises(ValueError, match=r"extensions.json: expected a list"):
        durable.extensions(workdir)


def test_the_code_version_names_the_commit_and_uncommitted_changes(tmp_path):
    # A checkout: its commit; "-dirty" for a tracked change in the package or configs/,
    # not for one elsewhere or an untracked file; None for a folder git does not track.
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "configs").mkdir()
    for name in ("pkg/a.py", "configs/c.py", "notes.md"):
        (repo / name).write_text("x = 1\n")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    pkg = str(repo / "pkg")
    assert durable.code_version(pkg) == head
    (repo / "notes.md").write_text("changed\n")
    (repo / "pkg" / "new.py").write_text("")
    assert durable.code_version(pkg) == head  # elsewhere, or untracked: still clean
    (repo / "configs" / "c.py").write_text("x = 2\n")
    assert durable.code_version(pkg) == head + "-dirty"
    git("checkout", "configs/c.py")
    (repo / "pkg" / "a.py").write_text("x = 3\n")
    assert durable.code_version(pkg) == head + "-dirty"
    (repo / "ignored").mkdir()
    assert durable.code_version(str(repo / "ignored")) is None  # not tracked here
    assert durable.code_version(str(tmp_path)) is None  # not a checkout


def test_the_code_version_is_this_checkout_s_commit_or_none():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              check=False, capture_output=True, text=True, timeout=30)  # fmt: skip
    except OSError:  # no git: nothing to name
        assert durable.code_version() is None
        return
    version = durable.code_version()
    if head.returncode:  # not a checkout (an unpacked source tree)
        assert version is None
    else:
        assert re.fullmatch(re.escape(head.stdout.strip()) + r"(-dirty)?", version)


def test_the_machine_names_the_first_processor_and_its_widest_vector_extension(tmp_path):
    # Training is bitwise deterministic on one machine only: wall.json names the machine.
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
        "stepping\t: 2\nflags\t\t: fpu sse4_2 avx avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: Other CPU\nflags\t\t: fpu avx512f\n"
    )
    info = durable.cpu_info(str(cpuinfo))
    assert info["name"] == "AMD EPYC" and info["cpuid"] == "family 23 model 1 stepping 2"
    assert "avx2" in info["flags"] and "avx512f" not in info["flags"]
    fallback = durable.cpu_info(str(tmp_path / "missing"))
    assert fallback["name"] and fallback["cpuid"] == "" and fallback["flags"] == frozenset()
    machine = durable.session_machine()
    assert set(machine) == {
        "cpu", "cpuid", "isa", "flags", "backend", "device", "devices", "jaxlib"
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{12}", machine["flags"])
    assert machine["backend"] == "cpu" and machine["devices"] == len(jax.devices())
    assert machine["isa"] in durable._VECTOR_ISAS + ("",)
    assert json.loads(json.dumps(machine)) == machine  # a plain JSON record


def test_an_extended_experiment_keeps_its_trials_and_adds_new_ones(
    tmp_path, data_dir, uninterrupted
):
    # The finished trial replays unchanged (trials are seeded by their index alone) and the
    # new one runs like any trial: its own pool, its own cycle-0 model shared by both
    # strategies.
    import shutil

    source, expected = uninterrupted
    workdir = str(tmp_path / "extended")
    shutil.copytree(source, workdir)
    config = _config(data_dir, num_trials=2)
    records = [r.to_json() for r in experiment.run(config, workdir, progress=False)]
    assert jsonio.read(os.path.join(workdir, "config.json"))["al"]["num_trials"] == 2
    first = [r for r in records if r["trial"] == 0]
    assert _key(first) == _key(expected)
    assert [r["map"] for r in first] == [r["map"] for r in expected]
    second = [r for r in records if r["trial"] == 1]
    assert [(r["strategy"], r["cycle"]) for r in second] == [(s, c) for s in ("ours", "random")
                                                              for c in (0, 1)]  # fmt: skip
    assert second[0]["labeled_ids"] == second[2]["labeled_ids"] != first[0]["labeled_ids"]
    assert _key(jsonio.read(os.path.join(workdir, "results.json"))) == _key(records)
    with pytest.raises(ValueError, match="can only grow"):
        experiment.run(_config(data_dir), workdir, progress=False)
