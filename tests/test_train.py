"""Tests of train/: sharded step == single-device step, kill-and-resume of the training loop,
and the evaluation contract. Tiny model, 64x64 synthetic scenes, 2 virtual CPU devices."""

import dataclasses
import json
import os
import shutil

import chex
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from mtal_jax import checkpointing, jsonio, metrics, records, sharding, structs
from mtal_jax.data import pipeline
from mtal_jax.train import config as config_lib
from mtal_jax.train import evaluate, loop, run_files
from mtal_jax.train import state as state_lib
from mtal_jax.train import step as step_lib
from tests import fixtures


def _tx(num_steps: int):
    return state_lib.create_optimizer(
        learning_rate=1e-2,
        warmup_steps=1,
        total_steps=num_steps,
        weight_decay=1e-4,
        grad_clip_norm=10.0,
    )


@pytest.fixture(scope="module")
def source():
    return fixtures.scene_examples(13, seed=6)


# ---------------------------------------------------------------- sharded step


def test_sharded_train_step_equals_single_device_step():
    assert jax.device_count() >= 2, "tests/conftest.py sets 2 virtual CPU devices"
    model = fixtures.make_model(loss_prediction=True)
    tx = _tx(10)
    state = state_lib.create_train_state(model, tx, jax.random.key(0), fixtures.IMAGE_HW)
    host = fixtures.host_batch(fixtures.scene_examples(4, seed=5))
    host["valid"][3] = False  # a padding example must be masked identically on both meshes
    batch = fixtures.to_batch(host)
    train_step = jax.jit(step_lib.make_train_step(model, tx, fixtures.LOSS_WEIGHTS))

    def run(num_devices):
        mesh = sharding.create_mesh(num_devices)
        s = sharding.put_replicated(state, mesh)
        b = sharding.put_batch(batch, mesh)
        assert b.images.sharding.spec == PartitionSpec(sharding.DATA_AXIS)
        assert len(b.images.sharding.device_set) == num_devices
        history = []
        for i in range(2):  # the second step uses updated BatchNorm stats and Adam moments
            s, terms = train_step(s, b, jax.random.fold_in(jax.random.key(1), i))
            history.append(terms)
        assert s.params["det"]["heatmap"]["out"]["kernel"].sharding.is_fully_replicated
        return jax.device_get((s, history))

    (state1, terms1), (state2, terms2) = run(1), run(2)
    assert int(state1.step) == int(state2.step) == 2
    assert {
        "total",
        "det_heatmap",
        "det_size",
        "det_offset",
        "seg",
        "ll4al_ranking",
        "grad_norm",
    } <= set(terms1[0])
    chex.assert_tree_all_finite((state2, terms2))
    chex.assert_trees_all_close(terms2, terms1, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_close(state2, state1, rtol=1e-4, atol=1e-5)
    # The step actually trained: parameters moved.
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), state2.params, state.params)
    assert max(jax.tree.leaves(moved)) > 0


# ---------------------------------------------------------------- training loop: kill and resume

CFG = config_lib.TrainConfig(
    num_steps=4,
    batch_size=4,
    learning_rate=1e-2,
    lr_warmup_steps=1,
    log_every_steps=2,
    eval_every_steps=100,  # only the final eval
    eval_batch_size=4,
    checkpoint_every_steps=2,
    max_detections=8,
    seed=3,
)


def _train(workdir, source, **kwargs):
    return loop.train(
        fixtures.make_model(),
        CFG,
        workdir=str(workdir),
        spec=fixtures.SPEC,
        train_source=source,
        train_indices=range(8),
        eval_source=source,
        eval_indices=range(8, 13),  # 5 images: the last eval batch is padded
        mesh=sharding.create_mesh(2),
        progress=False,
        **kwargs,
    )


def _latest_state(workdir):
    like = state_lib.create_train_state(
        fixtures.make_model(), _tx(CFG.num_steps), jax.random.key(0), fixtures.IMAGE_HW
    )
    manager = checkpointing.make_manager(os.path.join(workdir, "train", "latest"))
    try:
        step = manager.latest_step()
        state, meta = checkpointing.restore_latest(manager, like)
    finally:
        checkpointing.close(manager)
    return step, jax.device_get(state), meta


@pytest.fixture(scope="module")
def runs(tmp_path_factory, source):
    """An uninterrupted run, and a run stopped after 3 of 4 steps then resumed."""
    straight_dir = tmp_path_factory.mktemp("straight")
    resumed_dir = tmp_path_factory.mktemp("resumed")
    straight = _train(straight_dir, source)
    stopped = _train(resumed_dir, source, stop_after_steps=3)
    stopped_step, _, stopped_meta = _latest_state(resumed_dir)
    stopped_has_metrics = os.path.exists(os.path.join(resumed_dir, "metrics.json"))
    resumed = _train(resumed_dir, source)
    return {
        "straight": (straight_dir, straight),
        "resumed": (resumed_dir, resumed),
        "stopped": (stopped, stopped_step, stopped_has_metrics),
        "stopped_meta": stopped_meta,
    }


def test_stop_leaves_a_checkpoint_and_no_final_metrics(runs):
    stopped, stopped_step, has_metrics = runs["stopped"]
    assert stopped is None  # stopped as if killed: no result
    assert stopped_step == 3
    assert not has_metrics


def test_resume_gives_the_same_step_and_parameters(runs):
    (dir_a, a), (dir_b, b) = runs["straight"], runs["resumed"]
    assert a.step == b.step == CFG.num_steps
    for k in records.metric_names():
        np.testing.assert_allclose(b.metrics[k], a.metrics[k], atol=1e-6)
    chex.assert_trees_all_close(b.variables, a.variables, rtol=1e-6, atol=1e-6)
    step_a, state_a, _ = _latest_state(dir_a)
    step_b, state_b, _ = _latest_state(dir_b)
    assert step_a == step_b == int(state_a.step) == int(state_b.step) == CFG.num_steps
    chex.assert_trees_all_close(state_b, state_a, rtol=1e-6, atol=1e-6)  # params, stats, opt state


def test_resumed_run_counts_the_earlier_sessions_training_seconds(runs):
    (dir_a, straight), (dir_b, resumed) = runs["straight"], runs["resumed"]
    earlier = runs["stopped_meta"]["seconds"]  # the stopped run's, at its step-3 checkpoint
    assert earlier > 0
    assert straight.resumed_seconds == 0.0  # trained in one call
    assert resumed.resumed_seconds == pytest.approx(earlier)
    # the final checkpoint carries the whole run's seconds: the earlier session's and its own
    (_, _, meta_a), (_, _, meta_b) = _latest_state(dir_a), _latest_state(dir_b)
    assert meta_a["seconds"] > 0 and meta_b["seconds"] > earlier


def test_run_writes_metrics_and_checkpoints(runs):
    for workdir, result in (runs["straight"], runs["resumed"]):
        with open(os.path.join(workdir, "metrics.json")) as f:
            written = json.load(f)
        for k in records.metric_names():
            assert 0.0 <= written[k] <= 1.0, (k, written[k])
            np.testing.assert_allclose(written[k], result.metrics[k])
        assert written["step"] == CFG.num_steps
        assert os.path.isdir(os.path.join(workdir, "train", "latest"))
        assert os.path.isdir(os.path.join(workdir, "train", "best"))


def test_rerun_of_a_finished_run_changes_nothing(runs, source, monkeypatch):
    workdir, before = runs["resumed"]
    again = _train(workdir, source)
    assert again.step == before.step
    assert again.metrics == before.metrics
    assert again.resumed_seconds == pytest.approx(_latest_state(workdir)[2]["seconds"])
    chex.assert_trees_all_equal(again.variables, before.variables)
    # without its variables, a finished run is read back from JSON files alone
    restored = []
    monkeypatch.setattr(checkpointing, "restore", lambda *a: restored.append(a))
    light = _train(workdir, source, with_variables=False)
    assert restored == [] and light.variables is None
    assert light.metrics == before.metrics and light.step == before.step
    assert light.resumed_seconds == again.resumed_seconds


def test_a_final_best_is_taken_from_memory_with_the_bits_of_its_checkpoint(
    runs, source, tmp_path, monkeypatch
):
    """``run_files.finalize``: when the last evaluation is the best, the run returns the state
    it saved (no read of its weights), the same bits and summary as reading them back; a
    best of another step is read back."""
    workdir, straight = runs["straight"]
    like = state_lib.create_train_state(
        fixtures.make_model(), _tx(CFG.num_steps), jax.random.key(0), fixtures.IMAGE_HW
    )
    read_back = run_files.finalize(str(workdir), like)  # no state given: restored
    assert read_back.metrics == straight.metrics and read_back.step == straight.step
    chex.assert_trees_all_equal(straight.variables, read_back.variables)
    restored = []
    real_restore = checkpointing.restore
    monkeypatch.setattr(
        checkpointing, "restore", lambda *a: restored.append(a[1]) or real_restore(*a)
    )
    other = like.replace(params=jax.tree.map(lambda a: a + 1, like.params))
    kept = run_files.finalize(str(workdir), like, saved=(CFG.num_steps, other))
    assert restored == [] and kept.metrics == straight.metrics
    chex.assert_trees_all_equal(kept.variables, jax.device_get(step_lib.variables_of(other)))
    again = run_files.finalize(str(workdir), like, saved=(CFG.num_steps - 1, other))
    assert restored == [CFG.num_steps]  # not the best step: read back
    chex.assert_trees_all_equal(again.variables, straight.variables)
    # the loop gives finalize its final state: a run trained in one call reads no weights
    fresh = _train(tmp_path / "fresh", source)
    assert restored == [CFG.num_steps] and fresh.step == CFG.num_steps
    chex.assert_trees_all_equal(fresh.variables, straight.variables)


def test_a_finished_run_given_a_longer_schedule_trains_on(runs, source, tmp_path):
    """The read-back shortcut (``run_files.read_finished``) holds only for the steps the run
    finished: with more, it resumes from its last checkpoint and trains to the new end."""
    workdir = tmp_path / "longer"
    shutil.copytree(runs["straight"][0], workdir)
    cfg = dataclasses.replace(CFG, num_steps=CFG.num_steps + 2)
    assert run_files.read_finished(str(workdir), fixtures.make_model(), cfg, fixtures.SPEC) is None
    longer = loop.train(
        fixtures.make_model(), cfg, workdir=str(workdir), spec=fixtures.SPEC,
        train_source=source, train_indices=range(8), eval_source=source,
        eval_indices=range(8, 13), mesh=sharding.create_mesh(2), progress=False,
    )  # fmt: skip
    assert longer.step == CFG.num_steps + 2 == _latest_state(workdir)[0]


def test_a_final_eval_marker_without_the_final_model_is_evaluated_again(runs, source, tmp_path):
    # The marker of a run stopped before its last step (an archive taken between the final
    # evaluation and metrics.json, restored without checkpoints, carried it): the resumed
    # run evaluates its final model again; it raised "holds no best checkpoint" before
    # (only the final evaluation saves a best checkpoint here).
    _, straight = runs["straight"]
    workdir = tmp_path / "marked"
    assert _train(workdir, source, stop_after_steps=3) is None
    jsonio.write_atomic(
        str(workdir / run_files.FINAL_EVAL[0] / run_files.FINAL_EVAL[1]), {"step": 4}
    )
    got = _train(workdir, source)
    assert got.step == CFG.num_steps
    for k in records.metric_names():
        np.testing.assert_allclose(got.metrics[k], straight.metrics[k], atol=1e-6)


# ---------------------------------------------------------------- evaluation


def test_evaluate_contract_and_padding_independence(source):
    model = fixtures.make_model()
    state = state_lib.create_train_state(model, _tx(2), jax.random.key(0), fixtures.IMAGE_HW)
    mesh = sharding.create_mesh(2)
    variables = sharding.put_replicated(step_lib.variables_of(state), mesh)
    eval_fn = jax.jit(
        step_lib.make_eval_step(
            model,
            num_seg_classes=fixtures.NUM_SEG_CLASSES,
            decode_kwargs={"max_detections": 8, "score_threshold": 0.05},
            loss_weights=fixtures.LOSS_WEIGHTS,
        )
    )
    indices = [8, 9, 10, 11, 12]
    results = [
        evaluate.evaluate(
            eval_fn,
            variables,
            source,
            indices,
            fixtures.SPEC,
            batch_size=bs,
            mesh=mesh,
            progress=False,
            keep_per_image=True,
        )
        for bs in (4, 2)
    ]
    for r in results:
        assert tuple(r.metrics) == records.metric_names()
        for k, v in r.metrics.items():
            assert isinstance(v, float) and 0.0 <= v <= 1.0, (k, v)
        assert len(r.per_class_ap) == fixtures.NUM_DET_CLASSES
        assert len(r.per_class_iou) == fixtures.NUM_SEG_CLASSES
        chex.assert_shape(r.losses, (len(indices), 2))
        assert np.isfinite(r.losses).all()
        assert r.index.tolist() == indices
    a, b = results  # different padding of the last batch, same answer
    for k in records.metric_names():
        np.testing.assert_allclose(a.metrics[k], b.metrics[k], atol=1e-6)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-5, atol=1e-6)


def test_evaluate_counts_the_boxes_beyond_max_boxes_as_ground_truth():
    """An image with more boxes than ``max_boxes``: the pipeline keeps the largest 8; mAP
    must still count the 2 left out (a detector that finds the 8 scored 1.0 before)."""
    boxes = [[2 * i, 2 * i, 2 * i + 4 + i, 2 * i + 4 + i] for i in range(10)]  # growing
    labels = [0] * 10
    examples = [fixtures.make_example(boxes=boxes, labels=labels), fixtures.make_example()]
    kept = pipeline.preprocess(examples[0], fixtures.SPEC, 0)
    assert int(kept["num_dropped_boxes"]) == 2

    def eval_fn(variables, batch):  # finds exactly the 8 boxes the pipeline kept
        b, k = 2, fixtures.MAX_BOXES
        det_boxes = np.zeros((b, k, 4), np.float32)
        det_boxes[0] = kept["boxes"]
        valid = np.zeros((b, k), bool)
        valid[0] = True
        return {
            "confusion": np.zeros((fixtures.NUM_SEG_CLASSES,) * 2, np.int64),
            "detections": structs.Detections(
                boxes=det_boxes, det_probs=np.zeros((b, k, fixtures.NUM_DET_CLASSES), np.float32),
                scores=np.full((b, k), 0.9, np.float32), labels=np.zeros((b, k), np.int32),
                valid=valid,
            ),
            "losses": np.zeros((b, 2), np.float32),
        }  # fmt: skip

    result = evaluate.evaluate(
        eval_fn, {}, examples, [0, 1], fixtures.SPEC, batch_size=2,
        mesh=sharding.create_mesh(2), progress=False,
    )  # fmt: skip
    full = pipeline.preprocess(examples[0], dataclasses.replace(fixtures.SPEC, max_boxes=10), 0)
    preds = [{"boxes": kept["boxes"], "scores": np.full(8, 0.9, np.float32),
              "labels": np.zeros(8, np.int32)}, _no_detections()]  # fmt: skip
    gts = [{"boxes": full["boxes"], "labels": full["box_labels"]}, _no_boxes()]
    want = metrics.detection_map(preds, gts, fixtures.NUM_DET_CLASSES)
    truncated = metrics.detection_map(
        preds, [{"boxes": kept["boxes"], "labels": kept["box_labels"]}, _no_boxes()],
        fixtures.NUM_DET_CLASSES,
    )  # fmt: skip
    assert float(truncated["map"]) == pytest.approx(1.0)  # what it reported before
    assert result.metrics["map"] == pytest.approx(float(want["map"])) and want["map"] < 0.9


def _no_detections():
    return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
            "labels": np.zeros(0, np.int32)}  # fmt: skip


def _no_boxes():
    return {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int32)}


def test_a_finished_run_without_weights_names_why(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint found in .*\)$"):
        run_files.checkpoint_dir(str(tmp_path))  # an empty folder: no hint
    jsonio.write_atomic(str(tmp_path / "metrics.json"), {"step": 3})
    with pytest.raises(FileNotFoundError, match="finished run's metrics but not its weights"):
        run_files.checkpoint_dir(str(tmp_path))  # restored from an archive that dropped them


# ---------------------------------------------------------------- step functions kept per process


def test_step_functions_are_kept_for_the_settings_they_are_built_from():
    """``step_fns.build_step_fns`` returns the same jitted functions for the same model,
    classes and settings (a second experiment in a process traces nothing again), and new
    ones when any field they are built from changes. Every ``TrainConfig`` field is either
    one of those or listed here as not entering them: a new field must be placed."""
    from mtal_jax.train import step_fns

    model, spec = fixtures.make_model(), fixtures.SPEC
    first = step_fns.build_step_fns(model, CFG, spec)
    assert step_fns.build_step_fns(model, dataclasses.replace(CFG, seed=9), spec) is first
    assert step_fns.build_step_fns(fixtures.make_model(), CFG, spec) is first  # equal model
    not_built_from = {
        "batch_size", "seed", "flip", "log_every_steps", "eval_every_steps", "eval_batch_size",
        "eval_max_images", "checkpoint_every_steps", "best_metric", "pretrained_backbone",
    }  # fmt: skip
    changed = {
        "loss_weights": {**CFG.loss_weights, "seg": 2.0},
        "seg_class_weights": (1.0,) * fixtures.SPEC.num_seg_classes,
        "best_metric": "map",
        "pretrained_backbone": "x.npz",
    }
    for field in dataclasses.fields(config_lib.TrainConfig):
        value = getattr(CFG, field.name)
        if field.name in changed:
            other = changed[field.name]
        else:
            other = (not value) if isinstance(value, bool) else value + 1
        base = step_fns.build_step_fns(model, CFG, spec)  # kept, or built again if dropped
        fns = step_fns.build_step_fns(model, dataclasses.replace(CFG, **{field.name: other}), spec)
        assert (fns is base) == (field.name in not_built_from), field.name
    other_spec = dataclasses.replace(spec, num_seg_classes=spec.num_seg_classes + 1)
    assert step_fns.build_step_fns(model, CFG, other_spec) is not first
    assert step_fns.build_step_fns(model, CFG, spec) is not first  # the oldest were dropped
    assert len(step_fns._cache) <= step_fns.CACHE_SIZE
