"""Activation normalisation: a learned per-dimension affine map (Kingma & Dhariwal, 2018, Glow).

``y = x * exp(log_scale) + bias``, ``log|det J| = sum(log_scale)`` for every row. With a
data-dependent initialisation (``initial_mean``, ``initial_std`` of a batch of targets),
``log_scale = -log(std)`` and ``bias = -mean / std``, so that the layer starts by
standardising the targets, which makes training insensitive to their scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ShapeError


@keras.saving.register_keras_serializable(package="amortflow")
class ActNorm(keras.layers.Layer):
    """Per-dimension scale and shift with an exact log-det and an optional data-dependent start.

    Parameters
    ----------
    initial_mean, initial_std : sequence of floats or None
        Per-dimension mean and (positive) standard deviation of the targets; the layer then starts
        as ``(x - mean) / std``. ``None`` (both) starts at the identity.
    """

    def __init__(
        self, initial_mean: Sequence[float] | None = None, initial_std: Sequence[float] | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        if (initial_mean is None) != (initial_std is None):
            raise ArgumentError("ActNorm needs both initial_mean and initial_std, or neither.")
        if initial_std is not None:
            initial_mean = [float(v) for v in initial_mean]
            initial_std = [float(v) for v in initial_std]
            if len(initial_mean) != len(initial_std) or min(initial_std) <= 0.0:
                raise ArgumentError(
                    "ActNorm initial_mean and initial_std must have equal lengths and initial_std must be "
                    f"positive, received lengths {len(initial_mean)}, {len(initial_std)} and min std "
                    f"{min(initial_std)}."
                )
        self.initial_mean = initial_mean
        self.initial_std = initial_std

    def build(self, input_shape):
        dim = int(input_shape[-1])
        if self.initial_std is None:
            log_scale, bias = np.zeros(dim), np.zeros(dim)
        else:
            if len(self.initial_std) != dim:
                raise ShapeError(
                    f"ActNorm was initialised for {len(self.initial_std)} dimensions but receives inputs of "
                    f"shape {tuple(input_shape)}, expected (B, {len(self.initial_std)})."
                )
            std, mean = np.asarray(self.initial_std), np.asarray(self.initial_mean)
            log_scale, bias = -np.log(std), -mean / std
        self.log_scale = self.add_weight(shape=(dim,), initializer="zeros", name="log_scale")
        self.bias = self.add_weight(shape=(dim,), initializer="zeros", name="bias")
        self.log_scale.assign(log_scale.astype(self.log_scale.dtype))
        self.bias.assign(bias.astype(self.bias.dtype))

    def forward(self, x):
        """Return ``(y, log_det)``; ``log_det`` is a scalar, the same for every row."""
        return x * tf.exp(self.log_scale) + self.bias, tf.reduce_sum(self.log_scale)

    def inverse(self, y):
        """Return ``(x, log_det)`` of the inverse map; ``log_det`` is a scalar."""
        return (y - self.bias) * tf.exp(-self.log_scale), -tf.reduce_sum(self.log_scale)

    def call(self, x, inverse=False):
        """Return ``(y, log_det)`` with ``log_det`` broadcast to shape ``(B,)``."""
        y, log_det = self.inverse(x) if inverse else self.forward(x)
        return y, log_det * tf.ones_like(x[:, 0])

    def get_config(self):
        config = super().get_config()
        config.update({"initial_mean": self.initial_mean, "initial_std": self.initial_std})
        return config
