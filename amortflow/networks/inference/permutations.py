"""Mixing layers between couplings: a fixed random permutation and a learnable invertible linear map.

Couplings leave part of their input unchanged; mixing the dimensions between them lets
every dimension depend on every other one after a few layers.

* :class:`FixedPermutation` shuffles the dimensions (``log|det| = 0``).
* :class:`ReversePermutation` reverses their order (``log|det| = 0``, no weights).
* :class:`LearnablePermutation` is a learned invertible matrix in the LU parameterisation of
  Glow (Kingma & Dhariwal, 2018): ``W = P L (U + diag(sign * exp(log_s)))`` with a fixed
  permutation ``P``, unit lower-triangular ``L`` and strictly upper-triangular ``U``. It starts at
  a random orthogonal matrix, its log-det is exactly ``sum(log_s)`` and its inverse takes two
  triangular solves.

Both draw their random start in ``build`` (from ``numpy.random.default_rng(seed)``, or NumPy's
global generator, seeded by :func:`amortflow.set_seed`, when ``seed`` is None) and keep it in
non-trainable weights, so a saved and reloaded layer is the same map.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf


def _generator(seed: int | None):
    return np.random if seed is None else np.random.default_rng(seed)


def _constant_weight(layer: keras.layers.Layer, name: str, value: np.ndarray, dtype: str):
    """A non-trainable weight holding ``value`` (kept in the saved weights)."""
    weight = layer.add_weight(shape=value.shape, initializer="zeros", dtype=dtype, trainable=False, name=name)
    weight.assign(value.astype(dtype))
    return weight


@keras.saving.register_keras_serializable(package="amortflow")
class FixedPermutation(keras.layers.Layer):
    """A random permutation of the last axis, drawn once at build time.

    Parameters
    ----------
    seed : int or None
        Seed of the permutation; None uses NumPy's global generator.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        order = _generator(self.seed).permutation(int(input_shape[-1]))
        self.permutation = _constant_weight(self, "permutation", order, "int32")
        self.inverse_permutation = _constant_weight(self, "inverse_permutation", np.argsort(order), "int32")

    def forward(self, x):
        """Return ``(y, log_det)``; ``log_det`` is the scalar 0."""
        return tf.gather(x, self.permutation, axis=-1), 0.0

    def inverse(self, y):
        return tf.gather(y, self.inverse_permutation, axis=-1), 0.0

    def call(self, x, inverse=False):
        """Return ``(y, log_det)`` with ``log_det`` of shape ``(B,)``."""
        return (self.inverse(x) if inverse else self.forward(x))[0], tf.zeros_like(x[:, 0])

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class ReversePermutation(keras.layers.Layer):
    """Reverses the last axis, ``y = (x_D, ..., x_1)``: its own inverse, ``log|det| = 0``, no weights."""

    def forward(self, x):
        """Return ``(y, log_det)``; ``log_det`` is the scalar 0."""
        return tf.reverse(x, axis=[-1]), 0.0

    def inverse(self, y):
        return tf.reverse(y, axis=[-1]), 0.0

    def call(self, x, inverse=False):
        """Return ``(y, log_det)`` with ``log_det`` of shape ``(B,)``."""
        return tf.reverse(x, axis=[-1]), tf.zeros_like(x[:, 0])


@keras.saving.register_keras_serializable(package="amortflow")
class LearnablePermutation(keras.layers.Layer):
    """A learned invertible linear map ``y = W x`` in LU form, started at a random orthogonal matrix.

    ``log|det W| = sum(log_s)``; the inverse is ``x = U'^{-1} L^{-1} P^T y`` with ``U' = U + diag(sign exp(log_s))``.

    Parameters
    ----------
    seed : int or None
        Seed of the initial orthogonal matrix; None uses NumPy's global generator.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        dim = int(input_shape[-1])
        q, r = np.linalg.qr(_generator(self.seed).standard_normal((dim, dim)))
        orthogonal = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
        p, lower, upper = scipy.linalg.lu(orthogonal)
        diagonal = np.diag(upper)
        self.lower = self.add_weight(shape=(dim, dim), initializer="zeros", name="lower")
        self.upper = self.add_weight(shape=(dim, dim), initializer="zeros", name="upper")
        self.log_s = self.add_weight(shape=(dim,), initializer="zeros", name="log_s")
        dtype = self.variable_dtype
        self.lower.assign(np.tril(lower, -1).astype(dtype))
        self.upper.assign(np.triu(upper, 1).astype(dtype))
        self.log_s.assign(np.log(np.abs(diagonal)).astype(dtype))
        self.sign = _constant_weight(self, "sign", np.sign(diagonal), dtype)
        self.p = _constant_weight(self, "p", p, dtype)
        self._lower_mask = np.tril(np.ones((dim, dim), dtype), -1)
        self._upper_mask = np.triu(np.ones((dim, dim), dtype), 1)

    def _factors(self):
        eye = tf.eye(tf.shape(self.log_s)[0], dtype=self.log_s.dtype)
        lower = self.lower * self._lower_mask + eye
        upper = self.upper * self._upper_mask + tf.linalg.diag(self.sign * tf.exp(self.log_s))
        return lower, upper

    def forward(self, x):
        """Return ``(y, log_det)``; ``log_det`` is a scalar, the same for every row."""
        lower, upper = self._factors()
        weight = tf.matmul(self.p, tf.matmul(lower, upper))
        return tf.matmul(x, weight, transpose_b=True), tf.reduce_sum(self.log_s)

    def inverse(self, y):
        lower, upper = self._factors()
        rhs = tf.transpose(tf.matmul(y, self.p))  # P^T y^T, shape (D, B)
        a = tf.linalg.triangular_solve(lower, rhs, lower=True)
        x = tf.transpose(tf.linalg.triangular_solve(upper, a, lower=False))
        return x, -tf.reduce_sum(self.log_s)

    def call(self, x, inverse=False):
        """Return ``(y, log_det)`` with ``log_det`` broadcast to shape ``(B,)``."""
        y, log_det = self.inverse(x) if inverse else self.forward(x)
        return y, log_det * tf.ones_like(x[:, 0])

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config
