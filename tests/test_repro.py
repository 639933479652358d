"""The reproduction's structure: per-strategy trial counts, their validation, presets, and a
tiny run with {random: 2 trials, ours: 1} that survives crashes and resumes identically."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from configs import camvid, default, tiny
from mtal_jax import jsonio, strategies
from mtal_jax.al import experiment, progress
from mtal_jax.al.experiment import share
from tests import crashes


def _config(data_dir=None, **al):
    config = tiny.get_config("repro")  # random: 2 trials, ours: 1
    if data_dir is not None:
        config.data.data_dir = str(data_dir)
    config.al.reference_map = 0.5  # no reference run: the records' mDSQ uses these
    config.al.reference_miou = 0.5
    for k, v in al.items():
        setattr(config.al, k, v)
    return config


def test_trials_per_strategy_defaults_to_num_trials_and_is_validated():
    config = tiny.get_config()  # no al.trials_per_strategy at all: every strategy, every trial
    plan = experiment.plan_from_config(config)
    assert plan.trials_per_strategy == {"ours": 1, "random": 1}
    plan = experiment.plan_from_config(_config())
    assert plan.trials_per_strategy == {"random": 2, "ours": 1}
    assert [s.name for s in plan.strategies_of_trial(0)] == ["random", "ours"]
    assert [s.name for s in plan.strategies_of_trial(1)] == ["random"]
    assert plan.strategies_of_trial(2) == ()
    # A valid strategy that is not in this run is ignored (a preset narrowed on the CLI).
    config = _config()
    config.al.trials_per_strategy.cald = 1
    assert experiment.plan_from_config(config).trials_per_strategy == {"random": 2, "ours": 1}
    for bad, match in [
        ({"randm": 1}, "unknown strategy 'randm'"),
        ({"random": 3}, r"\[1, config.al.num_trials = 2\]"),
        ({"random": 0}, "must be an integer"),
        ({"random": 1.5}, "must be an integer"),
        ({"random": True}, "must be an integer"),
    ]:
        config = _config()
        config.al.trials_per_strategy = bad
        with pytest.raises(ValueError, match=match):
            experiment.plan_from_config(config)


def test_run_order_by_trial_or_by_strategy():
    config = _config()
    pairs = lambda plan: [(t, s.name) for t, s in plan.run_order()]
    assert pairs(experiment.plan_from_config(config)) == [(0, "random"), (0, "ours"), (1, "random")]
    config.al.order = "strategy"
    assert pairs(experiment.plan_from_config(config)) == [(0, "random"), (1, "random"), (0, "ours")]
    config.al.strategies = "ours,random"  # config order decides which strategy goes first
    assert pairs(experiment.plan_from_config(config)) == [(0, "ours"), (0, "random"), (1, "random")]
    config.al.order = "random"
    with pytest.raises(ValueError, match=r"config.al.order = 'random': must be one of"):
        experiment.plan_from_config(config)
    for module in (default, camvid):  # the long presets pair random and ours first
        plan = experiment.plan_from_config(module.get_config("repro"))
        assert pairs(plan)[:10] == [(t, n) for n in ("random", "ours") for t in range(5)]
        assert experiment.plan_from_config(module.get_config("table1")).order == "strategy"
        assert module.get_config().al.order == "trial"


def test_bad_trials_per_strategy_fails_before_anything_is_written(tmp_path):
    config = _config(trials_per_strategy={"ours": 7})
    with pytest.raises(ValueError, match="trials_per_strategy"):
        experiment.run(config, str(tmp_path / "w"), progress=False)
    assert not os.path.exists(tmp_path / "w" / "config.json")


def test_planned_steps_with_per_trial_strategy_counts():
    # reference 10; trial 0: cycle 0 (5) + 2 strategies x 2 cycles x 3; trial 1: 5 + 1 x 2 x 3
    total = progress.planned_steps(
        reference_steps=10, initial_steps=5, num_cycles=3, cycle_steps=3,
        strategies_per_trial=[2, 1, 0],
    )  # fmt: skip
    assert total == 10 + (5 + 12) + (5 + 6)
    assert total == progress.planned_steps(
        reference_steps=10, initial_steps=5, num_cycles=3, cycle_steps=3, num_trials=1,
        num_strategies=2,
    ) + 11  # fmt: skip


def test_presets_repro_and_table1():
    for module in (default, camvid):
        config = module.get_config("repro")
        plan = experiment.plan_from_config(config)
        assert {s.name for s in plan.strategies} == set(strategies.STRATEGIES)
        assert plan.num_trials == 5
        for name in ("random", "ours", "ll4al", "cald", "equal"):
            assert plan.trials_of(name) == 5
        assert min(plan.trials_per_strategy.values()) >= 3
        config = module.get_config("table1")
        plan = experiment.plan_from_config(config)
        ours = [s for s in plan.strategies if s.base == "ours"]
        assert len(ours) == 14 and plan.num_trials >= 3
        settings = {(tuple(s.kwargs["weights"]), s.kwargs["cls_divergence"]) for s in ours}
        assert len(settings) == 14  # the seven 0/1 settings for each of js and kl
        assert {m for _, m in settings} == {"js", "kl"}
        assert "random" in [s.name for s in plan.strategies]
        # trials10: ours against random over 10 trials, trial by trial; after repro, its
        # first 5 trials (cycle-0 models, both strategies) and the reference are shared
        config = module.get_config("trials10")
        plan = experiment.plan_from_config(config, pool_size=400)
        assert [s.name for s in plan.strategies] == ["random", "ours"]
        assert plan.num_trials == 10 and plan.order == "trial"
        repro = experiment.plan_from_config(module.get_config("repro"), pool_size=400)
        s = plan.schedule
        assert share.steps_shared(plan, repro) == (
            s.reference_steps + 5 * s.initial_steps + 5 * 2 * 5 * s.cycle_steps
        )
        # balanced (not in the paper): after repro only ours_balanced trains, 5 trials
        config = module.get_config("balanced")
        plan = experiment.plan_from_config(config, pool_size=400)
        assert [s.name for s in plan.strategies] == ["random", "ours", "ours_balanced"]
        weights = plan.strategy("ours_balanced").kwargs["weights"]
        assert weights == default.BALANCED_WEIGHTS[config.data.name] and weights[0] == 1.0
        left = plan.planned_steps() - share.steps_shared(plan, repro)
        assert left == 5 * 5 * s.cycle_steps
    plain = default.get_config()
    assert "trials_per_strategy" not in plain.al  # the plain job's config.json is unchanged
    assert camvid.get_config("repro").data.name == "camvid"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    records = experiment.run(_config(data_dir), str(workdir), progress=False)
    return workdir, [r.to_json() for r in records]


def _key(records):
    return [(r["trial"], r["strategy"], r["cycle"], tuple(r["labeled_ids"])) for r in records]


def test_trials_beyond_a_strategy_count_skip_it(uninterrupted):
    workdir, records = uninterrupted
    assert [(r["trial"], r["strategy"], r["cycle"]) for r in records] == [
        (0, "random", 0), (0, "random", 1), (0, "ours", 0), (0, "ours", 1),
        (1, "random", 0), (1, "random", 1),
    ]  # fmt: skip
    assert not os.path.exists(os.path.join(workdir, "trial_1", "ours"))
    assert os.path.exists(os.path.join(workdir, "trial_1", "random", "cycle_1", "selection.json"))
    # one cycle-0 model per trial, shared; trials have different initial pools
    assert records[0]["labeled_ids"] == records[2]["labeled_ids"]
    assert records[0]["map"] == records[2]["map"]
    assert records[0]["labeled_ids"] != records[4]["labeled_ids"]
    for run in ("reference", "trial_0/cycle_0", "trial_1/random/cycle_1"):
        has_wall = os.path.exists(os.path.join(workdir, run, "wall.json"))
        assert has_wall == (run != "reference")  # the reference is given, not trained
    summary = jsonio.read(os.path.join(workdir, "summary.json"))
    assert summary["random"]["trials"] == [0, 1] and summary["ours"]["trials"] == [0]
    paired = jsonio.read(os.path.join(workdir, "paired.json"))
    gain = records[3]["mdsq"] - records[1]["mdsq"]  # ours - random, trial 0, cycle 1
    assert paired["ours"]["trials"] == 1
    assert paired["ours"]["mean"] == pytest.approx(gain)
    assert paired["ours"]["ci95"] == [None, None]  # one trial: no interval


@pytest.mark.slow
def test_crash_then_resume_gives_the_same_records(tmp_path, data_dir, uninterrupted):
    _, expected = uninterrupted
    workdir = str(tmp_path / "crashy")
    config = _config(data_dir)

    # 1. Crash while training trial 1's cycle 0 (the fourth training run).
    with crashes.in_training_run(4), pytest.raises(crashes.Crash):
        experiment.run(config, workdir, progress=False)
    done = jsonio.read(os.path.join(workdir, "results.json"))
    assert {r["trial"] for r in done} == {0}
    wall0 = jsonio.read(os.path.join(workdir, "trial_0", "cycle_0", "wall.json"))
    assert wall0["seconds"] > 0

    # 2. Crash while scoring the pool of trial 1's random.
    with crashes.in_scoring(), pytest.raises(crashes.Crash):
        experiment.run(config, workdir, progress=False)

    records = [r.to_json() for r in experiment.run(config, workdir, progress=False)]
    assert _key(records) == _key(expected)
    for got, want in zip(records, expected):
        for k in ("map", "ap50", "miou", "mdsq"):
            assert got[k] == pytest.approx(want[k], abs=1e-6), (got["trial"], got["strategy"], k)
    assert jsonio.read(os.path.join(workdir, "paired.json")) == jsonio.read(
        os.path.join(uninterrupted[0], "paired.json")
    )
    # a finished run read back by a later session keeps the wall time of its first session
    assert jsonio.read(os.path.join(workdir, "trial_0", "cycle_0", "wall.json")) == wall0


def test_resume_with_other_trial_counts_is_refused(uninterrupted, data_dir):
    workdir, _ = uninterrupted
    config = _config(data_dir, trials_per_strategy={"random": 2, "ours": 2})
    with pytest.raises(ValueError, match="another config"):
        experiment.run(config, str(workdir), progress=False)


def test_order_may_change_on_resume_and_gives_the_same_records(tmp_path, data_dir, uninterrupted):
    # Started trial by trial, crashed in trial 0's ours (third training run), resumed
    # strategy by strategy: trial 1's random runs next, then trial 0's cycle-0 model is
    # read back for ours. Same records, none lost from results.json on the way.
    _, expected = uninterrupted
    workdir = str(tmp_path / "reordered")
    with crashes.in_training_run(3), pytest.raises(crashes.Crash):
        experiment.run(_config(data_dir), workdir, progress=False)
    before = jsonio.read(os.path.join(workdir, "results.json"))
    # the summary of what finished (trial 0's random) is written while the run goes on
    assert set(jsonio.read(os.path.join(workdir, "summary.json"))) == {"random"}
    assert [(r["trial"], r["strategy"], r["cycle"]) for r in before] == [
        (0, "random", 0), (0, "random", 1), (0, "ours", 0),
    ]  # fmt: skip
    records = experiment.run(_config(data_dir, order="strategy"), workdir, progress=False)
    got = [r.to_json() for r in records]
    assert [(r["trial"], r["strategy"]) for r in got] == [
        (0, "random"), (0, "random"), (1, "random"), (1, "random"), (0, "ours"), (0, "ours"),
    ]  # fmt: skip
    want = {(r["trial"], r["strategy"], r["cycle"]): r for r in expected}
    assert len(got) == len(want)
    for r in got:
        w = want[(r["trial"], r["strategy"], r["cycle"])]
        assert r["labeled_ids"] == w["labeled_ids"]
        for k in ("map", "ap50", "miou", "mdsq"):
            assert r[k] == pytest.approx(w[k], abs=1e-6), (r["trial"], r["strategy"], k)
    on_disk = jsonio.read(os.path.join(workdir, "results.json"))
    assert on_disk[:3] == before  # the first session's records keep their place
    assert sorted(_key(on_disk)) == sorted(_key(expected))
    assert jsonio.read(os.path.join(workdir, "config.json"))["al"]["order"] == "trial"


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_records(tmp_path, data_dir, uninterrupted):
    """Real kills (SIGKILL) of `python train.py --config configs/tiny.py:repro`, then a
    resume: the same records, paired.json and wall-time files as an uninterrupted run."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    expected_dir, expected = uninterrupted
    workdir = tmp_path / "killed"
    args = [
        sys.executable, "train.py", "--config", "configs/tiny.py:repro", "--workdir", str(workdir),
        "--noprogress", f"--config.data.data_dir={data_dir}", "--config.al.reference_map=0.5",
        "--config.al.reference_miou=0.5",
        # checkpoints every 2 steps (configs/tiny.py saves at a run's end only), so that kills
        # land between saves and runs resume from them; the records do not depend on it
        "--config.checkpoint.every_steps=2",
    ]  # fmt: skip
    for delay in (10, 18, 26, 34):
        proc = subprocess.Popen(
            args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    subprocess.run(args, cwd=root, check=True, capture_output=True)
    with open(workdir / "results.json") as f:
        records = json.load(f)
    assert _key(records) == _key(expected)
    for got, want in zip(records, expected):
        for k in ("map", "miou", "mdsq"):
            assert got[k] == pytest.approx(want[k], abs=1e-6)
    assert jsonio.read(str(workdir / "paired.json")) == jsonio.read(
        os.path.join(expected_dir, "paired.json")
    )
    for run in ("trial_0/cycle_0", "trial_1/random/cycle_1", "trial_0/ours/cycle_1"):
        assert jsonio.read(str(workdir / run / "wall.json"))["seconds"] >= 0


def test_composition_and_results_page_of_a_finished_run(uninterrupted, tmp_path):
    from mtal_jax.analysis import composition

    workdir, records = uninterrupted
    comp = composition.from_workdir(str(workdir))
    assert comp["hard_available"]  # synthetic ids carry their condition
    assert comp["strategies"]["random"]["trials"] == [0, 1]
    assert comp["strategies"]["ours"]["trials"] == [0]
    assert comp["strategies"]["random"]["overall"]["images"] == 8  # 2 trials x budget 4
    assert [p["trial"] for p in comp["against_random"]["ours"]["per_trial"]] == [0]  # paired
    pool = comp["pool"]
    assert pool["images"] == 40 and 0 <= pool["rare_box_share"] <= 1
    assert sum(comp["pool_class_counts"].values()) == pool["boxes"]
    from docs.results_lib import results_page

    page = results_page.build(
        {"synthetic": (str(workdir), "")}, str(tmp_path / "results"), str(tmp_path / "src")
    )
    assert "## Side by side with the paper" in page
    gain = records[3]["mdsq"] - records[1]["mdsq"]
    assert "| ours | 1 | " in page and f"{gain:+.3f} |" in page  # one trial: no interval
    assert "ours > random in mDSQ (+3.39 % at 80 % labeled)" in page
    assert "not distinguishable from noise at this power" in page
    assert "| ours > LL4AL in mDSQ (+1.07 % at 80 % labeled) | — | not run |" in page
    assert "| pool (all images) | — | 40 |" in page
    for f in ("paired.json", "summary.md", "composition.json", "results.json", "mdsq.png"):
        assert os.path.exists(tmp_path / "results" / "synthetic" / f), f


def test_run_trials_selects_the_trials_of_this_process_and_is_validated():
    plan = experiment.plan_from_config(_config(run_trials="1"))
    assert plan.run_trials == (1,)
    assert [(t, s.name) for t, s in plan.run_order()] == [(1, "random")]  # ours runs trial 0
    assert plan.strategies_of_trial(0) == ()
    assert experiment.plan_from_config(_config(run_trials="1,0")).run_trials == (0, 1)
    assert experiment.plan_from_config(_config()).run_trials == ()  # "" = every trial
    for bad in ("2", "-1", "x", "0,,a"):
        with pytest.raises(ValueError, match="run_trials"):
            experiment.plan_from_config(_config(run_trials=bad))


def _trimmed_base(source, target):
    """``source`` (a finished experiment) with only its cycle-0 models: what the parts of
    parallel_cli copy (bench/gpu_base.sh does the same to the main comparison's archive)."""
    import shutil

    shutil.copytree(source, target)
    for trial in os.listdir(target):
        if trial.startswith("trial_"):
            for run in os.listdir(os.path.join(target, trial)):
                if run != "cycle_0":
                    shutil.rmtree(os.path.join(target, trial, run))
    records = jsonio.read(os.path.join(target, "results.json"))
    jsonio.write_atomic(
        os.path.join(target, "results.json"), [r for r in records if r["cycle"] == 0]
    )
    return str(target)


def test_parallel_cli_parts_give_the_records_of_one_process(tmp_path, data_dir, uninterrupted):
    """One process per (strategy, trial) from the same cycle-0 models: the merged records
    equal the single process's; archived, restored and run again, nothing is retrained."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    expected_dir, expected = uninterrupted
    base = _trimmed_base(expected_dir, tmp_path / "base")
    overrides = [
        f"--config.data.data_dir={data_dir}", "--config.al.reference_map=0.5",
        "--config.al.reference_miou=0.5",
    ]  # fmt: skip
    cmd = [
        sys.executable, "-m", "mtal_jax.al.parallel_cli", "--config", "configs/tiny.py:repro",
        "--jobs", "3", "--share_from", base,
    ]  # fmt: skip
    first = tmp_path / "par"
    subprocess.run(
        cmd + ["--workdir", str(first), "--archive_to", str(tmp_path / "arch"), "--", *overrides],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip
    got = jsonio.read(str(first / "results.json"))
    assert _key(got) == sorted(_key(expected))
    by_key = {(r["trial"], r["strategy"], r["cycle"]): r for r in expected}
    for r in got:
        for k in ("map", "miou", "mdsq"):
            assert r[k] == pytest.approx(
                by_key[(r["trial"], r["strategy"], r["cycle"])][k], abs=1e-6
            )
    state = jsonio.read(str(first / "parallel.json"))
    assert set(state["parts"]) == {"random.trial_0", "ours.trial_0", "random.trial_1"}
    assert all(p["complete"] and p["rc"] == 0 for p in state["parts"].values())
    assert os.path.exists(first / "paired.json") and os.path.exists(first / "mdsq.png")
    # the archive restores into a new folder; every part is complete: none starts again
    second = tmp_path / "again"
    out = subprocess.run(
        cmd + ["--workdir", str(second), "--restore_from", str(tmp_path / "arch"), "--", *overrides],
        cwd=root, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "3 parts, 3 complete, 0 to run" in out.stderr
    assert jsonio.read(str(second / "results.json")) == got
    # bench/gpu_merge_back.sh: the archive as a device call returns it, into a copy of the
    # archive whose one part lost its last record and holds a stale weights file
    files, dst = tmp_path / "files", tmp_path / "dst"
    files.mkdir()
    subprocess.run(
        f"tar czf - -C {tmp_path / 'arch'} . | split -b 1M - {files}/archive.tgz.part-",
        shell=True, check=True,
    )  # fmt: skip
    (files / "gpu_check.log").write_text("log\n")
    (files / "status.txt").write_text("total 9s\n")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "nvidia-smi.txt").write_text("| 0  NVIDIA H100 80GB HBM3 |\n")
    subprocess.run(["tar", "czf", str(files / "results.tgz"), "-C", str(tmp_path / "r"), "."],
                   check=True)  # fmt: skip
    shutil.copytree(tmp_path / "arch", dst)
    part = dst / "parts" / "ours.trial_0"
    records = jsonio.read(str(part / "results.json"))
    jsonio.write_atomic(str(part / "results.json"), records[:-1])
    (part / "stale_weights").mkdir()
    (part / "stale_weights" / "weights.npz").write_bytes(b"old")
    merged = subprocess.run(
        ["bash", "bench/gpu_merge_back.sh", str(files), "7", str(dst)], cwd=root,
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHON": sys.executable, "CONFIG": "configs/tiny.py:repro",
             "MERGE_ARGS": " ".join(["--", *overrides])},
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert jsonio.read(str(part / "results.json")) == records  # the returned part's files
    assert not (part / "stale_weights" / "weights.npz").exists()
    assert jsonio.read(str(dst / "results.json")) == got
    device = dst / "device"
    assert "H100" in (device / "lease7_nvidia-smi.txt").read_text()
    assert (device / "lease7_status.txt").read_text() == "total 9s\n"
    assert (device / "lease7_parallel.json").exists() and (device / "lease7_gpu_check.log").exists()


def test_parallel_cli_deadline_stops_running_parts_and_starts_no_more(tmp_path):
    from mtal_jax.al import parts as parts_lib

    parts = [parts_lib.Part("random", t, str(tmp_path / f"p{t}")) for t in range(2)]
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    t0 = time.time()
    state, interrupted = parts_lib.run_parts(
        parts, {p.name: sleep for p in parts}, jobs=1, deadline_s=1.0, env=dict(os.environ),
        poll_s=0.1,
    )  # fmt: skip
    assert time.time() - t0 < 30 and not interrupted  # SIGINT ended the sleeping part
    assert state["random.trial_0"]["rc"] not in (None, 0)
    assert state["random.trial_1"]["rc"] is None  # never started
    assert state["random.trial_0"]["stopped"] and parts_lib.failed_parts(state) == []
    # a part that fails on its own is reported (the launcher then exits 1)
    fail = [sys.executable, "-c", "raise SystemExit(3)"]
    state, _ = parts_lib.run_parts(
        parts, {p.name: fail for p in parts}, jobs=2, deadline_s=0.0, env=dict(os.environ),
        poll_s=0.1,
    )  # fmt: skip
    assert parts_lib.failed_parts(state) == ["random.trial_0", "random.trial_1"]
    # interrupted (Ctrl-C, or SIGTERM through main's handler): the same stop, then reported
    import threading

    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.time()
    state, interrupted = parts_lib.run_parts(
        parts, {p.name: sleep for p in parts}, jobs=2, deadline_s=0.0, env=dict(os.environ),
        poll_s=0.1,
    )  # fmt: skip
    timer.join()
    assert interrupted and time.time() - t0 < 30
    assert all(s["rc"] not in (None, 0) for s in state.values())  # both stopped
    cmd = parts_lib.command(parts[1], "configs/x.py:p", ["--config.a=1"], share_from="b")
    assert cmd[-5:] == [
        "--config.a=1", "--noprogress", "--config.al.strategies=random",
        "--config.al.run_trials=1", "--config.al.share_from=b",
    ]  # fmt: skip


def test_parallel_cli_parts_get_sigint_when_the_launcher_is_killed(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's prctl")
    part = (
        "import signal, sys, time\n"
        "inherited = 'ignored' if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else 'default'\n"
        "def stop(*_):\n"
        "    open(sys.argv[1] + '.stopped', 'w').write('SIGINT'); sys.exit(130)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "open(sys.argv[1] + '.started', 'w').write(inherited)\n"
        "time.sleep(60)\n"
    )  # fmt: skip
    launcher = (
        "import os, sys\n"
        "from mtal_jax.al import parts as parts_lib\n"
        f"p = parts_lib.Part('random', 0, {str(tmp_path / 'p0')!r})\n"
        f"cmd = [sys.executable, '-c', {part!r}, p.workdir]\n"
        "parts_lib.run_parts([p], {p.name: cmd}, jobs=1, deadline_s=0.0, env=dict(os.environ),\n"
        "                    poll_s=0.1)\n"
    )  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # started as a shell starts a background job (``cmd &``): SIGINT ignored, which the
    # part must not inherit, or neither this stop nor the deadline's reaches it
    ignoring = ["bash", "-c", 'trap "" INT; exec "$@"', "_", sys.executable, "-c", launcher]
    proc = subprocess.Popen(ignoring, cwd=root)
    try:
        for _ in range(1200):  # the part has started (its handler is installed)
            if (tmp_path / "p0.started").exists():
                break
            time.sleep(0.1)
        time.sleep(0.2)
        assert (tmp_path / "p0.started").read_text() == "default"
        proc.kill()  # no stop of the launcher's own: the kernel's signal stops the part
        proc.wait()
        for _ in range(300):  # written by the part's SIGINT handler
            if (tmp_path / "p0.stopped").exists() and (tmp_path / "p0.stopped").read_text():
                break
            time.sleep(0.1)
        assert (tmp_path / "p0.stopped").read_text() == "SIGINT"
    finally:
        proc.kill()


def test_parallel_cli_an_error_in_the_launcher_stops_the_running_parts(tmp_path):
    from mtal_jax.al import parts as parts_lib

    (tmp_path / "afile").write_text("")
    parts = [
        parts_lib.Part("random", 0, str(tmp_path / "p0")),
        parts_lib.Part("random", 1, str(tmp_path / "afile" / "p1")),  # its folder cannot exist
    ]
    first = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    commands = {
        parts[0].name: [sys.executable, "-c", first, str(tmp_path / "p0.pid")],
        parts[1].name: [sys.executable, "-c", "pass"],
    }
    t0 = time.time()
    with pytest.raises(OSError):
        parts_lib.run_parts(
            parts, commands, jobs=2, deadline_s=0.0, env=dict(os.environ), poll_s=0.1,
        )  # fmt: skip
    assert time.time() - t0 < 30  # SIGINT stopped the first part before the error came out
    for _ in range(100):  # (the wrapper writes the pid once it has exec'd the part)
        if (tmp_path / "p0.pid").exists() and (tmp_path / "p0.pid").read_text():
            break
        time.sleep(0.05)
    if (tmp_path / "p0.pid").exists():
        with pytest.raises(ProcessLookupError):
            os.kill(int((tmp_path / "p0.pid").read_text()), 0)


def test_parallel_cli_a_part_waits_for_a_run_directory_another_process_holds(tmp_path):
    import threading

    from mtal_jax import workdir_lock
    from mtal_jax.al import parts as parts_lib

    part = parts_lib.Part("random", 0, str(tmp_path / "p0"))
    fd = workdir_lock.acquire(part.workdir)  # a part of a launcher that died, still stopping
    assert workdir_lock.holder(part.workdir).startswith(f"pid {os.getpid()} ")
    released = []
    timer = threading.Timer(1.5, lambda: (workdir_lock.release(fd), released.append(time.time())))
    timer.start()
    write = "import sys, time; open(sys.argv[1], 'w').write(str(time.time()))"
    state, _ = parts_lib.run_parts(
        [part], {part.name: [sys.executable, "-c", write, part.workdir + ".start"]}, jobs=1,
        deadline_s=0.0, env=dict(os.environ), poll_s=0.1,
    )  # fmt: skip
    timer.join()
    assert state[part.name]["rc"] == 0 and workdir_lock.holder(part.workdir) == ""
    assert float((tmp_path / "p0.start").read_text()) >= released[0]


def test_parallel_cli_merge_and_restore_name_a_bad_part_and_keep_the_others(tmp_path):
    from mtal_jax.al import parts as parts_lib

    good, bad = (parts_lib.Part("random", t, str(tmp_path / "w" / f"p{t}")) for t in (0, 1))
    for p in (good, bad):
        os.makedirs(p.workdir)
    jsonio.write_atomic(
        os.path.join(good.workdir, "results.json"),
        [{"trial": 0, "strategy": "random", "cycle": 0, "labeled_fraction": 0.4, "mdsq": 0.5}],
    )
    (tmp_path / "w" / "p1" / "results.json").write_text('[{"trial": 1,')  # cut short
    records, errors = parts_lib.merge([good, bad], str(tmp_path / "m"), {}, {}, last_cycle=5)
    assert [r["trial"] for r in records] == [0] and list(errors) == [bad.name]
    # the merged summary knows the planned last cycle: the part at cycle 0 is still running
    summary = jsonio.read(str(tmp_path / "m" / "summary.json"))
    assert summary["random"]["finished_per_trial"] == [False]
    assert "p1/results.json" in errors[bad.name] and "malformed JSON" in errors[bad.name]
    # restore: a leftover of a restore cut short is replaced; a part folder that lacks
    # records of its archive is refused by name; one as far as its archive is kept
    arch = tmp_path / "arch" / "parts"
    for name, cycles in (("random.trial_0", (0, 1)), ("ours.trial_0", (0,))):
        (arch / name).mkdir(parents=True)
        (arch / name / "archive.json").write_text("{}")
        jsonio.write_atomic(
            str(arch / name / "results.json"),
            [{"trial": 0, "strategy": name.split(".")[0], "cycle": c} for c in cycles],
        )
    here = tmp_path / "w2" / "parts"
    (here / "random.trial_0.restoring").mkdir(parents=True)
    (here / "random.trial_0.restoring" / "stale").write_text("")
    (here / "ours.trial_0").mkdir()
    jsonio.write_atomic(str(here / "ours.trial_0" / "results.json"),
                        [{"trial": 0, "strategy": "ours", "cycle": c} for c in (0, 1)])  # fmt: skip
    got = parts_lib.restore(str(tmp_path / "arch"), str(tmp_path / "w2"))
    assert got == ["random.trial_0"]  # ours.trial_0 kept: it went further here
    assert sorted(os.listdir(here)) == ["ours.trial_0", "random.trial_0"]
    assert not (here / "random.trial_0" / "stale").exists()
    jsonio.write_atomic(str(here / "ours.trial_0" / "results.json"), [])  # started here anew
    with pytest.raises(ValueError, match=r"part ours.trial_0: .* lacks 1 records"):
        parts_lib.restore(str(tmp_path / "arch"), str(tmp_path / "w2"))


def test_parallel_cli_warmup_starts_the_others_after_the_first_part_records_a_cycle(tmp_path):
    from mtal_jax.al import parts as parts_lib

    parts = [parts_lib.Part("random", t, str(tmp_path / f"p{t}")) for t in range(3)]
    os.makedirs(parts[0].workdir)  # restored with an AL cycle from another machine: cold cache
    jsonio.write_atomic(
        os.path.join(parts[0].workdir, "results.json"),
        [{"trial": 0, "strategy": "random", "cycle": c} for c in (0, 1)],
    )
    first = (
        "import json, os, sys, time; w = sys.argv[1]; time.sleep(1.5); "
        "open(w + '.warm', 'w').write(str(time.time())); "
        "json.dump([{'trial': 0, 'strategy': 'random', 'cycle': c} for c in (0, 1, 2)], "
        "open(w + '/results.json', 'w')); time.sleep(1.0)"
    )  # fmt: skip
    other = "import sys, time; open(sys.argv[1] + '.start', 'w').write(str(time.time()))"
    commands = {parts[0].name: [sys.executable, "-c", first, parts[0].workdir]}
    commands.update({p.name: [sys.executable, "-c", other, p.workdir] for p in parts[1:]})
    state, _ = parts_lib.run_parts(
        parts, commands, jobs=3, deadline_s=0.0, env=dict(os.environ), poll_s=0.1, warmup=True
    )
    assert parts_lib.failed_parts(state) == [] and all(s["rc"] == 0 for s in state.values())
    warm = float((tmp_path / "p0.warm").read_text())
    for t in (1, 2):  # started after the first part's first AL cycle, before it ended
        start = float((tmp_path / f"p{t}.start").read_text())
        assert warm <= start < warm + 5.0


def test_parallel_cli_starts_no_other_part_when_the_warmup_part_fails(tmp_path):
    # GPU lease 3: a compiler crash in the first part is what every part meets
    from mtal_jax.al import parts as parts_lib

    parts = [parts_lib.Part("random", t, str(tmp_path / f"p{t}")) for t in range(3)]
    fail = "import sys; sys.exit(3)"
    other = "import sys; open(sys.argv[1] + '.start', 'w').write('')"
    commands = {parts[0].name: [sys.executable, "-c", fail, parts[0].workdir]}
    commands.update({p.name: [sys.executable, "-c", other, p.workdir] for p in parts[1:]})
    state, interrupted = parts_lib.run_parts(
        parts, commands, jobs=3, deadline_s=0.0, env=dict(os.environ), poll_s=0.1, warmup=True
    )
    assert not interrupted and parts_lib.failed_parts(state) == [parts[0].name]
    assert state[parts[0].name]["rc"] == 3
    assert all(state[p.name]["rc"] is None for p in parts[1:])  # never started
    assert not any((tmp_path / f"p{t}.start").exists() for t in (1, 2))
    state, _ = parts_lib.run_parts(  # without the warm-up they all run
        parts, commands, jobs=3, deadline_s=0.0, env=dict(os.environ), poll_s=0.1
    )
    assert parts_lib.failed_parts(state) == [parts[0].name]
    assert all((tmp_path / f"p{t}.start").exists() for t in (1, 2))


def test_parallel_cli_restores_only_the_parts_it_runs(tmp_path):
    from mtal_jax.al import parts as parts_lib

    for name in ("random.trial_0", "ours.trial_0"):
        part = tmp_path / "arch" / "parts" / name
        part.mkdir(parents=True)
        (part / "archive.json").write_text("{}")
    got = parts_lib.restore(str(tmp_path / "arch"), str(tmp_path / "w"), {"ours.trial_0"})
    assert got == ["ours.trial_0"] and os.listdir(tmp_path / "w" / "parts") == ["ours.trial_0"]
    assert parts_lib.restore(str(tmp_path / "arch"), str(tmp_path / "w")) == ["random.trial_0"]
    with pytest.raises(FileNotFoundError, match="not an archive of parallel_cli"):
        parts_lib.restore(str(tmp_path / "w" / "parts"), str(tmp_path / "x"))


def test_parallel_cli_spreads_the_parts_over_the_least_loaded_devices(tmp_path):
    from mtal_jax.al import parts as parts_lib

    parts = [parts_lib.Part("random", t, str(tmp_path / f"p{t}")) for t in range(5)]
    # parts 0-2 run long, 3-4 start when a slot frees: p0 -> 0, p1 -> 1, p2 -> 0 (a tie goes
    # to the first), then p3 ends at once (on 1) and p4 takes device 1 again
    write = (
        "import os, sys, time; open(sys.argv[1], 'w').write(os.environ['CUDA_VISIBLE_DEVICES']); "
    )
    commands = {
        p.name: [sys.executable, "-c", write + f"time.sleep({2.0 if t < 3 else 0})",
                 p.workdir + ".dev"]
        for t, p in enumerate(parts)
    }  # fmt: skip
    state, _ = parts_lib.run_parts(
        parts, commands, jobs=4, deadline_s=0.0, env=dict(os.environ), poll_s=0.05,
        devices=("0", "1"),
    )  # fmt: skip
    assert all(s["rc"] == 0 for s in state.values())
    got = [(tmp_path / f"p{t}.dev").read_text() for t in range(5)]
    assert got[:4] == ["0", "1", "0", "1"] and got[4] == "1"


def test_parallel_cli_refuses_a_folder_another_launcher_holds(tmp_path):
    from mtal_jax import workdir_lock

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fd = workdir_lock.acquire(str(tmp_path / "par"))
    try:
        out = subprocess.run(
            [sys.executable, "-m", "mtal_jax.al.parallel_cli", "--config", "configs/tiny.py:repro",
             "--workdir", str(tmp_path / "par"), "--merge_only"],
            check=False, cwd=root, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        workdir_lock.release(fd)
    assert out.returncode == 1 and "is in use by another process" in out.stderr
    assert not os.path.exists(tmp_path / "par" / "results.json")  # nothing was written
