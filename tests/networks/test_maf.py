"""Tests of the masked autoregressive flow: autoregressive structure, bijectivity, fitting, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks.inference import AffineTransform, RationalQuadraticSpline
from amortflow.networks.inference.maf import MADE, MaskedAutoregressiveFlow, MaskedDense
from tests.networks.registry_density import (
    NetworkHolder,
    check_linear_gaussian_fit,
    linear_gaussian_task,
    train_density,
)
from tests.support import assert_config_round_trip


def randomize(net, rng, scale=0.3):
    """Give every trainable weight random values (fresh MAF layers are exactly the identity)."""
    for weight in net.trainable_weights:
        weight.assign(scale * rng.normal(size=weight.shape).astype("float32"))


def make(num_params, condition_dim, rng, batch=6, **kwargs):
    settings = {"num_layers": 2, "hidden_units": (16, 16), "activation": "tanh"} | kwargs
    net = MaskedAutoregressiveFlow(num_params, **settings)
    x = rng.normal(size=(batch, num_params)).astype("float32")
    c = None if condition_dim is None else rng.normal(size=(batch, condition_dim)).astype("float32")
    net(x, c)
    randomize(net, rng)
    return net, x, c


def jacobian(net, x, c):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z, _ = net(x, c)
    return tape.batch_jacobian(z, x).numpy()


@pytest.mark.parametrize("num_params", [1, 3])
@pytest.mark.parametrize("condition_dim", [None, 2])
def test_round_trip_and_log_det(num_params, condition_dim, rng):
    net, x, c = make(num_params, condition_dim, rng, permutation="fixed")
    z, log_det = net(x, c)
    assert z.shape == (6, num_params) and log_det.shape == (6,)
    np.testing.assert_allclose(net.inverse(z, c), x, atol=1e-4)
    _, autodiff = np.linalg.slogdet(jacobian(net, x, c))
    np.testing.assert_allclose(log_det, autodiff, atol=1e-4)


def test_fresh_flow_is_identity(rng):
    net = MaskedAutoregressiveFlow(3, num_layers=3, hidden_units=(8,), permutation=None)
    x = rng.normal(size=(5, 3)).astype("float32")
    z, log_det = net(x, rng.normal(size=(5, 2)).astype("float32"))
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(log_det, np.zeros(5))


def test_single_layer_jacobian_is_lower_triangular(rng):
    net, x, c = make(4, 3, rng, num_layers=1, hidden_units=(32, 32))
    J = jacobian(net, x, c)
    upper = np.triu(np.ones((4, 4), bool), k=1)
    assert np.all(J[:, upper] == 0.0), "z_i must not depend on x_j for j > i"
    assert np.all(np.abs(J[:, upper.T]) > 1e-6), "z_i must depend on every x_j with j < i"
    # The default AffineTransform: dz_i/dx_i = exp(s_i), s_i = (2 * 1.9 / pi) atan(s_raw_i / 1.9).
    s_raw = net.mades[0](np.concatenate([x, c], axis=1)).numpy()[..., 0]
    expected = np.exp(2 * 1.9 / np.pi * np.arctan(s_raw / 1.9))
    np.testing.assert_allclose(np.diagonal(J, axis1=1, axis2=2), expected, rtol=1e-5)


def test_stack_without_permutation_stays_triangular(rng):
    J = jacobian(*make(4, None, rng, num_layers=3, permutation=None))
    assert np.all(J[:, np.triu(np.ones((4, 4), bool), k=1)] == 0.0)


def test_reverse_permutation_changes_the_order(rng):
    # Layer 2 sees (y_D, ..., y_1) of layer 1 and y_D depends on every x: the Jacobian is dense.
    J = jacobian(*make(4, 2, rng, num_layers=2, permutation="reverse"))
    assert np.all(np.abs(J) > 1e-6)
    # The first layer is never permuted, so one reversed layer is still triangular.
    J = jacobian(*make(4, 2, rng, num_layers=1, permutation="reverse"))
    assert np.all(J[:, np.triu(np.ones((4, 4), bool), k=1)] == 0.0)


def test_fixed_permutations_are_seeded_and_nontrivial(rng):
    nets = [make(5, None, rng, num_layers=4, permutation="fixed", seed=11)[0] for _ in range(2)]
    perms = [np.stack([layer.permutation.numpy() for layer in net.permutation_layers]) for net in nets]
    np.testing.assert_array_equal(perms[0], perms[1])
    assert all(sorted(p) == list(range(5)) for p in perms[0])
    assert len(perms[0]) == 3 and any(list(p) != list(range(5)) for p in perms[0])


def test_first_dimension_depends_on_condition(rng):
    net, x, c = make(1, 2, rng)
    z1, _ = net(x, c)
    z2, _ = net(x, c + 1.0)
    assert np.all(np.abs(z1 - z2) > 1e-6)


def test_masked_dense_mask_and_condition_columns():
    layer = MaskedDense(input_degrees=[1, 2], output_degrees=[0, 1, 2], strict=False)
    expected = np.array([[0, 1, 1], [0, 0, 1], [1, 1, 1]])  # third input column: condition (degree 0)
    np.testing.assert_array_equal(layer.mask(3), expected)
    strict = MaskedDense(input_degrees=[0, 1], output_degrees=[1, 2], strict=True)
    np.testing.assert_array_equal(strict.mask(2), np.array([[1, 1], [0, 1]]))


def test_made_without_inputs_is_a_trainable_constant(rng):
    made = MADE(1, hidden_units=(8,))
    params = made(np.ones((4, 1), "float32"))
    assert params.shape == (4, 1, 2)
    assert [w.name for w in made.trainable_weights] == ["constant"]


def test_compiled_with_dynamic_batch_matches_eager(rng):
    net, x, c = make(3, 2, rng, permutation="fixed")
    forward = tf.function(
        lambda x, c: net(x, c), input_signature=[tf.TensorSpec((None, 3)), tf.TensorSpec((None, 2))]
    )
    inverse = tf.function(
        lambda z, c: net.inverse(z, c), input_signature=[tf.TensorSpec((None, 3)), tf.TensorSpec((None, 2))]
    )
    for batch in (2, 7):
        xb = rng.normal(size=(batch, 3)).astype("float32")
        cb = rng.normal(size=(batch, 2)).astype("float32")
        z, log_det = forward(xb, cb)
        # float32: graph and eager kernels may order the sums of a dense layer differently
        # (oneDNN picks by CPU); a few ulp of |z| ~ 4 is ~1e-6 per layer, 1.4e-6 seen on AVX-512.
        np.testing.assert_allclose(z, net(xb, cb)[0], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(log_det, net(xb, cb)[1], atol=1e-5)
        np.testing.assert_allclose(inverse(z, cb), xb, atol=1e-4)


def test_first_call_inside_tf_function(rng):
    """Building during a trace must leave nothing graph-bound behind (e.g. the masks)."""
    net = MaskedAutoregressiveFlow(2, num_layers=2, hidden_units=(8,), permutation="fixed")
    x, c = rng.normal(size=(4, 2)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    compiled = tf.function(lambda x, c: net.log_prob(x, c))(x, c)
    np.testing.assert_allclose(compiled, net.log_prob(x, c), atol=1e-6)


def test_seeded_sampling_repeats(rng):
    net, _, c = make(2, 3, rng)
    draws = net.sample(5, c, seed=4)
    assert draws.shape == (6, 5, 2)
    np.testing.assert_array_equal(draws, net.sample(5, c, seed=4))
    assert not np.array_equal(draws, net.sample(5, c, seed=5))
    unconditional, _, _ = make(2, None, rng)
    assert unconditional.sample(5, seed=4).shape == (5, 2)


def test_invalid_inputs_and_arguments(rng):
    net, x, c = make(2, 3, rng)
    with pytest.raises(ShapeError, match=r"\(B, 2\)"):
        net(x[:, :1], c)
    with pytest.raises(ShapeError, match=r"condition shape \(B, 3\).*None"):
        net(x, None)
    with pytest.raises(ArgumentError, match="permutation"):
        MaskedAutoregressiveFlow(2, permutation="learnable")
    with pytest.raises(ArgumentError, match="num_layers"):
        MaskedAutoregressiveFlow(2, num_layers=0)


@pytest.mark.parametrize("permutation", ["reverse", "fixed", None])
def test_config_round_trip(permutation):
    net = MaskedAutoregressiveFlow(3, num_layers=2, hidden_units=(8, 4), permutation=permutation, seed=1)
    assert_config_round_trip(net)
    assert net.get_config()["hidden_units"] == [8, 4]
    assert_config_round_trip(MaskedDense([1, 2], [0, 1, 1], strict=True))
    assert_config_round_trip(MADE(3, hidden_units=(8,)))


def test_fits_conditional_gaussian(rng):
    """Learn theta | c ~ N(A c, Sigma); means, sds, correlation and KL as in ``check_linear_gaussian_fit``."""
    theta, c, A, Sigma = linear_gaussian_task(20_000, rng)
    net = MaskedAutoregressiveFlow(2, num_layers=2, hidden_units=(32, 32))
    losses = train_density(net, theta, c, steps=400)
    assert losses[-50:].mean() < losses[:10].mean()
    check_linear_gaussian_fit(net, A, Sigma, rng)


def test_save_load_keeps_permutations_and_seeded_samples(rng, tmp_path):
    """In-process reload (the contract suite reloads every registry case in a fresh process)."""
    net, x, c = make(3, 2, rng, num_layers=3, permutation="fixed")
    holder = NetworkHolder(net)
    holder((x, c))
    holder.save(tmp_path / "maf.keras")
    loaded = keras.saving.load_model(tmp_path / "maf.keras").net
    for got, expected in zip(loaded.permutation_layers, net.permutation_layers):
        np.testing.assert_array_equal(got.permutation.numpy(), expected.permutation.numpy())
    for got, expected in zip(loaded(x, c), net(x, c)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(loaded.sample(4, c, seed=5), net.sample(4, c, seed=5))


@pytest.mark.parametrize("condition_dim", [None, 2])
def test_spline_transform_round_trip_log_det_and_triangular_jacobian(condition_dim, rng):
    spline = RationalQuadraticSpline(bins=6)
    net, x, c = make(3, condition_dim, rng, transform=spline, permutation="fixed", seed=2)
    assert net.mades[0].params_per_dim == spline.params_per_dim == 17
    z, log_det = net(x, c)
    np.testing.assert_allclose(net.inverse(z, c), x, atol=1e-4)
    _, autodiff = np.linalg.slogdet(jacobian(net, x, c))
    np.testing.assert_allclose(log_det, autodiff, atol=1e-4)
    one_layer, x, c = make(4, condition_dim, rng, num_layers=1, transform=spline)
    assert np.all(jacobian(one_layer, x, c)[:, np.triu(np.ones((4, 4), bool), k=1)] == 0.0)


def test_transform_is_part_of_the_config():
    net = MaskedAutoregressiveFlow(2, num_layers=2, hidden_units=(8,), transform=RationalQuadraticSpline(bins=4))
    assert_config_round_trip(net)
    assert net.get_config()["transform"]["config"] == {"bins": 4, "default_domain": [-5.0, 5.0, -5.0, 5.0]}
    default = MaskedAutoregressiveFlow(2)
    assert isinstance(default.transform, AffineTransform) and default.transform.soft_clamping == 1.9
    with pytest.raises(ArgumentError, match="transform must be a Transform"):
        MaskedAutoregressiveFlow(2, transform="affine")
