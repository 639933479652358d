"""The reproduction's structure: per-strategy trial counts, their validation, presets, and a
tiny run with {random: 2 trials, ours: 1} that survives crashes and resumes identically."""

import os

import pytest

from configs import camvid, default, tiny
from mtal_jax import jsonio, strategies
from mtal_jax.al import experiment, progress, scoring
from mtal_jax.data import pipeline


def _config(data_dir=None, **al):
    config = tiny.get_config()
    if data_dir is not None:
        config.data.data_dir = str(data_dir)
    config.al.reference_map = 0.5  # no reference run: the records' mDSQ uses these
    config.al.reference_miou = 0.5
    config.al.strategies = "random,ours"
    config.al.num_trials = 2
    config.al.trials_per_strategy = {"random": 2, "ours": 1}
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
    summary = jsonio.read(os.path.join(workdir, "summary.json"))
    assert summary["random"]["trials"] == [0, 1] and summary["ours"]["trials"] == [0]
    paired = jsonio.read(os.path.join(workdir, "paired.json"))
    gain = records[3]["mdsq"] - records[1]["mdsq"]  # ours - random, trial 0, cycle 1
    assert paired["ours"]["trials"] == 1
    assert paired["ours"]["mean"] == pytest.approx(gain)
    assert paired["ours"]["ci95"] == [None, None]  # one trial: no interval


def test_crash_then_resume_gives_the_same_records(tmp_path, data_dir, uninterrupted, monkeypatch):
    _, expected = uninterrupted
    workdir = str(tmp_path / "crashy")
    config = _config(data_dir)

    class Crash(Exception):
        pass

    # 1. Crash while training trial 1's cycle 0 (the fourth training run).
    real_iter = pipeline.iterate_train
    calls = {"n": 0}

    def crashing_iter(ds, start, **kw):
        calls["n"] += 1
        it = real_iter(ds, start, **kw)
        if calls["n"] == 4:
            yield next(it)
            raise Crash("killed while training")
        yield from it

    monkeypatch.setattr(pipeline, "iterate_train", crashing_iter)
    with pytest.raises(Crash):
        experiment.run(config, workdir, progress=False)
    monkeypatch.setattr(pipeline, "iterate_train", real_iter)
    done = jsonio.read(os.path.join(workdir, "results.json"))
    assert {r["trial"] for r in done} == {0}

    # 2. Crash while scoring the pool of trial 1's random.
    def crashing_score(*a, **kw):
        raise Crash("killed while scoring")

    monkeypatch.setattr(scoring, "score_pool", crashing_score)
    with pytest.raises(Crash):
        experiment.run(config, workdir, progress=False)
    monkeypatch.undo()

    records = [r.to_json() for r in experiment.run(config, workdir, progress=False)]
    assert _key(records) == _key(expected)
    for got, want in zip(records, expected):
        for k in ("map", "ap50", "miou", "mdsq"):
            assert got[k] == pytest.approx(want[k], abs=1e-6), (got["trial"], got["strategy"], k)
    assert jsonio.read(os.path.join(workdir, "paired.json")) == jsonio.read(
        os.path.join(uninterrupted[0], "paired.json")
    )


def test_resume_with_other_trial_counts_is_refused(uninterrupted, data_dir):
    workdir, _ = uninterrupted
    config = _config(data_dir, trials_per_strategy={"random": 2, "ours": 2})
    with pytest.raises(ValueError, match="another config"):
        experiment.run(config, str(workdir), progress=False)

