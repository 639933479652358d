"""Baselines against NumPy ports of their original formulas (issue 18).

Each test uses inputs on which the library and the original once disagreed:

* CDAL: peaked, trained-network-like softmax outputs (feature entries far below 1e-8) and
  rows holding an exact zero, against a port of sharat29ag/CDAL ``CDAL_CS.py`` (``kl``:
  unclipped logs, NaN / inf rows dropped, mean of the rest) and its greedy k-centre;
* Entropy and EquAL: images padded bottom/right by the input pipeline, against NumPy
  means over the content cells only;
* LL4AL: the reference schedule (loss-module gradient into the backbone for the first
  120 of 200 epochs, Mephisto405/Learning-Loss-for-Active-Learning) against the step the
  experiment derives from ``loss.ll4al_detach_fraction``.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default as default_config
from mtal_jax import records, selection, strategies, structs
from mtal_jax.al import experiment
from mtal_jax.data import pipeline
from mtal_jax.models import multitask
from mtal_jax.scores import diversity
from mtal_jax.train import evaluate, loop, step_fns
from mtal_jax.train import step as step_lib
from tests import fixtures

# ------------------------------------------------------------------------------ CDAL


def _peaked_probs(seed: int, shape: tuple[int, ...], c: int) -> np.ndarray:
    """Softmax of logits with a dominant class of margin 6..20: a trained network's output."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(*shape, c)) * 2.0
    dominant = np.eye(c)[rng.integers(0, c, size=shape)]
    logits = logits + rng.uniform(6.0, 20.0, size=shape)[..., None] * dominant
    return np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), -1))


def _np_cdal_seg_feature(probs: np.ndarray) -> np.ndarray:
    """CDAL P^c (paper Eq. 1): per predicted class c, mean over its pixels of H(p) p."""
    p = probs.astype(np.float64)  # [B, h, w, C]
    c = p.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(p * np.log(p), axis=-1)  # [B, h, w] (0 log 0 = 0)
    arg = p.argmax(-1)
    rows = np.zeros((p.shape[0], c, c))
    for b in range(p.shape[0]):
        for r in range(c):
            m = arg[b] == r
            if m.any():
                rows[b, r] = (ent[b][m][:, None] * p[b][m]).mean(0)
    return rows


def _np_cdal_cs_kl(ac: np.ndarray, bc: np.ndarray) -> float:
    """Port of ``kl`` in sharat29ag/CDAL ``CDAL_CS.py`` (rows = classes)."""
    kl_classes = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(ac.shape[0]):
            a, b = ac[i], bc[i]
            kl = -0.5 * np.sum(a * np.log(a / b)) - 0.5 * np.sum(b * np.log(b / a))
            if kl == kl and not np.isinf(kl):  # noqa: PLR0124 (the original's NaN test)
                kl_classes.append(kl)
    return abs(sum(kl_classes) / len(kl_classes)) if kl_classes else 0.0


def _seg_only_distances(seg_probs: np.ndarray, **kwargs) -> np.ndarray:
    """Library CDAL distance of the segmentation features alone ([N, N])."""
    n, c = seg_probs.shape[0], seg_probs.shape[-1]
    det_probs = np.full((n, 1, c), 1.0 / c, np.float32)
    feats = diversity.cdal_features(seg_probs, det_probs, np.zeros((n, 1), bool), **kwargs)
    return np.asarray(diversity.make_cdal_distance(det_weight=0.0)(feats, feats))


def _reference_distances(seg_probs: np.ndarray) -> np.ndarray:
    f = _np_cdal_seg_feature(seg_probs)
    return np.array([[_np_cdal_cs_kl(f[i], f[j]) for j in range(len(f))] for i in range(len(f))])


def test_cdal_distance_equals_reference_on_peaked_probs():
    n = 8
    worst_default, worst_clip = 0.0, 0.0
    for seed in range(3):
        probs = _peaked_probs(seed, (n, 6, 8), 5)
        feats = _np_cdal_seg_feature(probs)
        assert feats[feats > 0].min() < 1e-9  # entries far below the old clip
        want = _reference_distances(probs)
        off = ~np.eye(n, dtype=bool)
        assert (want[off] > 1e-3).all()
        got = _seg_only_distances(probs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        worst_default = max(worst_default, float(np.max(np.abs(got - want)[off] / want[off])))
        clipped = _seg_only_distances(probs, eps=1e-8)  # the former default
        worst_clip = max(worst_clip, float(np.max(np.abs(clipped - want)[off] / want[off])))
    assert worst_default < 1e-5
    assert worst_clip > 0.05  # the deviation this test guards against (issue 18)


def test_cdal_drops_rows_with_an_exact_zero_like_the_reference():
    # Image 0: its class-0 pixels all hold p = [0.9, 0.1, 0.0] (an underflowed softmax
    # entry), so row 0 of its feature holds an exact 0; image 1: positive rows.
    c = 3
    probs = np.array(_peaked_probs(5, (2, 4, 4), c))
    probs[0, :2] = [0.9, 0.1, 0.0]
    probs[0, 2:] = [0.1, 0.2, 0.7]
    probs[1, :2] = [0.6, 0.3, 0.1]
    f = _np_cdal_seg_feature(probs)
    assert f[0, 0, 2] == 0.0 and (f[1, 0] > 0).all()
    want = _reference_distances(probs)
    got = _seg_only_distances(probs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    kept = _seg_only_distances(probs, drop_zero_rows=False)
    assert abs(kept[0, 1] - want[0, 1]) > 0.1  # keeping the row changes the distance


def test_cdal_k_center_picks_equal_the_reference_greedy():
    # CDAL_CS.py's kCenterGreedy after its (random) first pick: argmax of the distance to
    # the nearest centre. Seeded with a labeled set and random_first=False, the library's
    # greedy is deterministic; its picks must follow the reference distances.
    n, budget = 24, 6
    probs = _peaked_probs(11, (n, 6, 8), 5)
    centers = np.arange(n) < 4
    d = _reference_distances(probs)
    min_d = d[:, centers].min(1)
    want, picked = [], centers.copy()
    for _ in range(budget):
        i = int(np.argmax(np.where(~picked, min_d, -np.inf)))
        want.append(i)
        picked[i] = True
        min_d = np.minimum(min_d, d[:, i])
    det = np.full((n, 1, 5), 0.2, np.float32)
    feats = diversity.cdal_features(probs, det, np.zeros((n, 1), bool))
    got = selection.k_center_greedy(
        feats,
        ~centers,
        budget,
        jax.random.key(0),
        centers=centers,
        distance_fn=diversity.make_cdal_distance(),
        block_size=5,
    )
    assert np.asarray(got).tolist() == want


def test_cdal_features_skip_padding_pixels():
    probs = _peaked_probs(3, (2, 4, 6), 4)
    valid = np.zeros((2, 4, 6), bool)
    valid[:, :, :3] = True  # right half is padding
    det = np.full((2, 1, 4), 0.25, np.float32)
    no_det = np.zeros((2, 1), bool)
    masked = diversity.cdal_features(probs, det, no_det, pixel_valid=valid)
    cropped = diversity.cdal_features(probs[:, :, :3], det, no_det)
    np.testing.assert_allclose(masked, cropped, rtol=1e-6)
    assert not np.allclose(diversity.cdal_features(probs, det, no_det), cropped)


def test_cdal_factory_exposes_eps_and_zero_row_rule():
    with pytest.raises(ValueError, match="takes no keyword"):
        strategies.get_strategy("cdal", bogus=1)
    strategies.get_strategy("cdal", eps=1e-12, drop_zero_rows=False)


# ------------------------------------------------------------------ Entropy and EquAL


def _content_cells(content_hw: np.ndarray, out_hw, in_hw) -> np.ndarray:
    """NumPy: a cell is content when its centre input pixel lies inside the content."""
    sy, sx = in_hw[0] // out_hw[0], in_hw[1] // out_hw[1]
    rows = sy * np.arange(out_hw[0]) + sy // 2  # centre pixel of each cell row
    cols = sx * np.arange(out_hw[1]) + sx // 2
    return (rows[None, :, None] < content_hw[:, 0, None, None]) & (
        cols[None, None, :] < content_hw[:, 1, None, None]
    )


def test_content_mask_hand_computed_and_equal_to_the_loss_padding_mask():
    got = np.asarray(step_lib.content_mask(np.array([[13, 32], [32, 6], [0, 0]]), (8, 8), (32, 32)))
    assert got[0].sum(1).tolist() == [8, 8, 8, 0, 0, 0, 0, 0]  # centres 2, 6, 10 < 13
    assert got[1].sum(0).tolist() == [8, 0, 0, 0, 0, 0, 0, 0]  # centres 2 < 6, 6 >= 6
    assert not got[2].any()
    # Stride 1: exactly the pixels that the pipeline pads with IGNORE_LABEL, which the
    # segmentation loss leaves out (example masks hold no void pixel).
    examples = [fixtures.make_example(hw=hw, seed=i) for i, hw in enumerate([(20, 40), (40, 24)])]
    host = fixtures.host_batch(examples)
    assert host["content_hw"].tolist() == [[32, 64], [64, 38]]
    assert pipeline.padding_example(fixtures.SPEC)["content_hw"].tolist() == [0, 0]
    mask = step_lib.content_mask(host["content_hw"], fixtures.IMAGE_HW, fixtures.IMAGE_HW)
    np.testing.assert_array_equal(mask, host["seg_labels"] != structs.IGNORE_LABEL)


@pytest.fixture(scope="module")
def padded_pool():
    """Predict-function scores of padded images, and the model's own probabilities."""
    model = fixtures.make_model()
    variables = multitask.create_variables(model, jax.random.key(0), fixtures.IMAGE_HW)
    examples = [
        fixtures.make_example(hw=hw, seed=i) for i, hw in enumerate([(20, 40), (40, 24), (64, 64)])
    ]
    host = fixtures.host_batch(examples)
    batch = evaluate.to_batch(host)
    outs = {}
    for name in ("entropy", "equal"):
        predict = jax.jit(
            step_lib.make_predict_fn(
                model,
                strategies.get_strategy(name),
                decode_kwargs={"max_detections": 4, "score_threshold": 0.05},
                det_to_seg=jnp.arange(fixtures.NUM_DET_CLASSES),
            )
        )
        outs[name] = jax.device_get(predict(variables, batch)[0])
    images = jnp.asarray(host["images"])
    logits = model.apply(variables, images, train=False).seg_logits
    p = np.asarray(jax.nn.softmax(logits.astype(jnp.float32), -1), np.float64)
    flip_logits = model.apply(variables, jnp.flip(images, 2), method=multitask.Model.segment)
    pf = np.asarray(jax.nn.softmax(flip_logits.astype(jnp.float32), -1), np.float64)[:, :, ::-1]
    cells = _content_cells(host["content_hw"], p.shape[1:3], images.shape[1:3])
    assert cells[2].all() and 0 < cells[0].mean() < 1 and 0 < cells[1].mean() < 1
    return outs, p, pf, cells


def _masked_mean(per_pixel: np.ndarray, cells: np.ndarray) -> np.ndarray:
    return np.array([per_pixel[b][cells[b]].mean() for b in range(len(per_pixel))])


def test_entropy_strategy_excludes_padding(padded_pool):
    outs, p, _, cells = padded_pool
    ent = -np.sum(p * np.log(p), -1)  # the entropy baseline's per-pixel formula
    want = _masked_mean(ent, cells)
    np.testing.assert_allclose(outs["entropy"]["seg_entropy"], want, rtol=1e-5)
    # the padded images' scores moved; the unpadded image's did not
    unmasked = ent.mean((1, 2))
    assert np.all(np.abs(unmasked[:2] - want[:2]) > 1e-3 * want[:2])


def test_equal_strategy_is_paper_kl_over_content(padded_pool):
    outs, p, pf, cells = padded_pool
    eps = 1e-8
    kl = np.sum(p * (np.log(np.maximum(p, eps)) - np.log(np.maximum(pf, eps))), -1)  # KL(P||P_f)
    want = _masked_mean(kl, cells)
    np.testing.assert_allclose(outs["equal"]["score"], want, rtol=1e-4, atol=1e-7)
    unmasked = kl.mean((1, 2))
    assert np.all(np.abs(unmasked[:2] - want[:2]) > 1e-3 * want[:2])


# ------------------------------------------------------------------------------ LL4AL


def _reference_attached_epochs(num_epochs: int = 200, epoch_loss: int = 120) -> int:
    """Mephisto405 ``train_epoch``: features are detached when ``epoch > epoch_loss``."""
    return sum(1 for epoch in range(num_epochs) if not epoch > epoch_loss)


@pytest.mark.parametrize("steps", [50, 200, 1000])
def test_ll4al_detach_step_follows_the_reference_fraction(steps):
    config = default_config.get_config()
    cfg = experiment.train_config(config, num_steps=steps, ll4al=True)
    attached = cfg.ll4al_detach_step  # steps 0 .. detach_step - 1 see attached features
    ref = _reference_attached_epochs() / 200  # 121 / 200
    assert abs(attached / steps - ref) <= 0.01 + 1.0 / steps
    # every other run (cycle 0, reference run, other strategies): always detached
    assert experiment.train_config(config, num_steps=steps).ll4al_detach_step == 0
    config.loss.ll4al_detach_fraction = 1.5
    with pytest.raises(ValueError, match="ll4al_detach_fraction"):
        experiment.train_config(config, num_steps=steps, ll4al=True)


def test_ll4al_gradient_reaches_backbone_only_before_the_detach_step():
    model = fixtures.make_model(loss_prediction=True)
    variables = multitask.create_variables(model, jax.random.key(0), (32, 32))
    images = jnp.asarray(np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3)), jnp.uint8)

    @jax.jit
    def backbone_grad_sq(detach):
        def f(params):
            out = model.apply(
                {**variables, "params": params}, images, train=False, detach_loss_features=detach
            )
            return jnp.sum(out.loss_pred)

        g = jax.grad(f)(variables["params"])["resnet"]  # the backbone's parameters only
        return sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(g))

    def backbone_grad_norm(detach):
        return float(backbone_grad_sq(detach))

    assert backbone_grad_norm(jnp.asarray(False)) > 0
    assert backbone_grad_norm(jnp.asarray(True)) == 0


def test_experiment_attaches_loss_modules_only_in_ll4al_cycles(tmp_path, monkeypatch):
    # The shell's wiring, with training and scoring stubbed out: which detach step does
    # each run of an experiment get?
    from configs import tiny

    config = tiny.get_config()
    config.data.data_dir = str(tmp_path / "tfds")
    config.al.reference_map = config.al.reference_miou = 0.5
    config.al.strategies = "ll4al,random"
    config.al.num_cycles = 3
    seen = {}

    def fake_train(model, cfg, *, workdir, **kwargs):
        del model, kwargs
        seen[os.path.relpath(workdir, tmp_path / "run")] = (cfg.num_steps, cfg.ll4al_detach_step)
        return records.RunResult(
            metrics={"map": 0.1, "ap50": 0.2, "miou": 0.3},
            metric=0.2,
            step=cfg.num_steps,
            per_class_ap=[],
            per_class_iou=[],
            variables={},  # a trained run always returns its weights
        )

    def fake_select(setup, config, strategy, variables, labeled, budget, key, **kwargs):
        del setup, config, strategy, variables, key, kwargs
        return np.flatnonzero(~labeled)[:budget], {"score": np.zeros(len(labeled))}, ~labeled

    monkeypatch.setattr(loop, "train", fake_train)
    monkeypatch.setattr(step_fns, "build_step_fns", lambda *a, **k: None)
    monkeypatch.setattr(experiment.cycle, "select_images", fake_select)
    experiment.run(config, str(tmp_path / "run"), progress=False)
    steps = int(config.train.steps)
    attached = round(config.loss.ll4al_detach_fraction * steps)
    assert 0 < attached < steps
    assert seen[os.path.join("trial_0", "cycle_0")][1] == 0  # shared by every strategy
    for cycle in (1, 2):
        assert seen[os.path.join("trial_0", "ll4al", f"cycle_{cycle}")] == (steps, attached)
        assert seen[os.path.join("trial_0", "random", f"cycle_{cycle}")] == (steps, 0)
