"""Unit checks of the building blocks of coupling flows: transforms, couplings, ActNorm, permutations."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from amortflow.networks.inference import (
    ActNorm,
    AffineTransform,
    ConditionerMLP,
    Coupling,
    FixedPermutation,
    LearnablePermutation,
    RationalQuadraticSpline,
)
from tests.support import assert_config_round_trip


def random_params(transform, batch_size=64, dim=3, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(scale * rng.normal(size=(batch_size, dim, transform.params_per_dim)), tf.float32)


@pytest.mark.parametrize("transform", [AffineTransform(), AffineTransform(None), RationalQuadraticSpline(bins=7)])
def test_transform_inverse_and_elementwise_log_det(transform):
    x = tf.constant(np.random.default_rng(1).uniform(-6, 6, size=(64, 3)), tf.float32)  # inside and outside the box
    params = random_params(transform)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, log_det = transform.forward(x, params)
    # Elementwise maps: log|det J| = sum_i log(dy_i/dx_i), and each row's y depends only on its x.
    np.testing.assert_allclose(log_det.numpy(), np.log(tape.gradient(y, x).numpy()).sum(axis=1), atol=1e-4)
    x_back, inverse_log_det = transform.inverse(y, params)
    np.testing.assert_allclose(x_back.numpy(), x.numpy(), atol=1e-4)
    np.testing.assert_allclose(inverse_log_det.numpy(), -log_det.numpy(), atol=1e-4)
    assert type(transform).from_config(transform.get_config()).get_config() == transform.get_config()


def test_affine_soft_clamping_bounds_the_log_scale():
    transform = AffineTransform(soft_clamping=1.9)
    params = tf.constant([[[1e4, 0.0], [-1e4, 0.0]]])
    _, log_det = transform.forward(tf.zeros((1, 2)), params)
    assert abs(float(log_det[0])) < 1e-3  # +1.9 and -1.9 cancel
    _, log_det = transform.forward(tf.zeros((1, 1)), params[:, :1])
    assert 1.89 < float(log_det[0]) < 1.9


def test_spline_with_zero_parameters_is_the_identity():
    spline = RationalQuadraticSpline(bins=5)
    x = tf.constant(np.linspace(-8, 8, 41).reshape(-1, 1), tf.float32)
    y, log_det = spline.forward(x, tf.zeros((41, 1, spline.params_per_dim)))
    np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_allclose(log_det.numpy(), 0.0, atol=1e-5)


def test_spline_is_continuous_at_the_box_edges_and_finite_far_outside():
    spline = RationalQuadraticSpline(bins=6, default_domain=(-3.0, 3.0, -3.0, 3.0))
    eps = 1e-4
    x = tf.constant([[-3.0 - eps, -3.0 + eps, 3.0 - eps, 3.0 + eps, -50.0, 50.0]], tf.float32)
    params = random_params(spline, batch_size=1, dim=6, scale=2.0, seed=3)
    with tf.GradientTape() as tape:
        tape.watch([x, params])
        y, log_det = spline.forward(x, params)
        loss = tf.reduce_sum(y) + tf.reduce_sum(log_det)
    for grad in tape.gradient(loss, [x, params]):
        assert np.all(np.isfinite(grad.numpy()))
    y = y.numpy()[0]
    # Slopes near the edges are bounded, so an input step of 2e-4 moves the output by well under 1e-2.
    assert abs(y[1] - y[0]) < 1e-2 and abs(y[3] - y[2]) < 1e-2  # slope-1 tails join the box continuously
    np.testing.assert_array_equal(y[4:], [-50.0, 50.0])
    x_back, _ = spline.inverse(tf.constant([[-50.0, 50.0, 0.0, 0.0, 0.0, 0.0]]), params)
    assert np.all(np.isfinite(x_back.numpy()))


@pytest.mark.parametrize("bad", [{"bins": 1}, {"default_domain": (1.0, -1.0, -1.0, 1.0)}, {"default_domain": (0, 1)}])
def test_spline_rejects_invalid_settings(bad):
    with pytest.raises(ValueError, match="bins|default_domain"):
        RationalQuadraticSpline(**bad)


@pytest.mark.parametrize("part, split", [("second", 1), ("first", 1), ("second", 0)])
def test_coupling_changes_only_the_transformed_part(part, split):
    dim = 3 if split else 1
    conditioner = ConditionerMLP(output_dim=2 * (dim - split if part == "second" else split), dense_args={"units": 8})
    layer = Coupling(AffineTransform(), conditioner, split=split, transformed_part=part)
    x = np.random.default_rng(4).normal(size=(5, dim)).astype("float32")
    condition = np.ones((5, 2), "float32")
    layer(x, condition)
    for weight in layer.trainable_weights:
        weight.assign(weight + 0.3)
    y, log_det = layer(x, condition)
    kept = slice(0, split) if part == "second" else slice(split, dim)
    changed = slice(split, dim) if part == "second" else slice(0, split)
    np.testing.assert_array_equal(y.numpy()[:, kept], x[:, kept])
    assert np.all(np.abs(y.numpy()[:, changed] - x[:, changed]) > 1e-3)
    np.testing.assert_allclose(layer(y, condition, inverse=True)[0].numpy(), x, atol=1e-5)
    assert_config_round_trip(layer)


def test_act_norm_with_statistics_standardises_and_reports_its_log_det():
    layer = ActNorm(initial_mean=[1.0, -2.0], initial_std=[2.0, 0.5])
    y, log_det = layer(np.array([[1.0, -2.0], [3.0, -1.5]], "float32"))
    np.testing.assert_allclose(y.numpy(), [[0.0, 0.0], [1.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(log_det.numpy(), [-np.log(2.0) - np.log(0.5)] * 2, atol=1e-6)
    assert_config_round_trip(layer)
    with pytest.raises(ValueError, match="both"):
        ActNorm(initial_mean=[0.0])


def test_fixed_permutation_is_a_seeded_permutation():
    x = np.arange(12, dtype="float32").reshape(2, 6)
    layer = FixedPermutation(seed=5)
    y, log_det = layer(x)
    np.testing.assert_array_equal(np.sort(y.numpy(), axis=1), x)
    np.testing.assert_array_equal(log_det.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(layer(y, inverse=True)[0].numpy(), x)
    np.testing.assert_array_equal(FixedPermutation(seed=5)(x)[0].numpy(), y.numpy())


def test_learnable_permutation_starts_orthogonal_and_has_an_exact_log_det():
    layer = LearnablePermutation(seed=6)
    dim = 4
    layer(np.zeros((1, dim), "float32"))
    weight = layer(np.eye(dim, dtype="float32"))[0].numpy().T  # rows of y = W e_i -> columns of W
    np.testing.assert_allclose(weight @ weight.T, np.eye(dim), atol=1e-5)
    rng = np.random.default_rng(6)
    for variable in layer.trainable_weights:
        variable.assign(variable.numpy() + 0.3 * rng.standard_normal(variable.shape).astype("float32"))
    weight = layer(np.eye(dim, dtype="float32"))[0].numpy().T
    x = rng.normal(size=(7, dim)).astype("float32")
    y, log_det = layer(x)
    np.testing.assert_allclose(y.numpy(), x @ weight.T, atol=1e-5)
    np.testing.assert_allclose(log_det.numpy(), np.linalg.slogdet(weight)[1], atol=1e-5)
    np.testing.assert_allclose(layer(y, inverse=True)[0].numpy(), x, atol=1e-4)
