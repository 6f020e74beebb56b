"""AmortizedLikelihood and AmortizedPosteriorLikelihood: i.i.d. flattening, shapes, joint loss, errors.

The known-answer check of a trained likelihood (NLE + MCMC against the analytic posterior)
lives in tests/inference/test_mcmc.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras.saving import serialize_keras_object as keras_serialize

import amortflow as af
from amortflow.amortizers import AmortizedLikelihood, AmortizedPosterior, AmortizedPosteriorLikelihood
from amortflow.exceptions import ArgumentError, ConfigurationError, ShapeError
from tests.amortizers.helpers import INFERENCE_NETWORK_FACTORIES, simulate_gaussian, tiny_deep_set, tiny_flow


def likelihood_inputs(n_sims=6, n_obs=5, dim=2, seed=0):
    mu, x = simulate_gaussian(n_sims, n_obs, dim=dim, seed=seed)
    return {"observables": x, "conditions": mu}


def test_iid_sets_are_flattened_to_one_density_per_observation():
    af.set_seed(0)
    amortizer = AmortizedLikelihood(tiny_flow(2))
    conf = likelihood_inputs()
    per_set = amortizer.log_likelihood(conf)
    assert per_set.shape == (6,)
    # log q(x | theta) = sum_n log q(x_n | theta), each x_n with its own data set's theta.
    rows = conf["observables"].reshape(-1, 2)
    conditions = np.repeat(conf["conditions"], 5, axis=0)
    per_obs = amortizer.surrogate_net.log_prob(rows, conditions).numpy().reshape(6, 5)
    np.testing.assert_allclose(per_set, per_obs.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(float(amortizer.compute_loss(conf)), -per_obs.mean(), rtol=1e-5)
    # Fixed-size data (B, d): one density per data set; a set of one observation gives the same.
    single = {"observables": conf["observables"][:, 0], "conditions": conf["conditions"]}
    np.testing.assert_allclose(amortizer.log_likelihood(single), per_obs[:, 0], rtol=1e-5)
    z, log_det_J = amortizer(conf)
    assert z.shape == (30, 2) and log_det_J.shape == (30,)


def test_synthetic_data_shapes_and_seeds():
    af.set_seed(1)
    amortizer = AmortizedLikelihood(tiny_flow(3))
    conditions = np.zeros((4, 2), "float32")
    amortizer.log_likelihood({"observables": np.zeros((4, 3), "float32"), "conditions": conditions})
    data = amortizer.sample(conditions, n_samples=50, seed=3)
    assert data.shape == (4, 50, 3)
    np.testing.assert_array_equal(data, amortizer.sample({"conditions": conditions}, n_samples=50, seed=3))
    assert amortizer.sample(conditions[:1], n_samples=1).shape == (1, 1, 3)


@pytest.mark.parametrize("name", sorted(INFERENCE_NETWORK_FACTORIES))
def test_every_inference_network_type_works_as_surrogate(name):
    af.set_seed(2)
    amortizer = AmortizedLikelihood(INFERENCE_NETWORK_FACTORIES[name](2))
    conf = likelihood_inputs(seed=2)
    with tf.GradientTape() as tape:
        loss = amortizer.compute_loss(conf, training=True)
    grads = tape.gradient(loss, amortizer.trainable_variables)
    assert np.isfinite(float(loss)) and all(g is not None for g in grads)
    assert amortizer.log_likelihood(conf).shape == (6,)
    assert amortizer.sample(conf["conditions"], n_samples=4, seed=0).shape == (6, 4, 2)


def test_likelihood_input_errors():
    amortizer = AmortizedLikelihood(tiny_flow(2))
    with pytest.raises(ShapeError, match=r"\(B, N, 2\)"):
        amortizer.compute_loss({"observables": np.zeros((3, 5, 4)), "conditions": np.zeros((3, 2))})
    with pytest.raises(ShapeError, match="same number of data sets"):
        amortizer.compute_loss({"observables": np.zeros((3, 5, 2)), "conditions": np.zeros((4, 2))})
    with pytest.raises(ConfigurationError, match="conditions"):
        amortizer.compute_loss({"observables": np.zeros((3, 5, 2))})
    assert isinstance(amortizer.default_configurator(), af.configuration.DefaultLikelihoodConfigurator)


def test_a_sampler_without_density_is_refused_as_likelihood_surrogate():
    # a consistency model only samples; the error comes at construction, not after training
    net = af.networks.ConsistencyModel(num_params=2, dense_args={"units": 8})
    with pytest.raises(ArgumentError, match="tractable density.*ConsistencyModel.*has_density=False"):
        AmortizedLikelihood(net)
    with pytest.raises(ArgumentError, match="ConsistencyModel"):
        AmortizedLikelihood.from_config({"surrogate_net": keras_serialize(net)})
    # flow matching has a density (integrated divergence), so it is accepted
    assert AmortizedLikelihood(af.networks.FlowMatching(num_params=2, dense_args={"units": 8})).data_dim == 2


def test_joint_amortizer_sums_losses_and_answers_both_questions():
    af.set_seed(3)
    mu, x = simulate_gaussian(8, 5, dim=2, seed=3)
    posterior = AmortizedPosterior(tiny_flow(2), tiny_deep_set())
    likelihood = AmortizedLikelihood(tiny_flow(2))
    joint = AmortizedPosteriorLikelihood(posterior, likelihood)
    conf = {
        "posterior_inputs": {"parameters": mu, "summary_conditions": x, "direct_conditions": None},
        "likelihood_inputs": {"observables": x, "conditions": mu},
    }
    total = float(joint.compute_loss(conf))
    parts = float(posterior.compute_loss(conf["posterior_inputs"]))
    parts += float(likelihood.compute_loss(conf["likelihood_inputs"]))
    np.testing.assert_allclose(total, parts, rtol=1e-6)
    assert joint.summary_net is posterior.summary_net
    assert joint.sample_parameters(conf, n_samples=5, seed=0).shape == (8, 5, 2)
    assert joint.sample_data(conf, n_samples=7, seed=0).shape == (8, 7, 2)
    assert joint.sample_data(mu, n_samples=7).shape == (8, 7, 2)
    np.testing.assert_allclose(joint.log_posterior(conf), posterior.log_posterior(conf["posterior_inputs"]))
    np.testing.assert_allclose(joint.log_likelihood(conf), likelihood.log_likelihood(conf["likelihood_inputs"]))
    assert set(joint.log_prob(conf)) == {"log_posterior", "log_likelihood"}
    (z_post, _), (z_lik, _) = joint(conf)
    assert z_post.shape == (8, 2) and z_lik.shape == (40, 2)
    assert isinstance(joint.default_configurator(), af.configuration.DefaultJointConfigurator)
    with pytest.raises(ArgumentError, match="AmortizedLikelihood"):
        AmortizedPosteriorLikelihood(posterior, posterior)
