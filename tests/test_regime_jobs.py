"""bench/regime.py: job names and the guard against resuming a job made for other settings."""

import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench" / "regime.py"


@pytest.fixture(scope="module")
def regime():
    spec = importlib.util.spec_from_file_location("regime_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    "name, groups",
    [
        ("ref", {"ref": "ref"}),
        ("ref_x2", {"ref": "ref", "x": "2"}),
        ("ref_e40", {"ref": "ref", "e": "40"}),
        ("f70_s3", {"f": "70", "seed": "3"}),
        ("f40_s0_x2", {"f": "40", "seed": "0", "x": "2"}),
        ("lc60", {"lc": "60"}),
        ("lc80_e24", {"lc": "80", "e": "24"}),
        ("w50_e1.5", {"w": "50", "e": "1.5"}),
    ],
)
def test_job_names(regime, name, groups):
    m = regime._JOB.match(name)
    assert {k: v for k, v in m.groupdict().items() if v} == groups


@pytest.mark.parametrize("name", ["f40", "ref_e", "lc", "w50_x3", "x_ref"])
def test_bad_job_names(regime, name):
    assert regime._JOB.match(name) is None


def test_resume_with_other_settings_is_refused(regime, tmp_path):
    run_dir = str(tmp_path / "ref")
    spec = {"labeled": 2400, "pool": 2400, "steps": 1800, "seed": 0}
    regime._check_job(run_dir, spec)  # first use: recorded
    regime._check_job(run_dir, dict(spec))  # same settings: resumes
    with pytest.raises(SystemExit, match=r"other settings .*'steps': \(1800, 6000\)"):
        regime._check_job(run_dir, spec | {"steps": 6000})


def test_a_second_process_on_a_job_is_refused(regime, tmp_path):
    import types

    from configs import tiny
    from mtal_jax import workdir_lock

    setup = types.SimpleNamespace(pool_size=40)  # refused before any data is read
    with (
        workdir_lock.hold(str(tmp_path / "ref")),
        pytest.raises(workdir_lock.WorkdirLockedError),
    ):
        regime.run_job("ref", tiny.get_config(), setup, str(tmp_path))
    assert not (tmp_path / "ref" / "job_spec.json").exists()


def test_warm_start_from_an_experiments_run_directory(regime, tmp_path):
    """``--warm_from <run dir>``: its weights, when it was trained on the jobs' 40 % set;
    a clear error naming it otherwise."""
    import json

    import jax
    import numpy as np

    from configs import tiny
    from mtal_jax.al import experiment
    from mtal_jax.models import multitask
    from mtal_jax.train import weights_file

    config = tiny.get_config()
    setup = experiment.build_setup(config)
    n = setup.pool_size
    base = regime._labeled(n, 40)
    with pytest.raises(SystemExit, match="neither a job name nor a directory"):
        regime._warm_variables(str(tmp_path / "nope"), config, setup, str(tmp_path), base)
    run = tmp_path / "trial_0" / "cycle_0"
    run.mkdir(parents=True)
    (run / "pool.json").write_text(json.dumps({"labeled_ids": [0, 1], "pool_size": n}))
    with pytest.raises(SystemExit, match=r"cycle_0: trained on another labeled set .*2 images"):
        regime._warm_variables(str(run), config, setup, str(tmp_path), base)
    ids = np.flatnonzero(base).tolist()
    (run / "pool.json").write_text(json.dumps({"labeled_ids": ids[::-1], "pool_size": n}))
    with pytest.raises(SystemExit, match="no checkpoint found"):
        regime._warm_variables(str(run), config, setup, str(tmp_path), base)
    variables = multitask.create_variables(setup.model, jax.random.key(3), setup.spec.image_hw)
    weights_file.save(str(run / weights_file.FILENAME), variables)
    got = regime._warm_variables(str(run), config, setup, str(tmp_path), base)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _job(labeled, steps, map_, miou, seed=0, pool=100):
    return {"labeled": labeled, "pool": pool, "steps": steps, "passes": steps * 16 / pool,
            "seed": seed, "wall_s": 10.0, "map": map_, "ap50": 2 * map_, "miou": miou,
            "per_class_ap": [map_]}  # fmt: skip


def test_summarize_merges_a_later_workdir_into_the_regime(regime, tmp_path):
    """``--summarize --merge``: a convergence check run in another workdir joins the regime
    of the folder, normalised by the folder's reference, which stays."""
    import json

    from mtal_jax import metrics

    first, later, out = tmp_path / "regime", tmp_path / "checks", tmp_path / "out"
    jobs = {"ref": _job(100, 300, 0.2, 0.6), "f40_s0": _job(40, 100, 0.1, 0.5),
            "f40_s1": _job(40, 100, 0.12, 0.52, 1)}  # fmt: skip
    for root, named in ((first, jobs), (later, {"w50_e9": _job(50, 60, 0.15, 0.55, 1)})):
        for name, job in named.items():
            (root / name).mkdir(parents=True)
            (root / name / "job.json").write_text(json.dumps(job))
    with pytest.raises(SystemExit, match="no .*reference.json"):
        regime.summarize(str(later), str(out), merge=True)
    regime.summarize(str(first), str(out))
    before = (out / "reference.json").read_text()
    floor = (out / "noise_floor.json").read_text()
    regime.summarize(str(later), str(out), merge=True)
    merged = json.loads((out / "regime.json").read_text())
    assert set(merged) == {"ref", "f40_s0", "f40_s1", "w50_e9"}
    assert merged["w50_e9"]["mdsq"] == pytest.approx(metrics.mdsq(0.15, 0.55, 0.2, 0.6))
    assert merged["f40_s0"]["mdsq"] == pytest.approx(metrics.mdsq(0.1, 0.5, 0.2, 0.6))
    assert (out / "reference.json").read_text() == before  # kept
    assert (out / "noise_floor.json").read_text() == floor  # the same seeds
    assert "| w50_e9 | 50 / 100 |" in (out / "regime_jobs.md").read_text()
