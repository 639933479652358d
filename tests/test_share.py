"""Runs shared between experiments (al.experiment.share, ``al.share_from``): an experiment
that copies the finished runs it would train again ends with the records of one that trains
everything itself."""

import dataclasses
import os

import pytest

from configs import tiny
from mtal_jax import jsonio, strategy_identity
from mtal_jax.al import experiment
from mtal_jax.al.experiment import setup as setup_lib
from mtal_jax.al.experiment import share
from mtal_jax.train import weights_file


def _source_config(data_dir):
    """The "main comparison": random and ours, 2 trials, a trained reference."""
    config = tiny.get_config()
    config.data.data_dir = str(data_dir)
    config.al.full_reference = True
    config.al.strategies = "random,ours"
    config.al.num_trials = 2
    config.al.trials_per_strategy = {"random": 2, "ours": 1}
    return config


def _table1_config(data_dir, share_from=""):
    """The "Table I" experiment: ours under another name (same selector), ours with the KL
    divergence (another selector; trial 0 only), random; 2 trials (the source ran ours in
    trial 0 only). A trial the source lacks: ``test_only_finished_runs_...``."""
    config = _source_config(data_dir)
    config.al.strategies = "random,ours_js_all,ours_kl_all"
    config.al.num_trials = 2
    config.al.trials_per_strategy = {"ours_kl_all": 1}
    config.al.strategy.kwargs = {
        "ours_js_all": {"base": "ours", "weights": (1, 1, 1), "cls_divergence": "js"},
        "ours_kl_all": {"base": "ours", "cls_divergence": "kl"},
    }
    config.al.order = "strategy"
    config.al.share_from = share_from
    return config


def _records(workdir):
    return {
        (r["trial"], r["strategy"], r["cycle"]): r
        for r in jsonio.read(os.path.join(workdir, "results.json"))
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="module")
def source(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("source"))
    experiment.run(_source_config(data_dir), workdir, progress=False)
    return workdir


@pytest.fixture(scope="module")
def shared(tmp_path_factory, data_dir, source):
    workdir = str(tmp_path_factory.mktemp("shared"))
    experiment.run(_table1_config(data_dir, source), workdir, progress=False)
    return workdir


def test_shared_records_equal_an_experiment_that_trains_everything(
    tmp_path, data_dir, source, shared
):
    alone = str(tmp_path / "alone")
    experiment.run(_table1_config(data_dir), alone, progress=False)
    got, want = _records(shared), _records(alone)
    assert got.keys() == want.keys()
    assert len(got) == (2 + 2 + 1) * 2  # random, ours_js_all: 2 trials, ours_kl_all: 1; cycles 0, 1
    for key in want:
        assert got[key]["labeled_ids"] == want[key]["labeled_ids"], key
        for m in ("map", "ap50", "miou", "mdsq"):
            assert got[key][m] == pytest.approx(want[key][m], abs=1e-6), (key, m)
    ref = jsonio.read(os.path.join(source, "reference", "metrics.json"))
    assert jsonio.read(os.path.join(shared, "reference", "metrics.json")) == ref


def test_what_is_copied_and_what_is_trained(source, shared):
    def marker(run):
        path = os.path.join(shared, run, share.MARKER)
        return jsonio.read(path) if os.path.exists(path) else None

    assert marker("reference") == {"source": source, "run": "reference"}
    for t in (0, 1):
        assert marker(f"trial_{t}/cycle_0") == {"source": source, "run": f"trial_{t}/cycle_0"}
        assert marker(f"trial_{t}/random") == {"source": source, "run": f"trial_{t}/random"}
    assert marker("trial_0/ours_kl_all") is None  # another selector: trained here
    assert marker("trial_0/ours_js_all") == {"source": source, "run": "trial_0/ours"}
    assert marker("trial_1/ours_js_all") is None  # the source ran ours in trial 0 only
    # The copied selection is recorded under this experiment's name; the source's is kept.
    sel = jsonio.read(os.path.join(shared, "trial_0/ours_js_all/cycle_1/selection.json"))
    src = jsonio.read(os.path.join(source, "trial_0/ours/cycle_1/selection.json"))
    assert sel["strategy"] == "ours_js_all" and src["strategy"] == "ours"
    assert sel["selected"] == src["selected"]
    assert not [n for n in os.listdir(shared) if ".tmp" in n]


def test_nothing_left_to_copy_on_resume(data_dir, source, shared):
    plan = setup_lib.plan_from_config(_table1_config(data_dir, source))
    source_config = share.check_source(source, _table1_config(data_dir, source).to_dict())
    assert share.plan_shares(source, source_config, shared, plan) == []
    before = _records(shared)
    experiment.run(_table1_config(data_dir, source), shared, progress=False)  # trains nothing
    assert _records(shared) == before


def test_another_experiment_is_refused_before_anything_is_written(tmp_path, data_dir, source):
    config = _table1_config(data_dir, source)
    config.train.steps = 7
    with pytest.raises(ValueError, match=r"differs from this one at \['train.steps'\]"):
        experiment.run(config, str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run" / "config.json")
    config = _table1_config(data_dir, str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="nowhere.*no experiment there"):
        experiment.run(config, str(tmp_path / "run"), progress=False)
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_a_source_whose_network_lacks_the_loss_modules_is_refused(tmp_path):
    # the strategy list is exempt from the comparison, but with model.loss_prediction
    # false an ll4al strategy decides whether the network has the loss modules
    source = {"model": {"loss_prediction": False}, "al": {"strategies": "random"}}
    (tmp_path / "src").mkdir()
    jsonio.write_atomic(str(tmp_path / "src" / "config.json"), source)
    mine = {"model": {"loss_prediction": False}, "al": {"strategies": "random,ll4al"}}
    assert share.has_loss_modules(mine) and not share.has_loss_modules(source)
    alias = {
        "model": {"loss_prediction": False},
        "al": {"strategies": ["x"], "strategy": {"kwargs": {"x": {"base": "ll4al"}}}},
    }
    assert share.has_loss_modules(alias)  # an alias of ll4al counts too
    with pytest.raises(ValueError, match="its network lacks the LL4AL loss modules"):
        share.check_source(str(tmp_path / "src"), mine)
    share.check_source(str(tmp_path / "src"), {**mine, "al": {"strategies": "random,entropy"}})


def test_share_from_is_part_of_the_experiment(tmp_path, data_dir, source, shared):
    """A resumed run may not start or stop sharing: its copied runs would not match."""
    with pytest.raises(ValueError, match="al.share_from"):
        experiment.run(_table1_config(data_dir), shared, progress=False)


def _finished(run_dir, weights=True):
    os.makedirs(os.path.join(run_dir, "train"), exist_ok=True)
    jsonio.write_atomic(os.path.join(run_dir, "metrics.json"), {})
    jsonio.write_atomic(os.path.join(run_dir, "train", "final_eval.json"), {})
    if weights:
        with open(os.path.join(run_dir, weights_file.FILENAME), "wb") as f:
            f.write(b"x")


def _layout(tmp_path, data_dir):
    """A source with trial 0 (cycle 0, random finished, ours at cycle 1 of 2), trial 1's
    cycle 0 finished without its weights; the plan of a 3-trial, 3-cycle experiment (trial 2
    is not in the source)."""
    src = str(tmp_path / "src")
    config = _source_config(data_dir)
    config.al.num_cycles = 3
    os.makedirs(src)
    jsonio.write_atomic(os.path.join(src, "config.json"), jsonio.normalize(config.to_dict()))
    _finished(os.path.join(src, "reference"), weights=False)
    _finished(os.path.join(src, "trial_0", "cycle_0"))
    for k in (1, 2):
        _finished(os.path.join(src, "trial_0", "random", f"cycle_{k}"), weights=False)
    _finished(os.path.join(src, "trial_0", "ours", "cycle_1"))
    _finished(os.path.join(src, "trial_1", "cycle_0"), weights=False)
    dest = _table1_config(data_dir, src)
    dest.al.num_cycles = 3
    dest.al.num_trials = 3
    source_config = share.check_source(src, dest.to_dict())
    return src, source_config, setup_lib.plan_from_config(dest)


def test_only_finished_runs_with_what_their_successors_need_are_copied(tmp_path, data_dir):
    src, source_config, plan = _layout(tmp_path, data_dir)
    dest = str(tmp_path / "dest")
    got = share.plan_shares(src, source_config, dest, plan)
    assert got == [  # ours (unfinished), trial 1's cycle 0 (no weights), trial 2: not copied
        share.Share("reference", "reference"),
        share.Share(os.path.join("trial_0", "cycle_0"), os.path.join("trial_0", "cycle_0")),
        share.Share(os.path.join("trial_0", "random"), os.path.join("trial_0", "random")),
    ]
    share.share_runs(src, source_config, dest, plan)
    assert share.plan_shares(src, source_config, dest, plan) == []
    assert os.path.exists(os.path.join(dest, "trial_0", "random", "cycle_2", "metrics.json"))


def test_strategies_are_not_copied_onto_a_cycle_zero_trained_here(tmp_path, data_dir):
    src, source_config, plan = _layout(tmp_path, data_dir)
    dest = str(tmp_path / "dest")
    _finished(os.path.join(dest, "trial_0", "cycle_0"))  # trained here: another model
    assert share.plan_shares(src, source_config, dest, plan) == [
        share.Share("reference", "reference")
    ]
    other = str(tmp_path / "other")  # copied, but from another experiment
    jsonio.write_atomic(
        os.path.join(dest, "trial_0", "cycle_0", share.MARKER),
        {"source": other, "run": "trial_0/cycle_0"},
    )
    assert share.plan_shares(src, source_config, dest, plan) == [
        share.Share("reference", "reference")
    ]


def test_a_given_reference_is_not_copied(tmp_path, data_dir):
    src, source_config, plan = _layout(tmp_path, data_dir)
    plan = dataclasses.replace(plan, reference_map=0.5, reference_miou=0.5)
    got = share.plan_shares(src, source_config, str(tmp_path / "dest"), plan)
    assert share.Share("reference", "reference") not in got


def test_resolved_hyperparameters():
    js = strategy_identity.resolved_hyperparameters("ours", {"weights": (1, 1, 1)})
    assert js == strategy_identity.resolved_hyperparameters("ours", {"cls_divergence": "js"})
    assert js["tau"] == 0.3 and js["cls_divergence"] == "js"
    assert js != strategy_identity.resolved_hyperparameters("ours", {"cls_divergence": "kl"})
    assert strategy_identity.resolved_hyperparameters("random", {}) == {}
    with pytest.raises(ValueError, match="takes no keyword"):
        strategy_identity.resolved_hyperparameters("ours", {"taux": 1})


def test_steps_shared_counts_the_runs_a_finished_source_saves(data_dir):
    config = _table1_config(data_dir)
    source_config = _source_config(data_dir)
    plan = setup_lib.plan_from_config(config, pool_size=200)
    source_plan = setup_lib.plan_from_config(source_config, pool_size=200)
    s = plan.schedule
    cycles = plan.num_cycles - 1
    # reference; trials 0 and 1 (the source's): cycle 0 and random; trial 0: ours_js_all.
    want = s.reference_steps + 2 * s.initial_steps + 3 * cycles * s.cycle_steps
    assert share.steps_shared(plan, source_plan) == want
    # trained: ours_js_all in trial 1, ours_kl_all in trial 0
    assert plan.planned_steps() - want == 2 * cycles * s.cycle_steps
    source_config.al.full_reference = False
    no_reference = setup_lib.plan_from_config(source_config, pool_size=200)
    assert share.steps_shared(plan, no_reference) == want - s.reference_steps
    with pytest.raises(ValueError, match="no schedule"):
        share.steps_shared(setup_lib.plan_from_config(config), source_plan)


def test_results_page_counts_a_copied_run_s_wall_time_in_its_source(tmp_path, source, shared):
    from docs.results_lib import run_dirs

    walls = [
        os.path.relpath(root, shared)
        for root, _, names in os.walk(shared)
        if "wall.json" in names and not run_dirs.is_copied(root, shared)
    ]
    trained_here = {  # the runs that test_what_is_copied_and_what_is_trained finds unmarked
        "trial_0/ours_kl_all/cycle_1",
        "trial_1/ours_js_all/cycle_1",
    }
    assert set(walls) == {os.path.normpath(w) for w in trained_here}
    _, _, seconds = run_dirs.load_run(shared)
    want = sum(jsonio.read(os.path.join(shared, w, "wall.json"))["seconds"] for w in walls)
    assert seconds == pytest.approx(want)


def test_continue_sh_restores_the_source_before_a_sharing_experiment(tmp_path):
    """``experiments/continue.sh`` with a stand-in ``python`` (prints its arguments): Table I
    gets its ``al.share_from``, and the main comparison's archive is restored first when its
    run directory is missing (not when it is there)."""
    import subprocess

    repo = os.path.join(os.path.dirname(__file__), "..")
    os.makedirs(tmp_path / "experiments" / "repro_camvid")
    (tmp_path / "experiments" / "repro_camvid" / "archive.json").write_text("{}")
    os.makedirs(tmp_path / ".venv" / "bin")
    (tmp_path / ".venv" / "bin" / "activate").write_text(
        'python() { echo "PY $*"; }; export -f python\n'
    )
    script = tmp_path / "experiments" / "continue.sh"
    with open(os.path.join(repo, "experiments", "continue.sh"), encoding="utf-8") as f:
        script.write_text(f.read())

    def run(*names):
        env = dict(os.environ, ARCHIVE_EVERY_S="1")
        out = subprocess.run(
            ["bash", str(script), *(names or ("table1_camvid",))],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    train = (
        "PY train.py --config configs/camvid.py:table1 --workdir runs/table1_camvid "
        "--noprogress --config.al.share_from=runs/repro_camvid"
    )
    restore = "PY -m mtal_jax.al.archive_cli restore experiments/repro_camvid runs/repro_camvid"
    # (each experiment's archive is first put back if a killed save left it missing)
    recover = "PY -m mtal_jax.al.archive_cli recover experiments/{}".format
    assert run() == [recover("table1_camvid"), recover("repro_camvid"), restore, train]
    # ours vs random over 10 trials, extended to 20, shares the same source (its first 5)
    trials10 = (
        "PY train.py --config configs/camvid.py:trials10 --workdir runs/trials10_camvid "
        "--noprogress --config.al.share_from=runs/repro_camvid --config.al.num_trials=20"
    )
    assert run("trials10_camvid") == [
        recover("trials10_camvid"),
        recover("repro_camvid"),
        restore,
        trials10,
    ]
    os.makedirs(tmp_path / "runs" / "repro_camvid")
    assert run() == [recover("table1_camvid"), train]
    # names run in the script's order, not the arguments' (Table I, then the extension)
    assert run("trials10_camvid", "table1_camvid") == [
        recover("table1_camvid"),
        train,
        recover("trials10_camvid"),
        trials10,
    ]


def _continue_sh_sandbox(tmp_path, cases):
    """A copy of ``experiments/continue.sh`` under ``tmp_path`` with an empty venv and a
    stand-in ``python`` on ``tmp_path/bin`` (an executable, not a shell function: the saves
    run as ``nice python``) whose ``case "$*"`` branches are ``cases``."""
    repo = os.path.join(os.path.dirname(__file__), "..")
    os.makedirs(tmp_path / ".venv" / "bin")
    (tmp_path / ".venv" / "bin" / "activate").write_text("")
    os.makedirs(tmp_path / "bin")
    stand_in = tmp_path / "bin" / "python"
    stand_in.write_text('#!/bin/bash\ncase "$*" in\n' + cases + "esac\n")
    stand_in.chmod(0o755)
    os.makedirs(tmp_path / "experiments")
    script = tmp_path / "experiments" / "continue.sh"
    with open(os.path.join(repo, "experiments", "continue.sh"), encoding="utf-8") as f:
        script.write_text(f.read())
    return script


def test_continue_sh_saves_after_the_experiment_ends(tmp_path):
    """An archive save still running when the experiment ends scanned an earlier state, so
    ``continue.sh`` saves once more after the end (the stand-in training ends 0.5 s into a
    2 s save); and after a failed run too, before it stops."""
    import subprocess

    os.makedirs(tmp_path / "runs" / "table1_camvid")
    (tmp_path / "runs" / "table1_camvid" / "config.json").write_text("{}")
    script = _continue_sh_sandbox(
        tmp_path,
        '  *train.py*) echo TRAIN; sleep 1.5; echo TRAIN_END; exit "${TRAIN_RC:-0}" ;;\n'
        '  *" save "*) echo SAVE; sleep 2 ;;\n',
    )

    def run(rc):
        env = dict(
            os.environ,
            ARCHIVE_EVERY_S="1",
            TRAIN_RC=str(rc),
            PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        )
        out = subprocess.run(
            ["bash", str(script), "table1_camvid"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode, out.stdout.splitlines()

    code, lines = run(0)
    assert code == 0
    assert lines == ["TRAIN", "SAVE", "TRAIN_END", "SAVE"], lines
    code, lines = run(3)
    assert code == 1 and lines == ["TRAIN", "SAVE", "TRAIN_END", "SAVE"], lines


def test_continue_sh_stops_on_term_saves_and_runs_no_other_experiment(tmp_path):
    """TERM to ``continue.sh`` reaches the running training (a background job ignores INT,
    so it is forwarded as TERM), the archive is saved once more, and the next experiment does
    not start; the exit status says it was stopped."""
    import signal
    import subprocess
    import time

    for name in ("table1_camvid", "table1_synthetic"):
        os.makedirs(tmp_path / "runs" / name)
        (tmp_path / "runs" / name / "config.json").write_text("{}")
    script = _continue_sh_sandbox(
        tmp_path,
        "  *train.py*) trap 'kill $s; echo TRAIN_TERM $5; exit 143' TERM\n"
        "    echo TRAIN $5; sleep 30 & s=$!; wait $s ;;\n"
        '  *" save "*) echo SAVE $5 ;;\n',
    )
    env = dict(
        os.environ,
        ARCHIVE_EVERY_S="60",
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    proc = subprocess.Popen(
        ["bash", str(script), "table1_camvid", "table1_synthetic"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert out.splitlines() == [
        "TRAIN runs/table1_camvid",
        "TRAIN_TERM runs/table1_camvid",
        "SAVE experiments/table1_camvid",
        "continue.sh: stopped during table1_camvid",
    ], (out, err)


def _within_config(data_dir, strategies_csv):
    """Table I's settings without S_cls in both divergences: one selector (w_cls = 0)."""
    config = tiny.get_config()
    config.data.data_dir = str(data_dir)
    config.al.strategies = strategies_csv
    config.al.num_trials = 1
    config.al.strategy.kwargs = {
        "ours_js_loc": {"base": "ours", "weights": (1, 0, 0), "cls_divergence": "js"},
        "ours_kl_loc": {"base": "ours", "weights": (1, 0, 0), "cls_divergence": "kl"},
    }
    config.al.order = "strategy"
    return config


def test_selection_identity_ignores_what_cannot_change_a_selection():
    ident = strategy_identity.selection_identity
    assert ident("ours", {"weights": (1, 0, 1), "cls_divergence": "kl", "eps": 1e-3}) == ident(
        "ours", {"weights": [1.0, 0.0, 1.0]}
    )
    assert ident("ours", {"weights": (1, 1, 0), "cls_divergence": "kl"}) != ident(
        "ours", {"weights": (1, 1, 0)}
    )
    assert ident("ours", {"weights": (1, 0, 0), "tau": 0.5}) != ident(
        "ours", {"weights": (1, 0, 0)}
    )
    assert ident("random", {}) == {}
    with pytest.raises(ValueError, match="weights must be three"):
        ident("ours", {"weights": (1, 0)})


def test_a_strategy_that_selects_like_a_finished_one_is_copied_and_equals_training_it(
    tmp_path, data_dir
):
    both = str(tmp_path / "both")
    experiment.run(_within_config(data_dir, "ours_js_loc,ours_kl_loc"), both, progress=False)
    marker = jsonio.read(os.path.join(both, "trial_0", "ours_kl_loc", share.MARKER))
    assert marker == {"source": both, "run": "trial_0/ours_js_loc"}
    assert sorted(os.listdir(os.path.join(both, "trial_0"))) == [
        "cycle_0",
        "ours_js_loc",
        "ours_kl_loc",
    ]
    sel = jsonio.read(os.path.join(both, "trial_0/ours_kl_loc/cycle_1/selection.json"))
    assert sel["strategy"] == "ours_kl_loc"
    # The copy's records are those of training ours_kl_loc itself.
    alone = str(tmp_path / "alone")
    experiment.run(_within_config(data_dir, "ours_kl_loc"), alone, progress=False)
    assert not os.path.exists(os.path.join(alone, "trial_0", "ours_kl_loc", share.MARKER))
    got, want = _records(both), _records(alone)
    kl = [k for k in got if k[1] == "ours_kl_loc"]
    assert sorted(kl) == sorted(want)
    for key in kl:
        assert got[key]["labeled_ids"] == want[key]["labeled_ids"], key
        for m in ("map", "ap50", "miou", "mdsq"):
            assert got[key][m] == pytest.approx(want[key][m], abs=1e-6), (key, m)
    # Resumed: nothing more to copy; a run that exists is never replaced.
    plan = setup_lib.plan_from_config(_within_config(data_dir, "ours_js_loc,ours_kl_loc"))
    spec = plan.strategy("ours_kl_loc")
    assert share.equivalent_finished_run(both, plan, 0, spec) is None


def test_steps_within_counts_each_selector_once_per_trial(data_dir):
    config = _within_config(data_dir, "ours_js_loc,ours_kl_loc")
    plan = setup_lib.plan_from_config(config, pool_size=200)
    s = plan.schedule
    assert share.steps_within(plan) == (plan.num_cycles - 1) * s.cycle_steps  # kl_loc, trial 0
    # Table I: ours_js_all is the source's ours (steps_shared), ours_kl_all another selector.
    table1 = setup_lib.plan_from_config(_table1_config(data_dir), pool_size=200)
    assert share.steps_within(table1) == 0
    source = setup_lib.plan_from_config(_source_config(data_dir), pool_size=200)
    config.al.strategies = "ours,ours_js_loc,ours_kl_loc"
    config.al.strategy.kwargs["ours"] = {}
    three = setup_lib.plan_from_config(config, pool_size=200)
    # with the source, ours is copied from it (steps_shared) and counts only there
    assert share.steps_within(three, source) == (plan.num_cycles - 1) * s.cycle_steps
    with pytest.raises(ValueError, match="no schedule"):
        share.steps_within(setup_lib.plan_from_config(config))


def test_a_copy_killed_half_way_leaves_nothing_behind_once_copied_again(tmp_path):
    src = tmp_path / "src" / "trial_0" / "ours"
    (src / "cycle_1").mkdir(parents=True)
    (src / "cycle_1" / "selection.json").write_text('{"strategy": "ours", "selected": [1]}')
    stale = tmp_path / "dest" / "trial_0" / "ours_x.tmp99999"  # another process, killed
    (stale / "cycle_1").mkdir(parents=True)
    run = share.Share("trial_0/ours_x", "trial_0/ours")
    share.copy_run(str(tmp_path / "src"), run, str(tmp_path / "dest"), strategy="ours_x")
    assert sorted(os.listdir(tmp_path / "dest" / "trial_0")) == ["ours_x"]
    sel = jsonio.read(str(tmp_path / "dest" / "trial_0" / "ours_x" / "cycle_1" / "selection.json"))
    assert sel == {"strategy": "ours_x", "selected": [1]}
