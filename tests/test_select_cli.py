"""select.py's library side: ranked output with score components, and clear input errors."""

import csv
import json
import logging
import os

import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from mtal_jax import runtime
from mtal_jax.al import experiment, select_cli
from mtal_jax.al.experiment import cycle
from tests import fixtures


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config, run_dir, setup = fixtures.train_tiny_checkpoint(tmp_path_factory)
    ids = experiment.image_ids(setup.dataset.sources["train"], np.arange(setup.pool_size))
    return config, run_dir, ids


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_json_and_csv_outputs(trained, tmp_path):
    config, run_dir, ids = trained
    pool = _write(tmp_path / "pool.txt", ids[:12])
    labeled = _write(tmp_path / "labeled.txt", ids[:3])
    out = str(tmp_path / "sel.json")
    rows = select_cli.run(
        config, strategy="ours", checkpoint=run_dir, budget=4, pool_file=pool, labeled_file=labeled,
        output=out, progress=False,
    )  # fmt: skip
    with open(out) as f:
        data = json.load(f)
    assert data["strategy"] == "ours" and data["budget"] == 4
    sel = data["selected"]
    assert [r["rank"] for r in sel] == [1, 2, 3, 4]
    chosen = [r["image_id"] for r in sel]
    assert len(set(chosen)) == 4 and set(chosen) <= set(ids[3:12])
    assert all({"score", "s_seg", "s_loc_max", "s_cls_max"} <= set(r) for r in sel)
    scores = [r["score"] for r in sel]
    assert scores == sorted(scores, reverse=True)
    assert rows == sel
    out_csv = str(tmp_path / "sel.csv")
    select_cli.run(
        config,
        strategy="random",
        checkpoint=run_dir,
        budget=3,
        output=out_csv,
        fmt="csv",
        progress=False,
    )
    with open(out_csv) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 and set(table[0]) >= {"rank", "index", "image_id", "score"}


def test_bad_inputs_fail_before_scoring(trained, tmp_path):
    config, run_dir, ids = trained
    out = str(tmp_path / "x.json")
    with pytest.raises(ValueError, match="unknown strategy 'best'"):
        select_cli.run(config, strategy="best", checkpoint=run_dir, budget=2, output=out)
    with pytest.raises(ValueError, match="larger than the 5 unlabeled"):
        select_cli.run(config, strategy="ours", checkpoint=run_dir, budget=6,
                       pool_file=_write(tmp_path / "p.txt", ids[:5]), output=out)  # fmt: skip
    with pytest.raises(
        ValueError, match=r"p2.txt: 1 unknown image id\(s\), e.g. \['no_such_image'\]"
    ):
        select_cli.run(config, strategy="ours", checkpoint=run_dir, budget=1,
                       pool_file=_write(tmp_path / "p2.txt", [ids[0], "no_such_image"]), output=out)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no checkpoint") as missing:
        select_cli.run(config, strategy="ours", checkpoint=str(tmp_path), budget=1, output=out)
    assert runtime.is_input_error(missing.value)  # select.py prints it as one line
    assert not runtime.is_input_error(ValueError("a bug elsewhere"))
    other = tiny.get_config()
    other.data.data_dir = config.data.data_dir
    other.model.neck_channels = 8  # another model than the checkpoint's
    with pytest.raises(
        ValueError,
        match=r"does not match the model of the config .*: \d+ array\(s\) differ: params/\S+: "
        r"saved \(3, 3, 16, 16\) float32, expected \(3, 3, 8, 16\) float32",
    ):  # named from the checkpoint's metadata, before any array is read
        select_cli.run(other, strategy="ours", checkpoint=run_dir, budget=1, output=out)
    assert not os.path.exists(out)


def test_with_strategy_kwargs_overrides_only_given_values():
    config = tiny.get_config()
    config.al.strategy.kwargs = {"ours": {"tau": 0.5}}
    assert select_cli.with_strategy_kwargs(config, "ours") is config  # nothing to override
    got = select_cli.with_strategy_kwargs(
        config, "ours", det_score_threshold=0.6, cls_divergence=None
    )
    assert dict(got.al.strategy.kwargs["ours"]) == {"tau": 0.5, "det_score_threshold": 0.6}
    assert dict(config.al.strategy.kwargs["ours"]) == {"tau": 0.5}  # the input is unchanged


def _built_strategies(monkeypatch) -> list[tuple]:
    """The (name, context, kwargs) of every strategy built from now on (appended)."""
    from mtal_jax import strategies

    built = []
    real = strategies.get_strategy
    monkeypatch.setattr(
        strategies,
        "get_strategy",
        lambda name, context=None, **kw: (
            built.append((name, context, kw)) or real(name, context, **kw)
        ),
    )
    return built


def test_threshold_and_divergence_flags_reach_the_strategy(trained, tmp_path, monkeypatch):
    config, run_dir, ids = trained
    calls = _built_strategies(monkeypatch)
    out = str(tmp_path / "sel.json")
    select_cli.run(
        config, strategy="ours", checkpoint=run_dir, budget=2, output=out, progress=False,
        det_score_threshold=0.0, cls_divergence="kl", weights=[0.0, 0.0, 1.0],
    )  # fmt: skip
    built = [(name, kw) for name, _, kw in calls]
    assert built[-1][0] == "ours"
    assert built[-1][1]["det_score_threshold"] == 0.0 and built[-1][1]["cls_divergence"] == "kl"
    assert tuple(built[-1][1]["weights"]) == (0.0, 0.0, 1.0)
    with open(out) as f:
        written = json.load(f)
    diag = written["diagnostics"]
    assert diag["num_images"] == len(ids) and diag["weights"] == [0.0, 0.0, 1.0]
    # S_seg alone: each selected image's score is its S_seg
    assert all(row["score"] == pytest.approx(row["s_seg"]) for row in written["selected"])
    assert set(diag["components"]) == {"S_loc", "S_cls", "S_seg"}
    with pytest.raises(ValueError, match=r"takes no keyword\(s\) \['cls_divergence'\]"):
        select_cli.run(
            config, strategy="random", checkpoint=run_dir, budget=2, output=out + "3",
            progress=False, cls_divergence="kl",
        )  # fmt: skip


def test_the_round_reaches_the_strategy_alternation_by_its_parity(trained, tmp_path, monkeypatch):
    config, run_dir, _ = trained
    calls = _built_strategies(monkeypatch)
    for round_, inner in ((0, "cald"), (1, "equal"), (2, "cald")):
        got = select_cli.run(
            config, strategy="alternation", checkpoint=run_dir, budget=2, progress=False,
            output=str(tmp_path / f"sel{round_}.json"), round_=round_,
        )  # fmt: skip
        assert (calls[-1][0], calls[-1][1].cycle) == ("alternation", round_)
        want = select_cli.run(  # what it scores with: CALD on even rounds, else EquAL (the
            # round also seeds CALD's augmentations: the same round for both)
            config, strategy=inner, checkpoint=run_dir, budget=2, progress=False,
            output=str(tmp_path / f"{inner}{round_}.json"), round_=round_,
        )  # fmt: skip
        assert [(r["image_id"], r["score"]) for r in got] == [
            (r["image_id"], r["score"]) for r in want
        ]
    with pytest.raises(ValueError, match="--round must be >= 0"):
        select_cli.run(config, strategy="random", checkpoint=run_dir, budget=2,
                       output=str(tmp_path / "x.json"), round_=-1)  # fmt: skip


def test_a_damaged_checkpoint_is_named_as_such_not_as_another_model(trained, tmp_path):
    # The checkpoint's files cut short (a copy that did not finish): its metadata cannot be
    # read, so the error says the files are damaged, not that the model differs.
    import shutil

    config, run_dir, _ = trained
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    cut = 0
    for root, _, names in os.walk(os.path.join(copy, "train")):
        for name in names:
            path = os.path.join(root, name)
            if "/d/" in path.replace(os.sep, "/") and os.path.getsize(path) > 64:
                with open(path, "r+b") as f:
                    f.truncate(16)
                cut += 1
    assert cut  # OCDBT's data files (".../d/<hash>")
    with pytest.raises(
        ValueError, match=r"\(step \d+\) cannot be read: its files are damaged or incomplete"
    ) as e:
        select_cli.run(config, strategy="ours", checkpoint=copy, budget=1,
                       output=str(tmp_path / "s.json"))  # fmt: skip
    assert "does not match the model" not in str(e.value)
    assert runtime.is_input_error(e.value)  # select.py prints it as one line


def test_a_strategy_value_out_of_range_is_refused_before_scoring(trained, tmp_path):
    config, run_dir, _ = trained
    with pytest.raises(ValueError, match=r"det_score_threshold must be in \[0, 1\], got 1.5") as e:
        select_cli.run(config, strategy="ours", checkpoint=run_dir, budget=1,
                       det_score_threshold=1.5, output=str(tmp_path / "s.json"))  # fmt: skip
    assert runtime.is_input_error(e.value)


def test_scores_all_nan_are_refused_and_some_nan_warned(trained, tmp_path, monkeypatch, caplog):
    """Selection ranks a NaN score last, i.e. it would pick NaN-scored images by pool
    order: refused when every selectable image is NaN, warned when some are. (Non-finite
    variables are refused earlier, when the checkpoint is read: ``run_files``.)"""
    from mtal_jax import strategies

    config, run_dir, _ = trained
    real = strategies.get_strategy

    def nan_scores(name, context=None, **kw):
        built = real(name, context, **kw)

        def score(*args, **kwargs):
            out = built.score(*args, **kwargs)
            return {**out, "score": jnp.full_like(out["score"], jnp.nan)}

        return built._replace(score=score)

    monkeypatch.setattr(strategies, "get_strategy", nan_scores)
    out = tmp_path / "sel.json"
    with pytest.raises(ValueError, match=r"(\d+) of the \1 selectable images scored NaN"):
        select_cli.run(
            config, strategy="entropy", checkpoint=run_dir, budget=2, output=str(out),
            progress=False,
        )  # fmt: skip
    assert not out.exists()
    # the check itself: NaN outside the selectable images (not scored) is not counted
    score = np.array([np.nan, 1.0, np.nan, 2.0], np.float32)
    cycle.check_scores(score, np.array([False, True, False, True]))
    with caplog.at_level(logging.WARNING):
        cycle.check_scores(score, np.array([True, True, False, True]))
    assert "1 of the 3 selectable images scored NaN" in caplog.text
    with pytest.raises(ValueError, match="2 of the 2 selectable images scored NaN"):
        cycle.check_scores(score, np.array([True, False, True, False]))
