"""Small, fast building blocks for the amortizer and inference tests.

* :func:`train` - a minimal Adam training loop over an in-memory simulation dict, compiled
  with ``tf.function`` (the amortizer tests do not depend on the trainer).
* Simulators of the Gaussian models with known posteriors used across the tests.
* Factories of tiny networks of every inference-network type.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from amortflow.networks import DeepSet, InvertibleNetwork
from amortflow.networks.inference.maf import MaskedAutoregressiveFlow
from amortflow.networks.inference.mdn import MixtureDensityNetwork

TINY_COUPLING = {"dense_args": {"units": 32}, "num_dense": 2}


def _take(data, idx):
    if isinstance(data, Mapping):
        return {key: _take(value, idx) for key, value in data.items()}
    return None if data is None else data[idx]


def _num_rows(data) -> int:
    if isinstance(data, Mapping):
        return max(_num_rows(v) for v in data.values() if v is not None)
    return len(data)


def train(
    amortizer,
    data: Mapping,
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    seed: int = 0,
    compiled: bool = True,
):
    """Train ``amortizer`` for ``steps`` Adam steps on minibatches of ``data``; return the losses.

    ``compiled=False`` runs eagerly (cheaper than tracing for a handful of steps).
    """
    rng = np.random.default_rng(seed)
    n = _num_rows(data)
    amortizer.compute_loss(_take(data, np.arange(batch_size)))  # builds every weight eagerly
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    optimizer = keras.optimizers.Adam(schedule, clipnorm=1.0)
    optimizer.build(amortizer.trainable_variables)

    def step(batch):
        with tf.GradientTape() as tape:
            loss = amortizer.compute_loss(batch, training=True)
        grads = tape.gradient(loss, amortizer.trainable_variables)
        optimizer.apply_gradients(zip(grads, amortizer.trainable_variables))
        return loss

    if compiled:
        step = tf.function(step)
    losses = [float(step(_take(data, rng.integers(0, n, batch_size)))) for _ in range(steps)]
    return np.asarray(losses)


# --- conjugate Gaussian model: mu ~ N(0, I_D), x_n ~ N(mu, sigma^2 I_D), n = 1..N ----------
def simulate_gaussian(n_sims: int, n_obs: int, dim: int = 1, sigma: float = 1.0, seed: int = 0):
    """``(mu (B, D), x (B, N, D))`` from the conjugate Gaussian model."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n_sims, dim))
    x = mu[:, None, :] + sigma * rng.normal(size=(n_sims, n_obs, dim))
    return mu.astype("float32"), x.astype("float32")


def gaussian_posterior(x_mean, n_obs: int, sigma: float = 1.0, prior_sd: float = 1.0):
    """Mean and sd of ``mu | x`` for the prior ``N(0, prior_sd^2)`` and ``n_obs`` observations with sd ``sigma``.

    Precision ``1/prior_sd^2 + n/sigma^2``; mean ``(n/sigma^2) x_mean / precision``.
    """
    precision = 1.0 / prior_sd**2 + n_obs / sigma**2
    return (n_obs / sigma**2) * np.asarray(x_mean) / precision, np.sqrt(1.0 / precision)


# --- networks ------------------------------------------------------------------------
def tiny_flow(num_params: int, layers: int = 2, coupling_settings=TINY_COUPLING, **kwargs) -> InvertibleNetwork:
    return InvertibleNetwork(num_params, num_coupling_layers=layers, coupling_settings=coupling_settings, **kwargs)


def tiny_deep_set(summary_dim: int = 4) -> DeepSet:
    args = {"units": 16}
    return DeepSet(summary_dim=summary_dim, num_equiv=1, dense_s1_args=args, dense_s2_args=args, dense_s3_args=args)


#: Factories ``num_params -> network`` of every inference-network type an amortizer accepts.
INFERENCE_NETWORK_FACTORIES = {
    "invertible_affine": lambda d: tiny_flow(d),
    "invertible_spline": lambda d: tiny_flow(
        d, coupling_design="spline", coupling_settings={**TINY_COUPLING, "bins": 8}
    ),
    "maf": lambda d: MaskedAutoregressiveFlow(d, num_layers=2, hidden_units=(16, 16)),
    "mdn": lambda d: MixtureDensityNetwork(d, num_components=3, hidden_units=(16,)),
}
