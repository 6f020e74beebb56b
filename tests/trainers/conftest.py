"""Fixtures of the trainer tests: a conjugate Gaussian model and tiny amortizers.

Model: ``theta ~ N(0, I_2)``, ``x_n | theta ~ N(theta, I_2)`` for ``n = 1..N_OBS``, so the
posterior is ``N(sum(x) / (N_OBS + 1), I / (N_OBS + 1))``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import amortflow as af

N_OBS = 10
D = 2


def prior_fun(batch_size, rng):
    return rng.normal(size=(batch_size, D))


def simulator_fun(theta, rng):
    return theta[:, None, :] + rng.normal(size=(theta.shape[0], N_OBS, D))


def make_model() -> af.simulation.GenerativeModel:
    """The conjugate Gaussian generative model (batched functions, no pilot run)."""
    return af.simulation.GenerativeModel(
        prior_fun, simulator_fun, prior_is_batched=True, simulator_is_batched=True, skip_test=True, name="gauss"
    )


def make_amortizer(num_params: int = D) -> af.amortizers.AmortizedPosterior:
    """A tiny real amortizer: 2 affine couplings of 16 units, a one-layer DeepSet."""
    inference = af.networks.InvertibleNetwork(
        num_params=num_params, num_coupling_layers=2, coupling_settings={"dense_args": {"units": 16}, "num_dense": 1}
    )
    summary = af.networks.DeepSet(
        summary_dim=4, num_equiv=0, num_dense_s1=1, num_dense_s2=1,
        dense_s1_args={"units": 16}, dense_s2_args={"units": 16},
    )  # fmt: skip
    return af.amortizers.AmortizedPosterior(inference, summary)


@keras.saving.register_keras_serializable(package="amortflow_tests")
class GaussianMeanAmortizer(keras.Model):
    """The smallest amortizer: ``q(theta | x) = N(W mean(x) + b, diag(exp(2 s)))``.

    Fast to trace, for tests of the trainer's mechanics (NaN handling, shapes, XLA fallback).
    """

    def __init__(self, num_params: int = D, **kwargs):
        super().__init__(**kwargs)
        self.num_params = num_params
        self.head = keras.layers.Dense(num_params, name="head")
        self.log_scale = self.add_weight(shape=(num_params,), initializer="zeros", name="log_scale")

    def compute_loss(self, input_dict, training=False):
        mean = self.head(tf.reduce_mean(input_dict["summary_conditions"], axis=1))
        z = (input_dict["parameters"] - mean) * tf.exp(-self.log_scale)
        return tf.reduce_mean(0.5 * tf.reduce_sum(z**2, axis=-1) + tf.reduce_sum(self.log_scale))

    def default_configurator(self, generative_model=None):
        return af.configuration.DefaultPosteriorConfigurator()

    def get_config(self):
        return {**super().get_config(), "num_params": self.num_params}


@pytest.fixture
def model() -> af.simulation.GenerativeModel:
    return make_model()


@pytest.fixture
def quiet_settings() -> dict:
    """Trainer settings for tests: no bar, plain graph (no XLA compile time), fixed seed."""
    return {"progress": False, "jit_compile": False, "seed": 0}


def posterior_nll_bounds(n_obs: int = N_OBS, dim: int = D) -> tuple[float, float]:
    """Expected NLL (nats) of the prior and of the exact posterior for the conjugate model.

    ``E[-log N(theta; m, s^2 I)] = dim/2 * log(2 pi e s^2)`` with ``s^2 = 1`` (prior) and
    ``s^2 = 1 / (n_obs + 1)`` (posterior).
    """
    prior = 0.5 * dim * np.log(2 * np.pi * np.e)
    return prior, prior - 0.5 * dim * np.log(n_obs + 1)
