"""The conditioner of a coupling layer: an MLP from (conditioning half, condition) to transform parameters.

The last layer starts at zero (kernel and bias), so every coupling starts as the identity
(affine: ``s = t = 0``; spline: equal bins and unit derivatives). Deep flows then start
from a well-conditioned map and train stably (Kingma & Dhariwal, 2018, Glow, Sec. 3.3).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from amortflow._checks import positive_int
from amortflow.defaults import DEFAULT_DENSE_ARGS, merge_settings
from amortflow.exceptions import ArgumentError


@keras.saving.register_keras_serializable(package="amortflow")
class ConditionerMLP(keras.layers.Layer):
    """A dense network ``h -> params`` with ``num_dense`` hidden layers and a zero-initialised output.

    Parameters
    ----------
    output_dim : int
        Number of outputs (parameters of the transform for all transformed dimensions).
    dense_args : dict or None
        Settings of every hidden layer, as for ``keras.layers.Dense``, merged over
        :data:`amortflow.defaults.DEFAULT_DENSE_ARGS` (``units=128, activation="swish",
        kernel_regularizer=None``); also ``use_bias``, ``kernel_initializer``, ``bias_initializer``,
        ``bias_regularizer``, ``kernel_constraint``, ``bias_constraint``. The kernel regularizer
        also applies to the output layer, whose kernel and bias start at zero.
    num_dense : int, default 2
        Number of hidden layers.
    dropout : bool, default False
        Whether to apply dropout (rate ``dropout_prob``) after each hidden layer in training.
    dropout_prob : float, default 0.05
        Dropout rate.
    residual : bool, default False
        Whether hidden layers after the first add their input: ``h <- h + dense(h)``.

    Examples
    --------
    >>> import numpy as np
    >>> mlp = ConditionerMLP(output_dim=4, dense_args={"units": 16})
    >>> tuple(mlp(np.zeros((3, 5), "float32")).shape)
    (3, 4)
    """

    def __init__(
        self,
        output_dim: int,
        dense_args: dict[str, Any] | None = None,
        num_dense: int = 2,
        dropout: bool = False,
        dropout_prob: float = 0.05,
        residual: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        output_dim = positive_int("output_dim", output_dim)
        num_dense = positive_int("num_dense", num_dense)
        if not 0.0 <= float(dropout_prob) < 1.0:
            raise ArgumentError(f"dropout_prob must lie in [0, 1), received {dropout_prob!r}.")
        merged = merge_settings(DEFAULT_DENSE_ARGS, dense_args)
        unknown = sorted(set(merged) - set(DENSE_KEYS))
        if unknown:
            raise ArgumentError(
                f"dense_args received unknown key(s) {unknown}; expected keys among {list(DENSE_KEYS)}."
            )
        positive_int("dense_args['units']", merged["units"])
        self.output_dim = int(output_dim)
        self.dense_args = dense_args
        self.num_dense = int(num_dense)
        self.dropout = bool(dropout)
        self.dropout_prob = float(dropout_prob)
        self.residual = bool(residual)
        self._dense = merged
        self._use_bias = bool(merged.get("use_bias", True))
        self.units = int(merged["units"])
        self.activation_fn = keras.activations.get(merged["activation"])
        self.dropouts = (
            [keras.layers.Dropout(self.dropout_prob, dtype=self.dtype_policy) for _ in range(self.num_dense)]
            if dropout
            else []
        )

    def build(self, input_shape):
        # Plain weights instead of keras Dense layers: the same maths without a Keras __call__ per layer,
        # which keeps eager calls (sampling, diagnostics) and graph tracing of deep flows fast.
        dense = self._dense
        self.kernels, self.biases = [], []
        fan_in = int(input_shape[-1])
        for i in range(self.num_dense + 1):
            last = i == self.num_dense
            units = self.output_dim if last else self.units
            self.kernels.append(
                self.add_weight(
                    shape=(fan_in, units),
                    initializer="zeros" if last else dense.get("kernel_initializer", "glorot_uniform"),
                    regularizer=dense["kernel_regularizer"],
                    constraint=dense.get("kernel_constraint"),
                    name=f"kernel_{i}",
                )
            )
            if self._use_bias or last:
                self.biases.append(
                    self.add_weight(
                        shape=(units,),
                        initializer="zeros" if last else dense.get("bias_initializer", "zeros"),
                        regularizer=dense.get("bias_regularizer"),
                        constraint=dense.get("bias_constraint"),
                        name=f"bias_{i}",
                    )
                )
            fan_in = units
        for layer in self.dropouts:
            layer.build((None, self.units))

    def _dense_layer(self, h, i: int):
        out = tf.matmul(h, self.kernels[i])
        if self._use_bias:
            return out + self.biases[i]
        return out + self.biases[0] if i == self.num_dense else out

    def call(self, inputs, training=False):
        h = inputs
        for i in range(self.num_dense):
            out = self.activation_fn(self._dense_layer(h, i))
            h = h + out if (self.residual and i > 0) else out
            if self.dropout:
                h = self.dropouts[i](h, training=training)
        return self._dense_layer(h, self.num_dense)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "dense_args": serialize_settings(self.dense_args),
                "num_dense": self.num_dense,
                "dropout": self.dropout,
                "dropout_prob": self.dropout_prob,
                "residual": self.residual,
            }
        )
        return config


#: Keys ``dense_args`` may hold (those of ``keras.layers.Dense`` that apply to a hidden layer).
DENSE_KEYS = (
    "units",
    "activation",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "bias_constraint",
)


def serialize_settings(value):
    """Plain values pass through; Keras objects and functions inside (nested) dicts become config dicts."""
    if isinstance(value, Mapping):
        return {key: serialize_settings(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [serialize_settings(item) for item in value]
    if value is None or isinstance(value, (str, bool, numbers.Number)):
        return value
    return keras.saving.serialize_keras_object(value)


