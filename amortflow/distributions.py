"""Latent (base) distributions of normalizing flows.

A flow maps parameters ``theta`` to latents ``z = f(theta; c)``; the density follows from
the change of variables ``log q(theta | c) = log p_Z(f(theta; c)) + log|det J_f|``.
``p_Z`` is a standard normal by default; a Student-t base gives heavier tails
(Jaini et al., 2020, "Tails of Lipschitz triangular flows").
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from amortflow.exceptions import ArgumentError


@keras.saving.register_keras_serializable(package="amortflow")
class StandardNormal:
    """Independent standard normal over the last axis: ``log p(z) = -0.5 (||z||^2 + D log 2 pi)``."""

    def log_prob(self, z):
        z = tf.convert_to_tensor(z)
        dim = tf.cast(tf.shape(z)[-1], z.dtype)
        return -0.5 * (tf.reduce_sum(tf.square(z), axis=-1) + dim * math.log(2.0 * math.pi))

    def sample(self, shape, seed=None):
        """Draw ``shape`` = (..., D) standard normal values; an int ``seed`` makes the draw repeatable."""
        return keras.random.normal(shape, seed=seed)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self)


@keras.saving.register_keras_serializable(package="amortflow")
class StudentT:
    """Independent Student-t with ``df`` degrees of freedom on each latent axis.

    ``log p(z_i) = lgamma((v+1)/2) - lgamma(v/2) - 0.5 log(v pi) - (v+1)/2 log(1 + z_i^2 / v)``
    """

    def __init__(self, df: float = 5.0):
        if not df > 0:
            raise ArgumentError(f"StudentT needs df > 0, received df={df!r}.")
        self.df = float(df)

    def log_prob(self, z):
        z = tf.convert_to_tensor(z)
        v = tf.cast(self.df, z.dtype)
        const = tf.math.lgamma((v + 1.0) / 2.0) - tf.math.lgamma(v / 2.0) - 0.5 * tf.math.log(v * math.pi)
        per_dim = const - (v + 1.0) / 2.0 * tf.math.log1p(tf.square(z) / v)
        return tf.reduce_sum(per_dim, axis=-1)

    def sample(self, shape, seed=None):
        # t = N / sqrt(Chi2_v / v), with Chi2_v = 2 * Gamma(v/2, 1)
        normal = keras.random.normal(shape, seed=seed)
        gamma_seed = None if seed is None else seed + 1
        gamma = keras.random.gamma(shape, alpha=self.df / 2.0, seed=gamma_seed)
        return normal / tf.sqrt(2.0 * gamma / self.df)

    def get_config(self):
        return {"df": self.df}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and other.df == self.df


def resolve_latent_dist(latent_dist) -> StandardNormal | StudentT:
    """Turn ``None``, ``"normal"``, ``"student_t"`` or a distribution object into a latent distribution."""
    if latent_dist is None or latent_dist == "normal":
        return StandardNormal()
    if latent_dist in ("student_t", "student-t", "t"):
        return StudentT()
    if hasattr(latent_dist, "log_prob") and hasattr(latent_dist, "sample"):
        return latent_dist
    raise ArgumentError(
        f"latent_dist must be None, 'normal', 'student_t' or an object with log_prob and sample; "
        f"received {latent_dist!r}."
    )
