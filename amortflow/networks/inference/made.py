"""MADE: a dense network whose weight masks make output ``i`` depend on inputs ``x_<i`` only.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution
Estimation", ICML. Each unit has a degree ``m``; a hidden unit sees the inputs of degree
``<= m``, an output unit of degree ``i`` those of degree ``< i``. Condition columns have
degree 0 and reach every unit. :class:`~amortflow.networks.inference.maf.MaskedAutoregressiveFlow`
uses a MADE as the conditioner of its transforms.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from amortflow._checks import positive_int
from amortflow.exceptions import ShapeError


@keras.saving.register_keras_serializable(package="amortflow")
class MaskedDense(keras.layers.Layer):
    """Dense layer whose kernel is multiplied by a fixed autoregressive mask.

    Unit ``j`` (degree ``m_j``) receives input ``k`` (degree ``d_k``) iff ``m_j >= d_k``
    (hidden layers) or ``m_j > d_k`` (``strict=True``, the output layer). Input columns beyond
    ``len(input_degrees)`` get degree 0, i.e. they reach every unit: this is how the
    condition enters a MADE unmasked.

    Parameters
    ----------
    input_degrees : sequence of int
        Degree of each (masked) input column.
    output_degrees : sequence of int
        Degree of each output unit; the number of units is ``len(output_degrees)``.
    strict : bool
        Use ``>`` instead of ``>=`` (for the output layer of a MADE).
    activation, kernel_initializer, bias_initializer
        As in ``keras.layers.Dense``.
    """

    def __init__(
        self,
        input_degrees: Sequence[int],
        output_degrees: Sequence[int],
        strict: bool = False,
        activation=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_degrees = [int(d) for d in input_degrees]
        self.output_degrees = [int(d) for d in output_degrees]
        self.strict = bool(strict)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def mask(self, input_dim: int) -> np.ndarray:
        """The ``(input_dim, units)`` 0/1 mask; extra (condition) columns have degree 0."""
        degrees_in = np.zeros(input_dim, dtype=np.int64)
        degrees_in[: len(self.input_degrees)] = self.input_degrees
        degrees_out = np.asarray(self.output_degrees)[None, :]
        connected = degrees_out > degrees_in[:, None] if self.strict else degrees_out >= degrees_in[:, None]
        return connected.astype("float32")

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        if input_dim < len(self.input_degrees):
            raise ShapeError(
                f"MaskedDense expects at least {len(self.input_degrees)} input columns, "
                f"received input shape {tuple(input_shape)}."
            )
        units = len(self.output_degrees)
        self.kernel = self.add_weight(shape=(input_dim, units), initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight(shape=(units,), initializer=self.bias_initializer, name="bias")
        # Not a weight: it follows from the config and must never be trained. Kept in NumPy so
        # that a build inside a tf.function trace leaves no graph tensor behind.
        self._mask = self.mask(input_dim)

    def call(self, inputs):
        outputs = tf.matmul(inputs, self.kernel * tf.constant(self._mask, dtype=self.kernel.dtype)) + self.bias
        return self.activation(outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_degrees": list(self.input_degrees),
                "output_degrees": list(self.output_degrees),
                "strict": self.strict,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def hidden_degrees(num_params: int, units: int, conditional: bool) -> list[int]:
    """Degrees of a MADE hidden layer, cycling through the admissible values.

    Degree ``m`` means "depends on ``x_1..x_m``". With a condition, degree 0 units (which see
    only ``c``) are needed so that ``mu_1, alpha_1`` depend on ``c``; without one they would be
    constants, so degrees start at 1.
    """
    low = 0 if conditional or num_params == 1 else 1
    values = np.arange(low, num_params)
    return [int(values[j % len(values)]) for j in range(units)]


@keras.saving.register_keras_serializable(package="amortflow")
class MADE(keras.layers.Layer):
    """Masked autoencoder returning transform parameters ``(B, D, params_per_dim)``.

    The input is ``[x, c]`` (``x`` first, ``num_params`` columns; ``c`` optional); the
    parameters of dimension ``i`` depend on ``x_1 .. x_{i-1}`` and ``c`` only. The output
    layer starts at zero, so a fresh MAF layer has zero raw parameters (the identity for the
    affine and spline transforms). When there is nothing to condition on (``num_params == 1``
    and no ``c``), the MADE reduces to a trainable bias.

    Parameters
    ----------
    num_params : int
        Dimension ``D`` of ``x``.
    hidden_units : sequence of int, default (64, 64)
    activation : str, default "relu"
    params_per_dim : int, default 2
        Parameters per dimension (the transform's ``params_per_dim``).
    """

    def __init__(self, num_params: int, hidden_units: Sequence[int] = (64, 64), activation="relu",
                 params_per_dim: int = 2, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.num_params = positive_int("num_params", num_params)
        self.hidden_units = [positive_int("hidden_units[i]", u) for u in hidden_units]
        self.activation = activation
        self.params_per_dim = positive_int("params_per_dim", params_per_dim)
        self.hidden_layers = []
        self.output_layer = None

    def build(self, input_shape):
        D = self.num_params
        conditional = int(input_shape[-1]) > D
        if D == 1 and not conditional:
            self.constant = self.add_weight(shape=(self.params_per_dim,), initializer="zeros", name="constant")
            self.built = True
            return
        degrees = list(range(1, D + 1))
        shape = tuple(input_shape)
        for j, units in enumerate(self.hidden_units):
            out_degrees = hidden_degrees(D, units, conditional)
            layer = MaskedDense(degrees, out_degrees, activation=self.activation, name=f"hidden_{j}")
            layer.build(shape)
            self.hidden_layers.append(layer)
            degrees, shape = out_degrees, shape[:-1] + (units,)
        # Output unit i * P + p is parameter p of dimension i (the (B, D, P) layout of a
        # conditioner): it has degree i + 1, so it sees x_1 .. x_i only through strict masking.
        out_degrees = np.repeat(np.arange(1, D + 1), self.params_per_dim).tolist()
        self.output_layer = MaskedDense(degrees, out_degrees, strict=True, kernel_initializer="zeros", name="output")
        self.output_layer.build(shape)
        self.built = True

    def call(self, inputs):
        """Return the parameters ``(B, D, params_per_dim)`` for inputs ``[x, c]``."""
        if self.output_layer is None:
            return tf.broadcast_to(self.constant, (tf.shape(inputs)[0], 1, self.params_per_dim))
        h = inputs
        for layer in self.hidden_layers:
            h = layer(h)
        return tf.reshape(self.output_layer(h), (-1, self.num_params, self.params_per_dim))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_params": self.num_params, "hidden_units": list(self.hidden_units), "activation": self.activation,
             "params_per_dim": self.params_per_dim}  # fmt: skip
        )
        return config
