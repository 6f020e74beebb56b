"""A conditional coupling layer: a pure transform of one part of the input, parameterised by a conditioner.

With ``x = (x_a, x_b)`` split at ``split`` and a condition ``c``:

``y_a = x_a``,  ``y_b = T(x_b; theta)``,  ``theta = conditioner([x_a, c])``,

so the Jacobian is block triangular and ``log|det J| = log|det dT/dx_b|`` (Dinh, Sohl-Dickstein,
Bengio, 2017, "Density estimation using Real NVP"). The inverse reuses ``theta`` because
``x_a = y_a``. A coupling with nothing to condition on (a 1-D target without condition)
feeds a constant 1 to the conditioner, which then learns unconditional transform parameters.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from amortflow._checks import check_choice
from amortflow.exceptions import ArgumentError, ShapeError

_PARTS = ("first", "second")


@keras.saving.register_keras_serializable(package="amortflow")
class Coupling(keras.layers.Layer):
    """Transform one part of the last axis with ``transform``, conditioned on the other part and ``condition``.

    Parameters
    ----------
    transform : Transform
        A pure elementwise transform (:class:`AffineTransform`, :class:`RationalQuadraticSpline`).
    conditioner : keras.layers.Layer
        Maps ``[x_a, condition]`` of shape ``(B, d_a + C)`` to ``(B, d_b * transform.params_per_dim)``.
    split : int
        Index on the last axis separating the first part ``x[:, :split]`` from the second ``x[:, split:]``.
        ``split=0`` with ``transformed_part="second"`` transforms every dimension (1-D targets).
    transformed_part : {"second", "first"}, default "second"
        Which part is transformed; the other one conditions the transform.

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks.inference.mlp import ConditionerMLP
    >>> from amortflow.networks.inference.transforms import AffineTransform
    >>> layer = Coupling(AffineTransform(), ConditionerMLP(output_dim=2 * 2, dense_args={"units": 8}), split=1)
    >>> y, log_det = layer(np.zeros((4, 3), "float32"), np.zeros((4, 5), "float32"))
    """

    def __init__(self, transform, conditioner, split: int, transformed_part: str = "second", **kwargs):
        super().__init__(**kwargs)
        if isinstance(transform, dict):
            transform = keras.saving.deserialize_keras_object(transform)
        if isinstance(conditioner, dict):
            conditioner = keras.saving.deserialize_keras_object(conditioner)
        check_choice("transformed_part", transformed_part, _PARTS)
        if int(split) < 0:
            raise ArgumentError(f"split must be >= 0, received {split!r}.")
        self.transform = transform
        self.conditioner = conditioner
        self.split = int(split)
        self.transformed_part = transformed_part

    # --- shapes ------------------------------------------------------------------------------
    def _dims(self, dim: int) -> tuple[int, int]:
        """(conditioning dims, transformed dims) for an input with ``dim`` features."""
        first, second = self.split, dim - self.split
        if first < 0 or second < 0 or (self.transformed_part == "first" and first == 0) or dim < 1:
            raise ShapeError(
                f"Coupling with split={self.split} and transformed_part={self.transformed_part!r} "
                f"cannot split an input with {dim} features."
            )
        return (first, second) if self.transformed_part == "second" else (second, first)

    def build(self, x_shape, condition_shape=None):
        dim_a, _ = self._dims(int(x_shape[-1]))
        in_dim = dim_a + (0 if condition_shape is None else int(condition_shape[-1]))
        self.conditioner.build((None, max(in_dim, 1)))

    # --- maps --------------------------------------------------------------------------------
    def _split(self, x):
        first, second = tf.split(x, [self.split, x.shape[-1] - self.split], axis=-1)
        return (first, second) if self.transformed_part == "second" else (second, first)

    def _merge(self, x_a, x_b):
        return tf.concat([x_a, x_b] if self.transformed_part == "second" else [x_b, x_a], axis=-1)

    def _params(self, x_a, x_b, condition, training):
        parts = [t for t in (x_a, condition) if t is not None and t.shape[-1] != 0]
        if not parts:
            h = tf.ones_like(x_b)  # 1-D target, no condition: a constant input
        else:
            h = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
        params = self.conditioner(h, training=training)
        return tf.reshape(params, (-1, x_b.shape[-1], self.transform.params_per_dim))

    def forward(self, x, condition=None, training=False):
        """Return ``(y, log_det)`` with shapes ``(B, D)`` and ``(B,)``."""
        x_a, x_b = self._split(x)
        y_b, log_det = self.transform.forward(x_b, self._params(x_a, x_b, condition, training))
        return self._merge(x_a, y_b), log_det

    def inverse(self, y, condition=None, training=False):
        """Return ``(x, log_det)`` of the inverse map."""
        y_a, y_b = self._split(y)
        x_b, log_det = self.transform.inverse(y_b, self._params(y_a, y_b, condition, training))
        return self._merge(y_a, x_b), log_det

    def call(self, x, condition=None, inverse=False, training=False):
        return self.inverse(x, condition, training) if inverse else self.forward(x, condition, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "transform": keras.saving.serialize_keras_object(self.transform),
                "conditioner": keras.saving.serialize_keras_object(self.conditioner),
                "split": self.split,
                "transformed_part": self.transformed_part,
            }
        )
        return config
