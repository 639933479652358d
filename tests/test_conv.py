"""models.conv: pointwise convolutions as matrix products, the same layer as flax's Conv."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from mtal_jax.models import conv, multitask

CASES = [  # (H, W, kernel, stride, padding)
    (8, 10, 1, 1, "SAME"),
    (9, 11, 1, 2, "SAME"),
    (9, 11, 1, 2, "VALID"),
    (8, 10, 1, 2, ((0, 0), (0, 0))),
    (7, 7, 1, 3, "SAME"),
    (8, 10, 1, 1, ((1, 1), (1, 1))),  # padded: a convolution, not a product
    (8, 10, 3, 1, "SAME"),
    (9, 11, 3, 2, "SAME"),
]


def _conv_primitives(fn, *args):
    """The kernel shapes of the conv_general_dilated equations of ``fn``'s jaxpr."""
    shapes = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                shapes.append(tuple(eqn.invars[1].aval.shape))
            for sub in jax.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return shapes


@pytest.mark.parametrize("h, w, k, s, pad", CASES)
def test_conv_equals_flax_conv_with_its_parameters_outputs_and_gradients(h, w, k, s, pad):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, h, w, 5)), jnp.float32)
    ours, flax_conv = conv.Conv(4, (k, k), (s, s), pad), nn.Conv(4, (k, k), (s, s), pad)
    variables = flax_conv.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(
        jnp.shape, variables
    )  # same names and shapes: checkpoints and pretrained weights load unchanged

    def loss(layer):
        return lambda v, x: jnp.sum(jnp.sin(layer.apply(v, x)))

    a, b = ours.apply(variables, x), flax_conv.apply(variables, x)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    ga = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
    gb = jax.grad(loss(flax_conv), argnums=(0, 1))(variables, x)
    for u, v in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
    pointwise = k == 1 and pad != ((1, 1), (1, 1))
    convs = _conv_primitives(lambda v, x: ours.apply(v, x), variables, x)
    assert convs == ([] if pointwise else [(k, k, 5, 4)])
    if not pointwise:  # passed through: the very same computation
        np.testing.assert_array_equal(a, b)


def test_is_pointwise_only_for_a_product_over_the_channels():
    dn = lax.conv_dimension_numbers((2, 8, 8, 5), (1, 1, 5, 4), ("NHWC", "HWIO", "NHWC"))
    base = {
        "ndim": 4, "kernel_shape": (1, 1, 5, 4), "window_strides": (1, 1), "padding": "SAME",
        "lhs_dilation": None, "rhs_dilation": None, "dimension_numbers": dn,
        "feature_group_count": 1, "batch_group_count": 1,
    }  # fmt: skip
    assert conv.is_pointwise(**base)
    assert conv.is_pointwise(**{**base, "window_strides": (2, 2), "padding": "VALID"})
    nchw = lax.conv_dimension_numbers((2, 5, 8, 8), (4, 5, 1, 1), ("NCHW", "OIHW", "NCHW"))
    for change in (
        {"kernel_shape": (3, 3, 5, 4)},
        {"kernel_shape": (1, 3, 5, 4)},
        {"padding": ((1, 1), (0, 0))},
        {"lhs_dilation": (2, 2)},
        {"rhs_dilation": (2, 2)},
        {"feature_group_count": 5},
        {"batch_group_count": 2},
        {"dimension_numbers": nchw},
        {"dimension_numbers": None},
    ):
        assert not conv.is_pointwise(**{**base, **change}), change


@pytest.mark.parametrize("backbone", ["tiny", "efficientnet_lite0"])
def test_the_network_runs_every_pointwise_convolution_as_a_product(backbone):
    # the speed-up holds only while the models build their 1x1 layers with conv.Conv
    model = multitask.Model(num_det_classes=3, num_seg_classes=5, backbone=backbone)
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.uint8)
    variables = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros(x.shape, x.dtype), train=False)
    )
    kernels = _conv_primitives(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert kernels  # the 3x3 convolutions stay convolutions
    assert all(k[0] * k[1] > 1 for k in kernels), kernels


def test_other_backends_keep_xla_convolutions(monkeypatch):
    # XLA:GPU's Triton GEMM fusion aborted compiling the product form (models/conv.py), so
    # only a CPU backend gets the products
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not conv.products_pay()
    model = multitask.Model(num_det_classes=3, num_seg_classes=5, backbone="tiny")
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.uint8)
    variables = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros(x.shape, x.dtype), train=False)
    )
    kernels = _conv_primitives(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert any(k[0] * k[1] == 1 for k in kernels), kernels
    monkeypatch.undo()
    assert conv.products_pay()  # this suite runs on the CPU
