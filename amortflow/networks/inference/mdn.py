"""Conditional Gaussian mixture density network with full covariances.

``q(theta | c) = sum_k pi_k(c) N(theta; mu_k(c), L_k(c) L_k(c)^T)``

with mixture weights ``pi = softmax(logits)``, and each ``L_k`` lower triangular with a positive
diagonal (``softplus`` plus a floor), so every covariance is valid. The density is exact
(``logsumexp`` over components) and sampling draws a component, then ``mu_k + L_k eps``.

References
----------
Bishop (1994), "Mixture Density Networks", Technical report NCRG/94/004, Aston University.
Papamakarios & Murray (2016), "Fast epsilon-free inference of simulation models with Bayesian
conditional density estimation", NeurIPS (MDNs for amortized posterior estimation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.networks.inference.base import InferenceNetwork

# softplus(x + _SOFTPLUS_INV_ONE) == 1 at x == 0, so a fresh network has unit scales.
_SOFTPLUS_INV_ONE = math.log(math.e - 1.0)


def split_seed(seed):
    """Return two seeds for two independent draws from one ``seed`` (int, SeedGenerator or None)."""
    if isinstance(seed, int):
        return seed, seed + 1
    return seed, seed  # a SeedGenerator advances itself; None uses the global generator


@keras.saving.register_keras_serializable(package="amortflow")
class MixtureDensityNetwork(InferenceNetwork):
    """Gaussian mixture over ``num_params`` targets whose parameters are an MLP of the condition.

    Without a condition the mixture parameters are plain trainable weights (unconditional density
    estimation).

    Parameters
    ----------
    num_params : int
        Dimension ``D`` of the targets.
    num_components : int, default 5
        Number of mixture components ``K``.
    hidden_units : sequence of int, default (64, 64)
        Widths of the MLP mapping the condition to the mixture parameters.
    activation : str, default "relu"
        Activation of the hidden layers.
    min_scale : float, default 1e-4
        Floor added to each Cholesky diagonal entry, so no component collapses to a point.

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks.inference.mdn import MixtureDensityNetwork
    >>> net = MixtureDensityNetwork(num_params=2, num_components=3, hidden_units=(32,))
    >>> tuple(net.log_prob(np.zeros((4, 2), "float32"), np.ones((4, 5), "float32")).shape)
    (4,)
    >>> tuple(net.sample(10, np.ones((4, 5), "float32"), seed=1).shape)
    (4, 10, 2)
    """

    def __init__(
        self,
        num_params: int,
        num_components: int = 5,
        hidden_units: Sequence[int] = (64, 64),
        activation: str = "relu",
        min_scale: float = 1e-4,
        **kwargs,
    ):
        super().__init__(num_params, **kwargs)
        if self.num_params < 1:
            raise ArgumentError(f"MixtureDensityNetwork needs num_params >= 1, received {num_params!r}.")
        if int(num_components) < 1:
            raise ArgumentError(f"MixtureDensityNetwork needs num_components >= 1, received {num_components!r}.")
        if not min_scale >= 0:
            raise ArgumentError(f"min_scale must be >= 0, received {min_scale!r}.")
        self.num_components = int(num_components)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.min_scale = float(min_scale)
        self.hidden_layers = [
            keras.layers.Dense(units, activation=activation, name=f"hidden_{j}")
            for j, units in enumerate(self.hidden_units)
        ]
        self.condition_dim = None

    def _outputs(self) -> list[tuple[str, int, object]]:
        """Name, size and bias initializer of each group of raw mixture parameters.

        Random means break the symmetry between components; zeros elsewhere give equal weights
        and unit covariances. One component needs no weights (they would get no gradient).
        """
        K, D = self.num_components, self.num_params
        outputs = [
            ("means", K * D, keras.initializers.RandomNormal(stddev=1.0)),
            ("cholesky", K * D * (D + 1) // 2, "zeros"),
        ]
        return ([("logits", K, "zeros")] if K > 1 else []) + outputs

    def build(self, targets_shape=None, condition_shape=None):
        self.condition_dim = None if condition_shape is None else int(condition_shape[-1])
        if self.condition_dim is None:
            self.heads = None
            self.constants = [
                self.add_weight(shape=(size,), initializer=init, name=name) for name, size, init in self._outputs()
            ]
        else:
            shape = (None, self.condition_dim)
            for layer in self.hidden_layers:
                layer.build(shape)
                shape = (None, layer.units)
            self.heads = [
                keras.layers.Dense(size, bias_initializer=init, name=name) for name, size, init in self._outputs()
            ]
            for head in self.heads:
                head.build(shape)
        self.built = True

    def get_build_config(self):
        return {"condition_dim": self.condition_dim}

    def build_from_config(self, config):
        condition_dim = config.get("condition_dim")
        self.build((None, self.num_params), None if condition_dim is None else (None, condition_dim))

    def _check_condition(self, condition):
        received = None if condition is None else condition.shape[-1]
        if received != self.condition_dim:
            expected = "None" if self.condition_dim is None else f"shape (B, {self.condition_dim})"
            raise ShapeError(
                f"MixtureDensityNetwork was built for condition {expected}, "
                f"received {'None' if condition is None else describe_shape(condition)}."
            )

    def mixture_parameters(self, condition=None, training=False):
        """Return ``(log_weights (B, K), means (B, K, D), cholesky (B, K, D, D))``; ``B = 1`` without condition."""
        K, D = self.num_components, self.num_params
        if condition is None:
            raw = [c[None, :] for c in self.constants]
        else:
            h = condition
            for layer in self.hidden_layers:
                h = layer(h, training=training)
            raw = [head(h) for head in self.heads]
        batch = tf.shape(raw[0])[0]
        log_weights = tf.nn.log_softmax(raw[0], axis=-1) if K > 1 else tf.zeros((batch, 1), raw[0].dtype)
        means = tf.reshape(raw[-2], (batch, K, D))
        tril = tfp.math.fill_triangular(tf.reshape(raw[-1], (batch, K, D * (D + 1) // 2)))
        diag = tf.nn.softplus(tf.linalg.diag_part(tril) + _SOFTPLUS_INV_ONE) + self.min_scale
        return log_weights, means, tf.linalg.set_diag(tril, diag)

    def _ensure_built(self, condition):
        if not self.built:
            self.build((None, self.num_params), None if condition is None else tuple(condition.shape))

    @staticmethod
    def _check_latent_dist(latent_dist):
        if latent_dist is not None:
            raise ArgumentError(
                f"MixtureDensityNetwork has no latent distribution; latent_dist must be None, received {latent_dist!r}."
            )

    def call(self, targets, condition=None, training=False):
        """``log q(targets | condition)``, shape ``(B,)``."""
        targets = tf.convert_to_tensor(targets)
        condition = None if condition is None else tf.convert_to_tensor(condition, dtype=targets.dtype)
        if targets.shape[-1] != self.num_params:
            raise ShapeError(
                f"MixtureDensityNetwork expects targets of shape (B, {self.num_params}), "
                f"received {describe_shape(targets)}."
            )
        self._check_condition(condition)
        log_weights, means, cholesky = self.mixture_parameters(condition, training)
        batch = tf.shape(targets)[0]
        diff = targets[:, None, :] - means  # (B, K, D), broadcasting B = 1 without condition
        diff = tf.broadcast_to(diff, (batch, self.num_components, self.num_params))
        cholesky = tf.broadcast_to(cholesky, (batch, self.num_components, self.num_params, self.num_params))
        # Mahalanobis term via y = L^{-1} (x - mu); log|Sigma|^(1/2) = sum log diag(L).
        y = tf.linalg.triangular_solve(cholesky, diff[..., None], lower=True)[..., 0]
        log_norm = tf.reduce_sum(tf.math.log(tf.linalg.diag_part(cholesky)), axis=-1)
        component_log_prob = (
            -0.5 * tf.reduce_sum(tf.square(y), axis=-1) - log_norm - 0.5 * self.num_params * math.log(2.0 * math.pi)
        )
        return tf.reduce_logsumexp(log_weights + component_log_prob, axis=-1)

    def log_prob(self, targets, condition=None, latent_dist=None, training=False):
        """Return the exact mixture log density ``log q(targets | condition)`` with shape ``(B,)``."""
        self._check_latent_dist(latent_dist)
        return self(targets, condition, training=training)

    def sample(self, n_samples: int, condition=None, latent_dist=None, seed=None):
        """Draw ``(B, n_samples, D)`` values (``(n_samples, D)`` without condition); an int seed repeats them."""
        self._check_latent_dist(latent_dist)
        condition = None if condition is None else tf.convert_to_tensor(condition, dtype=self.compute_dtype)
        self._ensure_built(condition)
        self._check_condition(condition)
        log_weights, means, cholesky = self.mixture_parameters(condition)
        batch = tf.shape(log_weights)[0]
        component_seed, noise_seed = split_seed(seed)
        components = keras.random.categorical(log_weights, n_samples, seed=component_seed)  # (B, n)
        eps = keras.random.normal((batch, n_samples, self.num_params), seed=noise_seed, dtype=means.dtype)
        chosen_means = tf.gather(means, components, batch_dims=1)  # (B, n, D)
        chosen_cholesky = tf.gather(cholesky, components, batch_dims=1)  # (B, n, D, D)
        draws = chosen_means + tf.linalg.matvec(chosen_cholesky, eps)
        return draws[0] if condition is None else draws

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_params": self.num_params,
                "num_components": self.num_components,
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "min_scale": self.min_scale,
            }
        )
        return config
