"""Affine elementwise transform with a softly clamped log-scale (Ardizzone et al., 2019).

``y = x * exp(s) + t`` with ``s = (2 * alpha / pi) * atan(s_raw / alpha)``, so that
``|s| < alpha``: a single layer cannot scale by more than ``exp(alpha)``, which keeps
training of deep flows stable; near zero ``s ~ (2 / pi) s_raw`` (the clamp's slope at 0).
``log|dy/dx| = sum(s)``.

Reference: Ardizzone, Lüth, Kruse, Rother, Köthe (2019), "Guided image generation with
conditional invertible neural networks", arXiv:1907.02392.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from amortflow.exceptions import ArgumentError
from amortflow.networks.inference.transforms.base import Transform


@keras.saving.register_keras_serializable(package="amortflow")
class AffineTransform(Transform):
    """``y = x * exp(s) + t`` with ``params[..., 0] = s_raw`` and ``params[..., 1] = t``.

    Parameters
    ----------
    soft_clamping : float or None, default 1.9
        Bound ``alpha`` of the log-scale; ``None`` or ``0`` disables clamping (``s = s_raw``).
    """

    params_per_dim = 2

    def __init__(self, soft_clamping: float | None = 1.9):
        if soft_clamping is not None and not float(soft_clamping) >= 0.0:
            raise ArgumentError(f"soft_clamping must be >= 0 or None, received {soft_clamping!r}.")
        self.soft_clamping = None if soft_clamping is None else float(soft_clamping)

    def _scale_shift(self, params):
        s_raw, t = tf.unstack(params, axis=-1)
        alpha = self.soft_clamping
        if alpha:
            s_raw = (2.0 * alpha / math.pi) * tf.atan(s_raw / alpha)
        return s_raw, t

    def forward(self, x, params):
        s, t = self._scale_shift(params)
        return x * tf.exp(s) + t, tf.reduce_sum(s, axis=-1)

    def inverse(self, y, params):
        s, t = self._scale_shift(params)
        return (y - t) * tf.exp(-s), -tf.reduce_sum(s, axis=-1)

    def get_config(self) -> dict:
        return {"soft_clamping": self.soft_clamping}
