"""InvertibleNetwork specifics beyond the registry-wide contract suite (test_inference_contract.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks import InvertibleNetwork
from amortflow.networks.inference import AffineTransform, RationalQuadraticSpline

TINY = {"dense_args": {"units": 8}, "num_dense": 1}


def perturb(net, seed=0, scale=0.1):
    rng = np.random.default_rng(seed)
    for weight in net.trainable_weights:
        weight.assign(weight.numpy() + scale * rng.standard_normal(weight.shape).astype("float32"))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"num_params": 0}, ArgumentError, "num_params"),
        ({"num_coupling_layers": 0}, ArgumentError, "num_coupling_layers"),
        ({"coupling_design": "glow"}, ArgumentError, "coupling_design"),
        ({"permutation": "random"}, ArgumentError, "permutation"),
        ({"coupling_settings": {"unit": 3}}, ArgumentError, "'unit'"),
        ({"coupling_design": "affine", "coupling_settings": {"bins": 3}}, ArgumentError, "'bins'"),
        ({"coupling_design": "interleaved", "coupling_settings": {"affine": {"bins": 3}}}, ArgumentError, "bins"),
        ({"coupling_settings": {"dense_args": {"unitz": 3}}}, ArgumentError, "unitz"),
        ({"act_norm_init": np.ones((10, 3))}, ShapeError, "(N >= 2, 2)"),
        ({"act_norm_init": np.ones((10, 2))}, ArgumentError, "standard deviation"),
        ({"soft_flow_bounds": (0.1, 0.01)}, ArgumentError, "soft_flow_bounds"),
    ],
)
def test_rejects_invalid_arguments_naming_them(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        InvertibleNetwork(**{"num_params": 2, **kwargs})


def test_rejects_inputs_of_the_wrong_shape():
    net = InvertibleNetwork(2, num_coupling_layers=1, coupling_settings=TINY)
    net(np.zeros((4, 2), "float32"), np.zeros((4, 3), "float32"))
    with pytest.raises(ShapeError, match=r"\(B, 2\), received shape \(4, 3\)"):
        net(np.zeros((4, 3), "float32"), np.zeros((4, 3), "float32"))
    with pytest.raises(ShapeError, match=r"condition shape \(B, 3\), received None"):
        net(np.zeros((4, 2), "float32"))
    with pytest.raises(ShapeError, match=r"\(B, 3\), received shape \(4, 5\)"):
        net(np.zeros((4, 2), "float32"), np.zeros((4, 5), "float32"))


@pytest.mark.parametrize("design", ["affine", "spline", "interleaved"])
def test_a_fresh_network_is_the_identity(design):
    """Zero-initialised conditioner outputs make every coupling start as the identity."""
    net = InvertibleNetwork(3, num_coupling_layers=2, coupling_design=design, coupling_settings=TINY, permutation=None)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    z, log_det_J = net(x, np.ones((6, 2), "float32"))
    np.testing.assert_allclose(z.numpy(), x, atol=1e-6)
    np.testing.assert_allclose(log_det_J.numpy(), 0.0, atol=1e-6)


def test_act_norm_init_makes_the_first_layer_standardise_the_targets():
    rng = np.random.default_rng(1)
    data = rng.normal(loc=[3.0, -1.0], scale=[2.0, 0.5], size=(500, 2)).astype("float32")
    net = InvertibleNetwork(2, num_coupling_layers=2, coupling_settings=TINY, permutation=None, act_norm_init=data)
    z, log_det_J = net(data)
    # The rest of a fresh network is the identity, so z is the standardised data.
    np.testing.assert_allclose(z.numpy().mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.numpy().std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(log_det_J.numpy(), -np.log(data.std(axis=0)).sum(), rtol=1e-5)
    assert np.asarray(net.get_config()["act_norm_init"]).shape == (500, 2)


def test_soft_flow_noise_in_training_only_with_scale_as_extra_condition():
    low, high = 0.05, 0.2
    net = InvertibleNetwork(
        2, num_coupling_layers=1, coupling_settings=TINY, permutation=None, use_act_norm=False,
        use_soft_flow=True, soft_flow_bounds=(low, high),
    )
    n = 20000
    x = np.zeros((n, 2), "float32")
    condition = np.zeros((n, 3), "float32")
    z_eval, _ = net(x, condition)
    np.testing.assert_array_equal(z_eval.numpy(), x)  # no noise at inference; fresh flow is the identity
    noise = net(x, condition, training=True)[0].numpy().ravel()
    # noise = c * eps with c ~ U(low, high), eps ~ N(0, 1): E[noise^2] = E[c^2] = (high^3 - low^3) / (3 (high - low)).
    # Var(noise^2) = E[c^4] E[eps^4] - E[c^2]^2 = 3 E[c^4] - E[c^2]^2, E[c^4] = (high^5 - low^5) / (5 (high - low));
    # the mean of the 2n values of noise^2 is then within 4 standard errors of E[c^2].
    m2 = (high**3 - low**3) / (3 * (high - low))
    m4 = (high**5 - low**5) / (5 * (high - low))
    assert abs(np.mean(noise**2) - m2) < 4 * np.sqrt((3 * m4 - m2**2) / noise.size)
    assert not np.array_equal(noise, net(x, condition, training=True)[0].numpy().ravel())
    # The conditioner sees [x_a, condition, c]: 1 + 3 + 1 inputs.
    assert net.couplings[0].conditioner.kernels[0].shape[0] == 5


def test_spline_flow_is_finite_and_identity_far_outside_the_domain():
    # Seeded: the initial weights and permutations otherwise depend on what ran before in the
    # session (an extra registry case earlier in the run once gave a float64 round trip off by 6e-5).
    keras.utils.set_random_seed(0)
    x = np.array([[50.0, -50.0], [-50.0, 50.0], [50.0, 0.5], [-50.0, -0.2]])
    condition = np.random.default_rng(2).normal(size=(4, 3))
    for dtype in ("float32", "float64"):
        net = InvertibleNetwork(2, num_coupling_layers=2, coupling_design="spline", coupling_settings=TINY, dtype=dtype)
        inputs = tf.constant(x, dtype)
        net(inputs, condition.astype(dtype))
        perturb(net)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            z, log_det_J = net(inputs, condition.astype(dtype))
            loss = tf.reduce_sum(z) + tf.reduce_sum(log_det_J)
        for grad in [tape.gradient(loss, inputs)] + tape.gradient(loss, net.trainable_weights):
            assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy()))
        assert np.all(np.isfinite(z.numpy())) and np.all(np.isfinite(log_det_J.numpy()))
        assert np.all(np.isfinite(net.inverse(inputs, condition.astype(dtype)).numpy()))
    # Inputs at +-50 drive the conditioners to extreme spline parameters, where float32 round trips
    # lose digits (conditioning, not the maths): in float64 the round trip is exact.
    np.testing.assert_allclose(net.inverse(z, condition).numpy(), x, atol=1e-8)
    # Without ActNorm and permutations every layer is the identity outside the box: z = x there.
    plain = InvertibleNetwork(
        2, num_coupling_layers=2, coupling_design="spline", coupling_settings=TINY, permutation=None, use_act_norm=False
    )
    plain(x[:2].astype("float32"), condition[:2].astype("float32"))
    perturb(plain)
    z, log_det_J = plain(x[:2].astype("float32"), condition[:2].astype("float32"))
    np.testing.assert_array_equal(z.numpy(), x[:2])
    np.testing.assert_array_equal(log_det_J.numpy(), 0.0)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_compiled_regimes_match_eager(jit_compile):
    """Forward, inverse and gradients in tf.function (with and without XLA) equal the eager results."""
    keras.utils.set_random_seed(3)
    net = InvertibleNetwork(
        3, num_coupling_layers=1, coupling_design="spline", coupling_settings=TINY,
        permutation="learnable", use_soft_flow=True,
    )
    rng = np.random.default_rng(3)
    x, condition = rng.normal(size=(9, 3)).astype("float32"), rng.normal(size=(9, 2)).astype("float32")
    net(x, condition)
    perturb(net)

    def evaluate(x, c):
        with tf.GradientTape() as tape:
            z, log_det_J = net(x, c)
            loss = -tf.reduce_mean(net.log_prob(x, c))
        return [z, log_det_J, net.inverse(z, c), loss] + tape.gradient(loss, net.trainable_variables)

    compiled = tf.function(evaluate, jit_compile=jit_compile)
    for got, want in zip(compiled(x, condition), evaluate(x, condition)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    # The training path (SoftFlow noise from a seed generator) compiles too.
    train_loss = tf.function(lambda x, c: -tf.reduce_mean(net.log_prob(x, c, training=True)), jit_compile=jit_compile)
    assert np.isfinite(train_loss(x, condition).numpy())


def test_batch_dimension_is_dynamic_in_a_traced_function():
    net = InvertibleNetwork(2, num_coupling_layers=1, coupling_design="spline", coupling_settings=TINY)
    net(np.zeros((2, 2), "float32"), np.zeros((2, 4), "float32"))
    spec = [tf.TensorSpec((None, 2), tf.float32), tf.TensorSpec((None, 4), tf.float32)]
    forward = tf.function(lambda x, c: net(x, c), input_signature=spec)
    for batch_size in (3, 11, 1):
        z, log_det_J = forward(tf.zeros((batch_size, 2)), tf.zeros((batch_size, 4)))
        assert z.shape == (batch_size, 2) and log_det_J.shape == (batch_size,)
    assert forward.experimental_get_tracing_count() == 1


def test_interleaved_alternates_affine_and_spline_and_settings_are_merged():
    settings = {"affine": {"soft_clamping": 1.2, "dense_args": {"units": 6}}, "spline": {"bins": 5, "num_dense": 3}}
    net = InvertibleNetwork(4, num_coupling_layers=3, coupling_design="interleaved", coupling_settings=settings)
    net(np.zeros((2, 4), "float32"))
    kinds = [type(coupling.transform) for coupling in net.couplings]
    assert kinds == [AffineTransform] * 2 + [RationalQuadraticSpline] * 2 + [AffineTransform] * 2
    affine, spline = net.couplings[0], net.couplings[2]
    assert affine.transform.soft_clamping == 1.2 and spline.transform.bins == 5
    assert affine.conditioner.kernels[0].shape == (2, 6) and len(affine.conditioner.kernels) == 3  # num_dense 2 + out
    assert spline.conditioner.kernels[0].shape == (2, 128) and len(spline.conditioner.kernels) == 4
    assert spline.conditioner.kernels[-1].shape == (128, 2 * (3 * 5 - 1))


def test_kernel_regularizer_adds_losses():
    settings = {"dense_args": {"units": 4, "kernel_regularizer": "l2"}}
    net = InvertibleNetwork(2, num_coupling_layers=1, coupling_settings=settings)
    net(np.ones((3, 2), "float32"))
    perturb(net)
    assert len(net.losses) == 2 * 3  # two couplings x (hidden kernels + output kernel)
    assert float(tf.add_n(net.losses)) > 0.0


def test_sampling_with_an_int_seed_is_repeatable():
    net = InvertibleNetwork(2, num_coupling_layers=1, coupling_settings=TINY)
    condition = np.ones((3, 2), "float32")
    np.testing.assert_array_equal(net.sample(4, condition, seed=5).numpy(), net.sample(4, condition, seed=5).numpy())
