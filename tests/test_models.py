"""Contracts of models/: output shapes, dtypes and finiteness of the multi-task network.

The test backbone runs for real (64x64 images); every other variant is only traced
(``jax.eval_shape``), so ResNet-50 never runs on the CPU here.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtal_jax import decode
from mtal_jax.models import backbone, multitask
from tests import fixtures

B = 2
H, W = fixtures.IMAGE_HW
h, w = H // multitask.STRIDE, W // multitask.STRIDE
C_DET, C_SEG = fixtures.NUM_DET_CLASSES, fixtures.NUM_SEG_CLASSES
D_TEST = backbone.VARIANTS["test"].widths[-1]


@pytest.fixture(scope="module")
def images():
    return np.stack([e["image"] for e in fixtures.scene_examples(B, seed=3)])


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "loss_prediction"])
def model_and_variables(request):
    model = fixtures.make_model(loss_prediction=request.param)
    variables = multitask.create_variables(model, jax.random.key(0), fixtures.IMAGE_HW)
    return model, variables


@pytest.fixture(scope="module")
def eval_outputs(model_and_variables, images):
    model, variables = model_and_variables
    return jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)


def test_variables_hold_params_and_batch_stats(model_and_variables):
    _, variables = model_and_variables
    assert set(variables) == {"params", "batch_stats"}
    chex.assert_tree_all_finite(variables)


def test_jitted_initialisation_equals_the_op_by_op_one(model_and_variables):
    """``create_variables`` is jitted for speed; Flax's own (eager) ``init`` gives the same
    values bit for bit, so the change left every experiment's initial weights as they were."""
    model, variables = model_and_variables
    dummy = jnp.zeros((1, *fixtures.IMAGE_HW, 3), jnp.uint8)
    eager = model.init(jax.random.key(0), dummy, train=False)
    assert jax.tree.structure(dict(eager)) == jax.tree.structure(variables)
    jax.tree.map(np.testing.assert_array_equal, dict(eager), variables)
    other = multitask.create_variables(model, jax.random.key(1), list(fixtures.IMAGE_HW))
    differ = jax.tree.map(lambda a, b: not np.array_equal(a, b), other, variables)
    assert any(jax.tree.leaves(differ))  # the key is an argument, not baked into the init
    n = sum(x.size for x in jax.tree.leaves(variables["params"]))
    assert n < 50_000, f"the test model should stay tiny, has {n} parameters"


def test_eval_outputs_shapes_dtypes_finite(model_and_variables, eval_outputs):
    model, _ = model_and_variables
    out = eval_outputs
    chex.assert_shape(out.heatmap_logits, (B, h, w, C_DET))
    chex.assert_shape([out.box_size, out.box_offset], (B, h, w, 2))
    chex.assert_shape(out.seg_logits, (B, h, w, C_SEG))
    chex.assert_shape(out.embedding, (B, D_TEST))
    chex.assert_type(
        [out.heatmap_logits, out.box_size, out.box_offset, out.seg_logits], jnp.float32
    )
    chex.assert_tree_all_finite(out)
    assert bool(jnp.all(out.box_size >= 0)), "box sizes are softplus outputs"
    if model.loss_prediction:
        chex.assert_shape(out.loss_pred, (B, 2))
    else:
        assert out.loss_pred is None


def test_heatmap_prior_at_init(eval_outputs):
    # CenterNet bias init: the peak probability starts near HEATMAP_PRIOR, not 0.5.
    p = jax.nn.sigmoid(eval_outputs.heatmap_logits)
    assert 0.01 < float(jnp.median(p)) < 0.3


def test_train_mode_updates_batch_stats(model_and_variables, images):
    model, variables = model_and_variables
    out, mutated = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables, images
    )
    chex.assert_shape(out.seg_logits, (B, h, w, C_SEG))
    chex.assert_tree_all_finite((out, mutated))
    chex.assert_trees_all_equal_shapes(mutated["batch_stats"], variables["batch_stats"])
    changed = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), mutated["batch_stats"], variables["batch_stats"]
    )
    assert any(jax.tree.leaves(changed)), "train mode must update BatchNorm statistics"


def test_segment_matches_eval_seg_logits(model_and_variables, images, eval_outputs):
    model, variables = model_and_variables
    logits = jax.jit(lambda v, x: model.apply(v, x, method=multitask.Model.segment))(
        variables, images
    )
    chex.assert_shape(logits, (B, h, w, C_SEG))
    chex.assert_tree_all_finite(logits)
    chex.assert_trees_all_close(logits, eval_outputs.seg_logits, atol=1e-5, rtol=1e-5)


def test_decoded_model_outputs_contract(eval_outputs):
    k = 8
    dets = decode.decode(eval_outputs, max_detections=k, score_threshold=0.05)
    chex.assert_shape(dets.boxes, (B, k, 4))
    chex.assert_shape(dets.det_probs, (B, k, C_DET))
    chex.assert_shape([dets.scores, dets.labels, dets.valid], (B, k))
    chex.assert_tree_all_finite((dets.boxes, dets.det_probs, dets.scores))
    np.testing.assert_allclose(np.asarray(dets.det_probs).sum(-1), 1.0, rtol=1e-5)
    boxes = np.asarray(dets.boxes)
    assert (
        (boxes >= 0).all() and (boxes[..., [0, 2]] <= W).all() and (boxes[..., [1, 3]] <= H).all()
    )


@pytest.mark.parametrize(
    "bad_shape",
    [(1, 48, 64, 3), (1, 64, 64, 1), (64, 64, 3)],
    ids=["not_div_32", "gray", "no_batch"],
)
def test_bad_image_shapes_raise(model_and_variables, bad_shape):
    model, variables = model_and_variables
    with pytest.raises(ValueError, match="images|divisible"):
        jax.eval_shape(
            lambda v, x: model.apply(v, x, train=False), variables, jnp.zeros(bad_shape, jnp.uint8)
        )


@pytest.mark.parametrize("variant", sorted(backbone.VARIANTS))
def test_every_variant_output_shapes(variant):
    """Traced only: shapes of every backbone variant at 128x96 with loss prediction."""
    v = backbone.VARIANTS[variant]
    model = multitask.Model(
        4, 7, backbone=variant, neck_channels=16, head_channels=16, loss_prediction=True
    )
    images = jax.ShapeDtypeStruct((2, 128, 96, 3), jnp.uint8)

    def run(key, x):
        out, variables = model.init_with_output(key, x, train=False)
        return out, variables, model.apply(variables, x, method=multitask.Model.segment)

    out, variables, seg = jax.eval_shape(run, jax.random.key(0), images)
    chex.assert_shape(out.heatmap_logits, (2, 32, 24, 4))
    chex.assert_shape([out.box_size, out.box_offset], (2, 32, 24, 2))
    chex.assert_shape([out.seg_logits, seg], (2, 32, 24, 7))
    chex.assert_shape(out.embedding, (2, v.widths[-1] * (4 if v.bottleneck else 1)))
    chex.assert_shape(out.loss_pred, (2, 2))
    assert set(variables) == {"params", "batch_stats"}


@pytest.mark.parametrize("variant", sorted(backbone.VARIANTS))
def test_backbone_stage_strides(variant):
    v = backbone.VARIANTS[variant]
    net = backbone.ResNet(variant)
    x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    stages, _ = jax.eval_shape(
        lambda k, x: net.init_with_output(k, x, train=False), jax.random.key(0), x
    )
    assert len(stages) == len(v.blocks)
    for i, s in enumerate(stages):
        stride = 4 * 2**i
        width = v.widths[i] * (4 if v.bottleneck else 1)
        chex.assert_shape(s, (1, 64 // stride, 64 // stride, width))


def _torchvision_resnet(variables, x, variant):
    """ResNet stage outputs with torchvision's padding (``k // 2`` on every side), by hand
    with ``lax`` ops (eval mode), over the Flax module's variables."""
    from jax import lax

    v = backbone.VARIANTS[variant]
    params, stats = variables["params"], variables["batch_stats"]

    def conv(h, kernel, stride):
        pad = [(kernel.shape[0] // 2,) * 2] * 2
        return lax.conv_general_dilated(
            h, kernel, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=lax.Precision.HIGHEST,
        )  # fmt: skip

    def bn(h, p, s):
        return (h - s["mean"]) / jnp.sqrt(s["var"] + 1e-5) * p["scale"] + p["bias"]

    h = jax.nn.relu(bn(conv(x, params["stem"]["kernel"], 2), params["bn_stem"], stats["bn_stem"]))
    h = lax.reduce_window(
        h, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), [(0, 0), (1, 1), (1, 1), (0, 0)]
    )
    outs = []
    for i, n in enumerate(v.blocks):
        for j in range(n):
            name = f"stage{i + 1}_block{j + 1}"
            p, s, stride = params[name], stats[name], 2 if (i > 0 and j == 0) else 1
            if v.bottleneck:
                y = jax.nn.relu(bn(conv(h, p["conv1"]["kernel"], 1), p["bn1"], s["bn1"]))
                y = jax.nn.relu(bn(conv(y, p["conv2"]["kernel"], stride), p["bn2"], s["bn2"]))
                y = bn(conv(y, p["conv3"]["kernel"], 1), p["bn3"], s["bn3"])
            else:
                y = jax.nn.relu(bn(conv(h, p["conv1"]["kernel"], stride), p["bn1"], s["bn1"]))
                y = bn(conv(y, p["conv2"]["kernel"], 1), p["bn2"], s["bn2"])
            if "proj" in p:
                h = bn(conv(h, p["proj"]["kernel"], stride), p["bn_proj"], s["bn_proj"])
            h = jax.nn.relu(h + y)
        outs.append(h)
    return outs


@pytest.mark.parametrize("variant", ["resnet18", "resnet50"])
def test_resnet_variants_pad_like_torchvision(variant):
    # the 7x7-stem variants load torchvision's ImageNet weights: every stride-2 layer must
    # sample the grid those weights were trained on (Flax's "SAME" was 1 pixel off: a
    # relative difference of 0.8-1.0 per stage against this reference)
    net = backbone.ResNet(variant)
    x = jax.random.normal(jax.random.key(1), (1, 64, 64, 3))
    # The shapes of Flax's init without running it (its random initialisers, and JAX's
    # random numbers per shape, took most of this test's time), filled with random kernels
    # and non-trivial BatchNorm: random scales, biases and running statistics.
    shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), x, train=False))
    rng = np.random.default_rng(2)
    variables = jax.tree.map(
        lambda a: np.asarray(
            rng.standard_normal(a.shape) / np.sqrt(np.prod(a.shape[:-1]))
            if a.ndim > 1
            else rng.uniform(0.5, 1.5, a.shape),
            np.float32,
        ),
        shapes,
    )
    got = jax.jit(lambda v, x: net.apply(v, x, train=False))(variables, x)
    want = jax.jit(_torchvision_resnet, static_argnums=2)(variables, x, variant)
    for g, w in zip(got, want):
        chex.assert_equal_shape([g, w])
        assert float(jnp.linalg.norm(g - w) / jnp.linalg.norm(w)) < 1e-4
