"""Registry conformance (docs/design.md §7.6): every strategy through the same contract.

Each registered strategy scores a small pool with the real tiny network and
``train.step.make_predict_fn`` (padding included), then selects. Checked: score / feature
shapes, exactly ``budget`` distinct selectable indices (never a labeled or padded one),
determinism per key, jit == eager, padding never changes a selection, images without
any detection, and a clear error for a budget larger than the unlabeled pool.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import strategies, strategy_types, structs
from mtal_jax.models import multitask
from mtal_jax.train import step

N_POOL, BATCH, BUDGET = 10, 4, 4  # 3 batches, the last one with 2 padded slots
LABELED = np.arange(N_POOL) < 3
CONTEXT = strategy_types.CycleContext(cycle=0, labeled_class_hist=np.array([1.0, 0.5, 0.0]))


@pytest.fixture(scope="module")
def network():
    model = multitask.Model(
        num_det_classes=3,
        num_seg_classes=5,
        backbone="test",
        neck_channels=8,
        head_channels=8,
        loss_prediction=True,
    )
    variables = multitask.create_variables(model, jax.random.key(0), (32, 32))
    images = np.random.default_rng(0).integers(0, 255, (N_POOL, 32, 32, 3), dtype=np.uint8)
    images[4] = 0  # a blank image
    return model, variables, images


def _score_pool(network, strategy, threshold):
    """Scores every slot of the padded pool: (scores dict [S], feats [S, D], valid [S])."""
    model, variables, images = network
    predict = jax.jit(
        step.make_predict_fn(
            model,
            strategy,
            decode_kwargs={"max_detections": 6, "score_threshold": threshold},
            det_to_seg=jnp.array([1, 2, 3]),
        )
    )
    slots = -(-N_POOL // BATCH) * BATCH
    imgs = np.zeros((slots, 32, 32, 3), np.uint8)
    imgs[:N_POOL] = images
    valid = np.arange(slots) < N_POOL
    scores, feats = {}, []
    for s in range(0, slots, BATCH):
        b = slice(s, s + BATCH)
        batch = structs.Batch(
            images=jnp.asarray(imgs[b]),
            boxes=jnp.zeros((BATCH, 2, 4)),
            box_labels=jnp.zeros((BATCH, 2), jnp.int32),
            box_valid=jnp.zeros((BATCH, 2), bool),
            seg_labels=jnp.zeros((BATCH, 32, 32), jnp.int32),
            valid=jnp.asarray(valid[b]),
            index=jnp.where(valid[b], jnp.arange(s, s + BATCH), -1),
        )
        sc, f = predict(variables, batch)
        for k, v in sc.items():
            scores.setdefault(k, []).append(np.asarray(v))
        feats.append(np.zeros((BATCH, 0), np.float32) if f is None else np.asarray(f))
    return {k: np.concatenate(v) for k, v in scores.items()}, np.concatenate(feats), valid


@pytest.mark.parametrize("threshold", [0.0, 1.0], ids=["detections", "no_detections"])
@pytest.mark.parametrize("name", sorted(strategies.STRATEGIES))
def test_contract(network, name, threshold):
    strategy = strategies.get_strategy(name, CONTEXT)
    scores, feats, valid = _score_pool(network, strategy, threshold)
    slots = valid.shape[0]
    assert "score" in scores
    for v in scores.values():
        chex.assert_shape(v, (slots,))
    assert np.isfinite(scores["score"][valid]).all(), scores["score"]
    assert (scores["score"][~valid] == -np.inf).all(), scores["score"]  # design.md §3
    assert feats.shape[0] == slots and np.isfinite(feats[valid]).all()

    selectable = valid & np.concatenate([~LABELED, np.zeros(slots - N_POOL, bool)])
    score = scores["score"]
    key = jax.random.key(3)
    out = strategy.select(score, feats, selectable, BUDGET, key)
    chex.assert_shape(out, (BUDGET,))
    assert out.dtype == jnp.int32
    out = np.asarray(out)
    assert len(set(out.tolist())) == BUDGET
    assert selectable[out].all(), (out, selectable)

    again = strategy.select(score, feats, selectable, BUDGET, key)
    np.testing.assert_array_equal(again, out)
    jitted = jax.jit(strategy.select, static_argnums=3)(score, feats, selectable, BUDGET, key)
    np.testing.assert_array_equal(jitted, out)
    unpadded = strategy.select(score[:N_POOL], feats[:N_POOL], selectable[:N_POOL], BUDGET, key)
    np.testing.assert_array_equal(unpadded, out)

    with pytest.raises(ValueError, match="budget 8 exceeds the 7 selectable"):
        strategy.select(score, feats, selectable, int(selectable.sum()) + 1, key)


def test_random_depends_on_key():
    strategy = strategies.get_strategy("random")
    sel = np.ones(30, bool)
    picks = {
        tuple(strategy.select(np.zeros(30), np.zeros((30, 0)), sel, 5, jax.random.key(s)).tolist())
        for s in range(4)
    }
    assert len(picks) > 1


def test_get_strategy_errors_and_context():
    with pytest.raises(ValueError, match=r"valid names: \['alternation', 'cald'"):
        strategies.get_strategy("bogus")
    with pytest.raises(ValueError, match="takes no keyword"):
        strategies.get_strategy("entropy", seg_wieght=2.0)
    with pytest.raises(ValueError, match="takes no keyword"):  # context is not a keyword
        strategies.get_strategy("entropy", cycle=3)
    context = strategy_types.CycleContext(cycle=3, labeled_class_hist=[1.0])
    assert isinstance(strategies.get_strategy("entropy", context), strategy_types.Strategy)
    assert strategies.hyperparameters("entropy") == ["det_weight", "seg_weight"]
    assert set(strategies.STRATEGIES) >= {
        "random",
        "entropy",
        "cald",
        "equal",
        "alternation",
        "ll4al",
        "cdal",
        "coreset",
        "ours",
    }


def test_alternation_parity():
    cald_extra = strategies.get_strategy("cald").extras[0].__qualname__
    equal_extra = strategies.get_strategy("equal").extras[0]
    assert (
        strategies.get_strategy("alternation", strategy_types.CycleContext(cycle=0))
        .extras[0]
        .__qualname__
        == cald_extra
    )
    assert (
        strategies.get_strategy("alternation", strategy_types.CycleContext(cycle=1)).extras[0]
        is equal_extra
    )
    assert (
        strategies.get_strategy("alternation", strategy_types.CycleContext(cycle=1), cald_parity=1)
        .extras[0]
        .__qualname__
        == cald_extra
    )
    with pytest.raises(ValueError, match="cald_parity"):
        strategies.get_strategy("alternation", cald_parity=2)


def test_ll4al_needs_loss_prediction():
    dets = structs.Detections(
        jnp.zeros((1, 1, 4)),
        jnp.ones((1, 1, 2)) / 2,
        jnp.zeros((1, 1)),
        jnp.zeros((1, 1), jnp.int32),
        jnp.zeros((1, 1), bool),
    )
    preds = structs.Predictions(
        dets, jnp.ones((1, 4, 4, 3)) / 3, jnp.zeros((1, 8)), jnp.ones(1, bool)
    )
    with pytest.raises(ValueError, match="loss_prediction=True"):
        strategies.get_strategy("ll4al").score(preds)


def test_bad_options_fail_at_build_time():
    for name, kwargs in [
        ("equal", {"variant": "l2"}),
        ("ll4al", {"normalization": "minmax"}),
        ("cdal", {"det_form": "x"}),
        ("cald", {"augmentations": ("blur",)}),
    ]:
        with pytest.raises(ValueError, match="valid"):
            strategies.get_strategy(name, **kwargs)
