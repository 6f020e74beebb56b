"""Registry entries for the masked autoregressive flow and the mixture density network.

Factories take ``(num_params, condition_dim)`` (``condition_dim`` None: unconditional) and
return an unbuilt network; the contract suite in ``test_inference_contract.py`` runs them for
several ``num_params`` (including 1) with and without a condition. Networks are tiny so the
suite stays fast.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from amortflow.networks.inference import RationalQuadraticSpline
from amortflow.networks.inference.maf import MaskedAutoregressiveFlow
from amortflow.networks.inference.mdn import MixtureDensityNetwork
from tests.networks.registry import register_inference


@register_inference("maf_reverse")
def maf_reverse(num_params, condition_dim):
    return MaskedAutoregressiveFlow(num_params, num_layers=2, hidden_units=(16, 16), permutation="reverse")


@register_inference("maf_fixed")
def maf_fixed(num_params, condition_dim):
    return MaskedAutoregressiveFlow(num_params, num_layers=3, hidden_units=(16,), permutation="fixed", seed=3)


@register_inference("maf_no_permutation")
def maf_no_permutation(num_params, condition_dim):
    return MaskedAutoregressiveFlow(num_params, num_layers=2, hidden_units=(8, 8), activation="tanh", permutation=None)


@register_inference("maf_spline")
def maf_spline(num_params, condition_dim):
    return MaskedAutoregressiveFlow(num_params, num_layers=2, hidden_units=(16,), permutation="reverse",
                                    transform=RationalQuadraticSpline(bins=5))  # fmt: skip


@register_inference("mdn_1_component")
def mdn_1_component(num_params, condition_dim):
    return MixtureDensityNetwork(num_params, num_components=1, hidden_units=(16,))


@register_inference("mdn_3_components")
def mdn_3_components(num_params, condition_dim):
    return MixtureDensityNetwork(num_params, num_components=3, hidden_units=(16, 16), activation="swish")


# --- helpers shared by test_maf.py, test_mdn.py and test_classifiers.py ------------------------

@keras.saving.register_keras_serializable(package="amortflow_tests")
class NetworkHolder(keras.Model):
    """A minimal amortizer-like model holding a network as an attribute (the pattern amortizers use)."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net

    def call(self, inputs):
        return self.net(*inputs)

    def get_config(self):
        return {"net": keras.saving.serialize_keras_object(self.net)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["net"]))


def linear_gaussian_task(n: int, rng: np.random.Generator):
    """Draws of ``c ~ N(0, I_2)`` and ``theta | c ~ N(A c, Sigma)``; returns ``(theta, c, A, Sigma)``.

    ``Sigma`` has standard deviations (0.5, 0.3) and correlation 0.6.
    """
    A = np.array([[1.0, -0.5], [0.3, 0.8]])
    sd, rho = np.array([0.5, 0.3]), 0.6
    Sigma = np.outer(sd, sd) * np.array([[1.0, rho], [rho, 1.0]])
    c = rng.normal(size=(n, 2))
    theta = c @ A.T + rng.multivariate_normal(np.zeros(2), Sigma, size=n)
    return theta.astype("float32"), c.astype("float32"), A, Sigma


def train_density(net, theta, condition, steps: int, batch_size: int = 256, learning_rate: float = 5e-3, seed=0):
    """Minimise the negative log density over ``steps`` minibatches (cosine-decayed Adam); returns the losses."""
    rng = np.random.default_rng(seed)
    net.log_prob(theta[:2], None if condition is None else condition[:2])  # build before tracing
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))

    @tf.function
    def step(x, c):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(net.log_prob(x, c, training=True))
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    losses = []
    for _ in range(steps):
        idx = rng.integers(0, len(theta), size=batch_size)
        losses.append(float(step(theta[idx], None if condition is None else condition[idx])))
    return np.array(losses)


def check_linear_gaussian_fit(net, A, Sigma, rng, n: int = 4000) -> None:
    """Compare a density network fitted to ``linear_gaussian_task`` with the analytic conditional.

    Tolerances: the fit must reach KL(p || q) <= 0.03 nats; a mean error of k sd costs
    k^2 / 2 nats and an sd ratio r costs about (r - 1)^2 nats, so we allow 0.15 sd in the
    means and 12 % in the sds, plus 4 Monte Carlo standard errors of the sample estimates
    (sd / sqrt(N) for means, 1 / sqrt(2N) for sd ratios, (1 - rho^2) / sqrt(N) for rho).
    """
    sd, rho = np.sqrt(np.diag(Sigma)), Sigma[0, 1] / np.sqrt(Sigma[0, 0] * Sigma[1, 1])
    conditions = np.array([[0.0, 0.0], [1.0, -1.0], [-1.0, 0.5]], "float32")
    draws = net.sample(n, conditions, seed=7).numpy()
    for cond, d in zip(conditions, draws):
        np.testing.assert_array_less(np.abs(d.mean(0) - A @ cond) / sd, 0.15 + 4 / np.sqrt(n))
        np.testing.assert_array_less(np.abs(d.std(0) / sd - 1), 0.12 + 4 / np.sqrt(2 * n))
        assert abs(np.corrcoef(d.T)[0, 1] - rho) < 0.1 + 4 * (1 - rho**2) / np.sqrt(n)
    # KL(p || q) = E_p[log p - log q] on fresh draws from the truth, within 4 standard errors.
    test_theta, test_c, _, _ = linear_gaussian_task(n, rng)
    diff = test_theta - test_c @ A.T
    log_p = -0.5 * np.einsum("bi,ij,bj->b", diff, np.linalg.inv(Sigma), diff) - 0.5 * np.log(
        np.linalg.det(2 * np.pi * Sigma)
    )
    gap = log_p - net.log_prob(test_theta, test_c).numpy()
    assert gap.mean() < 0.03 + 4 * gap.std() / np.sqrt(n)
