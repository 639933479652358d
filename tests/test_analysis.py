"""Tests of mtal_jax/analysis: BoxMask accuracy, correlations, overlays, the CLI on a tiny run."""

import math
import os

import numpy as np
import pytest

from mtal_jax import structs
from mtal_jax.analysis import boxmask_accuracy, correlation, overlays

# ---- BoxMask accuracy (Table II) ----------------------------------------------------------


def test_labels_on_grid_reads_cell_centres():
    labels = np.arange(8 * 8).reshape(1, 8, 8)
    got = np.asarray(boxmask_accuracy.labels_on_grid(labels, (2, 4)))
    np.testing.assert_array_equal(got[0], labels[0][[2, 6]][:, [1, 3, 5, 7]])


def test_boxmask_iou_counts_hand_computed():
    h = w = 4
    gt = np.zeros((1, h, w), np.int32)
    gt[0, 1:3, 1:3] = 2  # a 2x2 object of class 2
    gt[0, 0, 0] = structs.IGNORE_LABEL
    box = np.array([[[0.0, 0.0, 3.0, 3.0], [0.0, 0.0, 4.0, 4.0]]])  # 3x3 box, full-image box
    masks = np.zeros((1, 2, h, w), bool)
    masks[0, 0, 1:3, 1:4] = True  # 2x3 BoxMask, of which 2x2 right; col 3 lies outside box 0
    masks[0, 1, 0, :] = True  # box 1 (class 1, invalid) would add to class 1
    inter, union = boxmask_accuracy.boxmask_iou_counts(
        masks, box, np.array([[2, 1]]), np.array([[True, False]]), gt, num_seg_classes=3
    )
    # Box 0: pred inside box = 2x2 (col 3 outside) -> I = 4, U = 4.
    np.testing.assert_allclose(np.asarray(inter), [0, 0, 4])
    np.testing.assert_allclose(np.asarray(union), [0, 0, 4])
    masks[0, 0, 0, 0] = True  # an ignored pixel counts for nothing
    masks[0, 0, 0, 1] = True  # a wrong pixel enlarges the union
    inter, union = boxmask_accuracy.boxmask_iou_counts(
        masks, box, np.array([[2, 1]]), np.array([[True, False]]), gt, num_seg_classes=3
    )
    np.testing.assert_allclose(np.asarray(union), [0, 0, 5])
    miou, per_class = boxmask_accuracy.miou_from_counts(inter, union)
    assert miou == pytest.approx(0.8)
    assert np.isnan(per_class[0]) and per_class[2] == pytest.approx(0.8)


def test_box_counts_per_class_and_empty_box_masks():
    masks = np.zeros((2, 3, 4, 4), bool)
    masks[0, 0, 1, 1] = True  # image 0: a class-2 box with a mask, a class-2 box without
    masks[1, 2, 0, 0] = True  # image 1: an empty class-1 box, an invalid slot with a mask
    classes = np.array([[2, 2, 1], [1, 0, 1]])
    valid = np.array([[True, True, False], [True, False, False]])
    boxes, empty = boxmask_accuracy.box_counts(masks, classes, valid, num_seg_classes=3)
    np.testing.assert_allclose(np.asarray(boxes), [0, 1, 2])
    np.testing.assert_allclose(np.asarray(empty), [0, 1, 1])


def test_miou_from_counts_without_boxes_is_nan():
    assert np.isnan(boxmask_accuracy.miou_from_counts(np.zeros(3), np.zeros(3))[0])


# ---- correlations (Fig. 6) -----------------------------------------------------------------


def test_correlations_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    x[:, 1] = x[:, 0] + 0.3 * rng.normal(size=40)
    x[:10, 2] = 1.0  # ties
    for i in range(3):
        for j in range(3):
            assert correlation.pearson_matrix(x)[i, j] == pytest.approx(
                stats.pearsonr(x[:, i], x[:, j])[0]
            )
            assert correlation.spearman_matrix(x)[i, j] == pytest.approx(
                stats.spearmanr(x[:, i], x[:, j])[0]
            )


def test_correlation_tables_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    values = {"a": rng.normal(size=20), "b": rng.normal(size=20), "const": np.ones(20)}
    values["a"][3] = np.nan  # undefined on one image: its pairs read the other 19
    tables = correlation.correlation_tables(values)
    assert tables["num_images"] == 20 and tables["names"] == ["a", "b", "const"]
    assert tables["num_finite"] == {"a": 19, "b": 20, "const": 20}
    assert tables["pearson"][0][0] == pytest.approx(1.0) and np.isnan(tables["pearson"][2][0])
    assert "| a |" in correlation.markdown_table(tables["pearson"], tables["names"], "Pearson")
    correlation.plot_heatmaps(tables, str(tmp_path / "fig6.png"))
    assert os.path.getsize(tmp_path / "fig6.png") > 0


def _fig6_values(n=400, seed=0):
    """Per-image columns where S_loc tracks L_det_loc, S_cls L_det_cls and S_seg L_seg, and
    the boxes' errors E_det_* are close to the detection losses (E_det_loc undefined on the
    first 40 images)."""
    rng = np.random.default_rng(seed)
    losses = rng.normal(size=(n, 3))
    errors = losses[:, :2] + 0.3 * rng.normal(size=(n, 2))  # close to the losses, not equal
    errors[:40, 1] = np.nan  # images without a scored box: no localization error
    return {
        "S_loc": losses[:, 1] + 0.5 * rng.normal(size=n),
        "S_cls": losses[:, 0] + 0.5 * rng.normal(size=n),
        "S_seg": losses[:, 2] + 0.5 * rng.normal(size=n),
        "score": losses.sum(axis=1),
        "L_det_cls": losses[:, 0], "L_det_loc": losses[:, 1], "L_seg": losses[:, 2],
        "E_det_cls": errors[:, 0], "E_det_loc": errors[:, 1],
    }  # fmt: skip


def test_fig6_claim_statistics_hand_computed():
    values = _fig6_values()
    names = list(values)
    x = np.stack([values[n] for n in names], axis=1)

    def spearman(rows):
        rho = correlation.spearman_matrix(x[rows])
        return {(a, b): rho[names.index(a), names.index(b)] for a in names for b in names}

    r = spearman(slice(None))  # every image (read only for columns without NaN)
    r_loc = spearman(np.isfinite(values["E_det_loc"]))  # the images with a localization error
    out = correlation.claim_tests(values, resamples=200)
    assert [o["claim"] for o in out] == [c for c, _, _ in correlation.FIG6_CLAIMS]
    seg, cls, loc, cls_box, loc_box, least = (o["statistic"] for o in out)
    assert seg == pytest.approx(r["S_seg", "L_seg"] - max(r["S_loc", "L_seg"], r["S_cls", "L_seg"]))
    assert cls == pytest.approx(
        r["S_cls", "L_det_cls"] - max(r["S_loc", "L_det_cls"], r["S_seg", "L_det_cls"])
    )
    assert loc == pytest.approx(
        r["S_loc", "L_det_loc"] - max(r["S_cls", "L_det_loc"], r["S_seg", "L_det_loc"])
    )
    assert cls_box == pytest.approx(
        r["S_cls", "E_det_cls"] - max(r["S_loc", "E_det_cls"], r["S_seg", "E_det_cls"])
    )
    assert loc_box == pytest.approx(
        r_loc["S_loc", "E_det_loc"] - max(r_loc["S_cls", "E_det_loc"], r_loc["S_seg", "E_det_loc"])
    )
    assert least == pytest.approx(
        min(abs(r["S_loc", "S_cls"]), abs(r["S_cls", "S_seg"])) - abs(r["S_loc", "S_seg"])
    )
    # each claim reads the images where its columns are defined
    assert [o["num_images"] for o in out] == [400, 400, 400, 400, 360, 400]
    # each score tracks its own loss and error: the "best" claims hold, intervals above 0
    for o in out[:5]:
        assert o["statistic"] > 0.3 and 0 < o["ci95"][0] < o["statistic"] < o["ci95"][1]
        assert o["resamples"] == 200
        assert o["p_value"] == pytest.approx(2 / 201)  # no resample at or below 0: 2 (0+1)/(R+1)
    # seeded: the same intervals again
    assert correlation.claim_tests(values, resamples=200)[0]["ci95"] == out[0]["ci95"]


def test_correlation_tables_read_each_pair_where_both_are_defined():
    """A column undefined on some images (NaN) is correlated over the images where it is
    defined, and the other pairs keep every image."""
    values = _fig6_values()
    tables = correlation.correlation_tables(values)
    names = tables["names"]
    assert tables["num_finite"]["E_det_loc"] == 360 and tables["num_finite"]["S_loc"] == 400
    rows = np.isfinite(values["E_det_loc"])
    sub = correlation.spearman_matrix(
        np.stack([values["S_loc"][rows], values["E_det_loc"][rows]], axis=1)
    )[0, 1]
    rho = np.array(tables["spearman"])
    assert rho[names.index("S_loc"), names.index("E_det_loc")] == pytest.approx(sub)
    full = correlation.spearman_matrix(np.stack([values["S_loc"], values["L_seg"]], axis=1))[0, 1]
    assert rho[names.index("S_loc"), names.index("L_seg")] == pytest.approx(full)


def test_fig6_claims_swapped_scores_contradict():
    values = _fig6_values()
    shared = np.random.default_rng(5).normal(size=400)  # makes S_loc, S_seg the closest pair
    values["S_loc"] = values["L_seg"] + shared  # each score measures another task's loss
    values["S_seg"] = values["L_det_cls"] + shared
    values["S_cls"] = values["L_det_loc"] + 0.5 * np.random.default_rng(6).normal(size=400)
    out = {o["claim"]: o for o in correlation.claim_tests(values, resamples=200)}
    for claim, _, _ in correlation.FIG6_CLAIMS:
        assert out[claim]["ci95"][1] < 0, claim  # every reading contradicted
        assert out[claim]["p_value"] < 0.05, claim


def test_fig6_claim_p_values_without_signal():
    # Scores independent of the losses and of each other: no reading holds or fails, and
    # the bootstrap p-value counts the resamples on each side of 0.
    rng = np.random.default_rng(11)
    names = ("S_loc", "S_cls", "S_seg", "L_det_cls", "L_det_loc", "L_seg", "E_det_cls",
             "E_det_loc")  # fmt: skip
    values = {n: rng.normal(size=300) for n in names}
    out = correlation.claim_tests(values, resamples=400, seed=3)
    for o in out:
        assert 0.05 < o["p_value"] <= 1.0, o
        assert o["ci95"][0] < 0 < o["ci95"][1], o


def test_fig6_across_models_hand_computed():
    def model(*stats):
        return [{"claim": c, "statistic": v, "num_images": 10} for (c, _, _), v in
                zip(correlation.FIG6_CLAIMS, stats)]  # fmt: skip

    per_model = [model(0.1, -0.2, 0.3, 0.1, 0.2, 0.0), model(0.2, -0.4, 0.3, 0.1, 0.2, 0.1),
                 model(0.6, -0.3, 0.3, 0.1, 0.2, float("nan"))]  # fmt: skip
    out = correlation.across_models(per_model, ["trial_0", "trial_1", "trial_2"])
    assert out["models"] == ["trial_0", "trial_1", "trial_2"] and out["num_images"] == [10] * 3
    seg, cls, loc, _, _, least = out["claims"]
    # S_seg: [0.1, 0.2, 0.6]: mean 0.3, sample std sqrt(0.07), t(0.975, 2) = 4.302653
    half = 4.302652730 * math.sqrt(0.07) / math.sqrt(3)
    assert seg["per_model"] == [0.1, 0.2, 0.6] and seg["mean"] == pytest.approx(0.3)
    assert seg["ci95"] == pytest.approx([0.3 - half, 0.3 + half]) and seg["trials"] == 3
    t = 0.3 / (math.sqrt(0.07) / math.sqrt(3))  # two-sided p, 2 df: 1 - t / sqrt(2 + t^2)
    assert seg["p_value"] == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert cls["ci95"][1] < 0  # every model below 0: contradicted over models
    assert loc["ci95"] == pytest.approx([0.3, 0.3]) and loc["p_value"] == 0.0  # no spread
    assert least["trials"] == 2 and least["mean"] == pytest.approx(0.05)  # NaN left out
    text = correlation.across_models_markdown(out)
    assert "| reading (paper) | trial_0 | trial_1 | trial_2 | mean [95 % CI] | p |" in text
    assert "| S_loc and S_seg are the least correlated pair of scores | +0.00 | +0.10 | — |" in text
    with pytest.raises(ValueError, match="2 labels for 3 models"):
        correlation.across_models(per_model, ["a", "b"])


def test_fig6_claims_without_the_columns_are_nan():
    out = correlation.claim_tests({"S_loc": [1.0, 2.0, 3.0], "L_seg": [1.0, 2.0, 3.0]})
    assert [o["claim"] for o in out] == [c[0] for c in correlation.FIG6_CLAIMS]  # one per claim
    assert all(np.isnan(o["statistic"]) and o["resamples"] == 0 for o in out)
    assert all(np.isnan(o["p_value"]) for o in out)


# ---- overlays (Fig. 5) ---------------------------------------------------------------------


def test_disagreement_codes():
    seg = np.array([[1, 1, 0], [2, 0, 0]])
    masks = np.zeros((2, 2, 3), bool)
    masks[0, 0, :2] = True  # car box over car pixels: agree
    masks[0, 1, 0] = True  # ... and one person pixel: disagree
    masks[1, 1, 1] = True  # invalid slot
    codes = overlays.disagreement_codes(
        seg, masks, np.array([1, 2]), np.array([True, False]), np.array([1, 2])
    )
    want = np.array([[overlays.AGREE, overlays.AGREE, 0], [overlays.LOC_DISAGREE, 0, 0]])
    np.testing.assert_array_equal(codes, want)
    seg[1, 2] = 2  # a person pixel outside every BoxMask
    codes = overlays.disagreement_codes(
        seg, masks, np.array([1, 2]), np.array([True, False]), np.array([1, 2])
    )
    assert codes[1, 2] == overlays.SEG_DISAGREE


def test_render_panels(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (16, 24, 3), np.uint8)
    masks = np.zeros((2, 4, 6), bool)
    masks[0, 1:3, 1:3] = True
    panel = overlays.render_panels(
        image, np.array([[4.0, 4.0, 12.0, 12.0], [0, 0, 1, 1]]), np.array([1, 2]), np.array([True, False]),
        rng.integers(0, 3, (4, 6)), masks, np.array([1, 2]), num_seg_classes=3,
    )  # fmt: skip
    assert panel.shape == (16, 4 * 24 + 3 * 4, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(panel[5:11, 5:11], image[5:11, 5:11])  # inside the box outline
    overlays.save_png(panel, str(tmp_path / "p.png"))
    assert os.path.getsize(tmp_path / "p.png") > 0


def test_render_panels_gray_background_has_no_image_pixel():
    rng = np.random.default_rng(3)
    masks = np.zeros((2, 4, 6), bool)
    masks[0, 1:3, 1:3] = True
    args = (
        np.array([[4.0, 4.0, 12.0, 12.0], [0, 0, 1, 1]]), np.array([1, 2]), np.array([True, False]),
        rng.integers(0, 3, (4, 6)), masks, np.array([1, 2]),
    )  # fmt: skip
    image_a, image_b = rng.integers(0, 256, (2, 16, 24, 3), np.uint8)
    gray_a = overlays.render_panels(image_a, *args, num_seg_classes=3, background="gray")
    gray_b = overlays.render_panels(image_b, *args, num_seg_classes=3, background="gray")
    np.testing.assert_array_equal(gray_a, gray_b)  # the photo never reaches the output
    flat = np.full(image_a.shape, overlays.GRAY, np.uint8)
    np.testing.assert_array_equal(gray_a, overlays.render_panels(flat, *args, num_seg_classes=3))
    assert (gray_a[5:11, 5:11] == overlays.GRAY).all()  # nothing drawn inside the box outline
    assert not np.array_equal(
        overlays.render_panels(image_a, *args, num_seg_classes=3), gray_a
    )  # the default still draws on the photo
    with pytest.raises(ValueError, match="background 'grey' is not one of image, gray"):
        overlays.render_panels(image_a, *args, num_seg_classes=3, background="grey")


def test_column_header_puts_a_title_over_each_panel():
    header = overlays.column_header(["a", "b"], 30, gap=4, left=10)
    assert header.shape[1] == 10 + 2 * 30 + 4 and header.dtype == np.uint8
    ink = (header < 128).any(axis=(0, 2))
    assert not ink[:10].any()  # the label strip's columns stay white
    assert ink[10:40].any() and ink[44:74].any() and not ink[40:44].any()


def test_label_strip_and_compare_rows():
    strip = overlays.label_strip("ours", 20, 40)
    assert strip.shape == (20, 40, 3) and strip.dtype == np.uint8
    assert (strip < 128).any() and (strip == 255).any()  # dark text on white
    assert (overlays.label_strip("", 20, 40) == 255).all()
    assert not np.array_equal(strip, overlays.label_strip("cald", 20, 40))
    assert overlays.label_width(["random", "ours"]) > overlays.label_width(["ours"])
    panel = np.random.default_rng(4).integers(0, 256, (16, 30, 3), np.uint8)
    block = overlays.compare_rows([panel, panel, panel], ["random", "cald", "ours"], width=50)
    assert block.shape == (3 * 16 + 2 * 4, 50 + 30, 3)
    for r in range(3):
        np.testing.assert_array_equal(block[r * 20 : r * 20 + 16, 50:], panel)
    np.testing.assert_array_equal(block[16:20], 255)  # the gap between rows
    with pytest.raises(ValueError, match="2 panel rows but 3 labels"):
        overlays.compare_rows([panel, panel], ["a", "b", "c"])
    with pytest.raises(ValueError, match="rows differ in width"):
        overlays.stack_rows([panel, panel[:, :10]], gap=2)


# ---- the CLI on a tiny trained run ---------------------------------------------------------


def test_default_label():
    from mtal_jax.analysis import cli

    assert cli.default_label("runs/camvid/trial_0/cald/cycle_5") == "cald"
    assert cli.default_label("runs/camvid/trial_0/ours/cycle_5/") == "ours"
    assert cli.default_label("workdir/reference") == "reference"
    assert cli.default_label("cycle_3") == "cycle_3"


def test_wall_times_of_the_analyses_accumulate(tmp_path):
    """``analysis_wall.json``: each call records its seconds under each of its analyses; a
    later call replaces only its own analyses' entries."""
    from mtal_jax import jsonio
    from mtal_jax.analysis import wall_times

    out = str(tmp_path)
    wall_times.record_wall(out, ("table2",), ["runs/x/reference"], 98.04)
    path = wall_times.record_wall(out, ("fig6", "fig5"), ["runs/x/trial_0/cycle_0"], 67.46)
    walls = jsonio.read(path)
    assert walls["table2"]["seconds"] == 98.0 and walls["fig6"]["seconds"] == 67.5
    assert walls["fig5"]["analyses_together"] == ["fig6", "fig5"]
    assert walls["table2"]["checkpoints"] == ["runs/x/reference"]
    wall_times.record_wall(out, ("fig5",), ["a", "b"], 12.0)
    walls = jsonio.read(path)
    assert walls["fig5"]["seconds"] == 12.0 and walls["fig6"]["seconds"] == 67.5
    assert walls["table2"]["date"].endswith("UTC") and walls["table2"]["load_1min"] >= 0


def test_cli_rejects_bad_checkpoint_combinations(tmp_path):
    from configs import tiny
    from mtal_jax.analysis import cli

    config, out = tiny.get_config(), str(tmp_path / "out")
    runs = ["runs/x/trial_0/random/cycle_2", "runs/x/trial_0/ours/cycle_2"]
    with pytest.raises(ValueError, match="2 checkpoints are only compared in fig5.*table2"):
        cli.run(config, runs, out, analyses=("table2",))
    with pytest.raises(ValueError, match="only compared in fig5.*fig6,table2"):
        cli.run(config, runs, out)  # the default asks for every analysis
    with pytest.raises(ValueError, match="--labels has 1 entries .* but --checkpoint has 2"):
        cli.run(config, runs, out, analyses=("fig5",), labels=["ours"])
    with pytest.raises(ValueError, match="fig6 .*asks for fig5,fig6"):
        cli.run(config, runs, out, analyses=("fig5", "fig6"))  # one of the two per call
    with pytest.raises(ValueError, match="--pool has 3 entries but --checkpoint has 2"):
        cli.run(config, runs, out, analyses=("fig6",), pool_json=["a", "b", "c"])
    with pytest.raises(ValueError, match="overlay_background 'photo'"):
        cli.run(config, runs, out, analyses=("fig5",), overlay_background="photo")
    assert cli.check_checkpoints(runs, None, ("fig5",)) == ["random", "ours"]
    assert not os.path.exists(out)  # rejected before anything is loaded or written


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(config, run dir) of the tiny model trained for 2 steps, shared by the CLI tests."""
    from configs import tiny
    from mtal_jax.al import experiment
    from mtal_jax.train import loop

    tmp_path = tmp_path_factory.mktemp("tiny_run")
    config = tiny.get_config()
    config.data.data_dir = str(tmp_path / "tfds")
    setup = experiment.build_setup(config)
    run_dir = str(tmp_path / "run")
    cfg = experiment.train_config(config, num_steps=2)
    loop.train(
        setup.model, cfg, workdir=run_dir, spec=setup.spec,
        train_source=setup.dataset.sources["train"], train_indices=range(8),
        eval_source=setup.dataset.sources["test"], eval_indices=range(4), mesh=setup.mesh, progress=False,
    )  # fmt: skip
    return config, run_dir


def test_cli_refuses_an_overlay_index_past_the_split(tmp_path, tiny_run):
    from mtal_jax import runtime
    from mtal_jax.analysis import cli

    config, run_dir = tiny_run  # it was dropped silently
    with pytest.raises(ValueError, match=r"--overlay_images \[99\]: the test split has") as e:
        cli.run(config, run_dir, str(tmp_path), analyses=("fig5",), overlay_images=(0, 99),
                progress=False)  # fmt: skip
    assert runtime.is_input_error(e.value)  # one line from the command line


@pytest.mark.slow
def test_cli_writes_every_analysis(tmp_path, tiny_run):
    from mtal_jax import jsonio
    from mtal_jax.analysis import cli, wall_times

    config, run_dir = tiny_run
    out_dir = str(tmp_path / "analysis")
    paths = cli.run(config, run_dir, out_dir, max_images=8, overlay_images=(0, 2), progress=False)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == sorted(
        [f"table2_boxmask_accuracy.{e}" for e in ("json", "md", "png")]
        + [f"fig6_correlation.{e}" for e in ("json", "md", "png")]
        + ["fig6_diagnostics.json"]
        + ["fig5_overlay_0.png", "fig5_overlay_2.png", "fig5_overlays.png"]
        + [wall_times.WALL_FILE]
    )
    walls = jsonio.read(os.path.join(out_dir, wall_times.WALL_FILE))
    assert set(walls) == {"table2", "fig6", "fig5"} and walls["fig6"]["seconds"] > 0
    assert walls["table2"]["analyses_together"] == ["table2", "fig6", "fig5"]
    table = jsonio.read(os.path.join(out_dir, "table2_boxmask_accuracy.json"))
    assert [r["tau"] for r in table["rows"]] == [0.1, 0.3, 0.5, 0.7] and table["num_images"] == 8
    fig6 = jsonio.read(os.path.join(out_dir, "fig6_correlation.json"))
    assert fig6["names"] == ["S_loc", "S_cls", "S_seg", "score", "L_det_cls", "L_det_loc", "L_seg",
                            "E_det_cls", "E_det_loc"]  # fmt: skip
    pearson = np.array([[np.nan if v is None else v for v in row] for row in fig6["pearson"]])
    assert pearson.shape == (9, 9)  # NaN (null) where a column is constant, e.g. no detections
    assert [c["claim"] for c in fig6["claims"]] == [c for c, _, _ in correlation.FIG6_CLAIMS]


def test_cli_fig6_over_several_models(tmp_path, tiny_run):
    from mtal_jax import jsonio
    from mtal_jax.analysis import cli, wall_times

    config, run_dir = tiny_run
    out_dir = str(tmp_path / "models")
    pool = str(tmp_path / "pool.json")
    jsonio.write_atomic(pool, {"labeled_ids": list(range(4))})  # the other train images
    paths = cli.run(
        config, [run_dir, run_dir], out_dir, analyses=("fig6",), max_images=6,
        pool_json=[pool, pool], labels=["trial_0", "trial_1"], progress=False,
    )  # fmt: skip
    assert [os.path.basename(p) for p in paths] == [
        "fig6_models.json", "fig6_models.md", wall_times.WALL_FILE
    ]  # fmt: skip
    out = jsonio.read(os.path.join(out_dir, "fig6_models.json"))
    assert out["models"] == ["trial_0", "trial_1"] and out["num_images"][0] <= 6
    assert [c["claim"] for c in out["claims"]] == [c for c, _, _ in correlation.FIG6_CLAIMS]
    for c in out["claims"]:  # the same model twice: the same statistic
        a, b = c["per_model"]
        assert (a is None and b is None) or a == b
    walls = jsonio.read(os.path.join(out_dir, wall_times.WALL_FILE))
    assert set(walls) == {"fig6_models"} and walls["fig6_models"]["checkpoints"] == [run_dir] * 2


@pytest.mark.slow
def test_cli_fig5_compares_checkpoints(tmp_path, tiny_run):
    import PIL.Image

    from mtal_jax.analysis import cli, figures, wall_times

    config, run_dir = tiny_run
    out_dir = str(tmp_path / "compare")
    labels = ["random", "ours"]
    paths = cli.run(
        config, [run_dir, run_dir], out_dir, analyses=("fig5",), overlay_images=(0, 2),
        progress=False, labels=labels, overlay_background="gray",
    )  # fmt: skip
    names = [os.path.basename(p) for p in paths]
    assert names == [
        "fig5_compare_0.png",
        "fig5_compare_2.png",
        "fig5_compare.png",
        wall_times.WALL_FILE,
    ]
    assert not os.path.exists(os.path.join(out_dir, "fig5_overlays.png"))
    fig = np.asarray(PIL.Image.open(os.path.join(out_dir, "fig5_compare.png")))
    h, w = config.data.image_size
    strip, panel_w = overlays.label_width(labels), 4 * w + 3 * 4
    header = overlays.column_header(overlays.PANEL_TITLES, w, gap=4, left=strip)
    head_h = header.shape[0]  # each image's block starts with the panels' titles
    block_h = head_h + 2 * h + figures.COMPARE_ROW_GAP
    assert fig.shape == (2 * block_h + figures.COMPARE_IMAGE_GAP, strip + panel_w, 3)
    for top in (0, block_h + figures.COMPARE_IMAGE_GAP):  # each image: two rows of one checkpoint
        np.testing.assert_array_equal(fig[top : top + head_h], header)
        first = fig[top + head_h : top + head_h + h]
        second = fig[top + head_h + h + figures.COMPARE_ROW_GAP : top + block_h]
        np.testing.assert_array_equal(first[:, strip:], second[:, strip:])
        assert not np.array_equal(first[:, :strip], second[:, :strip])  # different labels
    one = np.asarray(PIL.Image.open(os.path.join(out_dir, "fig5_compare_2.png")))
    np.testing.assert_array_equal(one, fig[block_h + figures.COMPARE_IMAGE_GAP :])


@pytest.mark.parametrize("ours_kwargs", [{}, {"det_score_threshold": 0.0, "cls_divergence": "kl"}])
def test_analysis_scores_equal_selection_scores(tmp_path, tiny_run, ours_kwargs):
    """Fig. 6 / Table II score the pool through the same functions as selection (one path)."""
    import jax

    from mtal_jax import jsonio
    from mtal_jax.al import experiment, select_cli
    from mtal_jax.analysis import collect_loop

    config, run_dir = tiny_run
    config = config.copy_and_resolve_references()
    config.al.strategy.kwargs = {"ours": ours_kwargs}
    setup = experiment.build_setup(config)
    labeled = np.zeros(setup.pool_size, bool)
    labeled[::3] = True
    pool_json = str(tmp_path / "pool.json")
    jsonio.write_atomic(pool_json, {"labeled_ids": np.flatnonzero(labeled).tolist()})
    result = collect_loop.collect_split(
        config, run_dir, taus=(0.3,), pool_json=pool_json, progress=False, setup=setup
    )
    variables = select_cli.load_variables(config, setup, run_dir)
    plan = experiment.plan_from_config(config, names=["ours"])
    context = experiment.cycle_context(setup, plan, plan.strategy("ours"), 0, labeled)
    strategy = experiment.make_strategy(plan.strategy("ours"), context)
    _, scores, scored = experiment.select_images(
        setup, plan, strategy, variables, labeled, 2, jax.random.key(0), progress=False
    )
    cols = result["columns"]
    index = cols["index"]
    assert len(index) > 0 and scored[index].all() and not labeled[index].any()
    for key in ("score", "s_seg", "s_loc_max", "s_cls_max", "s_loc_best", "s_cls_best"):
        np.testing.assert_allclose(cols[key], scores[key][index], rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_array_equal(cols["num_boxes"], scores["num_boxes"][index])
    if ours_kwargs:  # threshold 0: the decoded candidates are scored, so S_loc is exercised
        assert cols["num_boxes"].sum() > 0


def test_panel_titles_fit_the_panels_of_every_dataset_preset():
    """``column_header`` clips a title to its panel: each must fit the narrowest input of
    the dataset presets (CamVid's 160 pixels; ``configs/tiny.py``'s 64 is a smoke test)."""
    from mtal_jax import config_file

    presets = ("default", "camvid", "nuimages", "a9", "coco_folder")
    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    narrowest = min(
        config_file.load(os.path.join(root, f"{p}.py")).data.image_size[1] for p in presets
    )
    assert narrowest == 160
    for title in overlays.PANEL_TITLES:
        left, _, right, _ = overlays._text_box(title)
        assert right - min(left, 0) + 4 <= narrowest, title  # 4: column_header's margin
