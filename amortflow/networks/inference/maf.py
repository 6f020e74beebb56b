"""Conditional masked autoregressive flow (MAF) built from MADE blocks.

Each layer is an affine autoregressive bijection

``z_i = (x_i - mu_i(x_<i, c)) * exp(-alpha_i(x_<i, c))``,  ``log|det dz/dx| = -sum_i alpha_i``,

where ``(mu, alpha)`` come from one pass of a MADE (masked autoencoder for distribution
estimation): a dense network whose weight masks guarantee that output ``i`` only sees inputs
``x_1 .. x_{i-1}`` (and the condition ``c``, which every unit may see). Density evaluation
therefore needs one network pass per layer, sampling ``D`` sequential passes.

References
----------
Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution
Estimation", ICML. Papamakarios, Pavlakou & Murray (2017), "Masked Autoregressive Flow for
Density Estimation", NeurIPS.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.networks.inference.base import FlowNetwork

_PERMUTATIONS = ("reverse", "fixed", None)


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
    """Masked autoencoder returning ``(shift, raw_log_scale)``, each ``(B, D)``.

    The input is ``[x, c]`` (``x`` first, ``num_params`` columns; ``c`` optional). The output
    layer starts at zero so that a fresh MAF layer is the identity. When there is nothing to
    condition on (``num_params == 1`` and no ``c``), the MADE reduces to a trainable bias.
    """

    def __init__(self, num_params: int, hidden_units: Sequence[int] = (64, 64), activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.num_params = int(num_params)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.hidden_layers = []
        self.output_layer = None

    def build(self, input_shape):
        D = self.num_params
        conditional = int(input_shape[-1]) > D
        if D == 1 and not conditional:
            self.constant = self.add_weight(shape=(2,), initializer="zeros", name="constant")
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
        # Degrees of the output units: shift_i and log-scale_i both have degree i.
        out_degrees = list(range(1, D + 1)) * 2
        self.output_layer = MaskedDense(degrees, out_degrees, strict=True, kernel_initializer="zeros", name="output")
        self.output_layer.build(shape)
        self.built = True

    def call(self, inputs):
        if self.output_layer is None:
            params = tf.broadcast_to(self.constant, (tf.shape(inputs)[0], 2))
        else:
            h = inputs
            for layer in self.hidden_layers:
                h = layer(h)
            params = self.output_layer(h)
        return params[:, : self.num_params], params[:, self.num_params :]

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_params": self.num_params, "hidden_units": list(self.hidden_units), "activation": self.activation}
        )
        return config


def soft_clamp(raw, bound: float):
    """Smoothly limit ``raw`` to ``(-bound, bound)``: ``bound * tanh(raw / bound)`` (slope 1 at 0)."""
    return bound * tf.tanh(raw / bound)


@keras.saving.register_keras_serializable(package="amortflow")
class MaskedAutoregressiveFlow(FlowNetwork):
    """Conditional masked autoregressive flow: a stack of affine MADE layers with permutations.

    ``net(targets, condition) -> (z, log_det_J)`` costs one MADE pass per layer (fast density,
    the classic estimator of sequential neural likelihood); ``net.inverse(z, condition)`` costs
    ``num_params`` sequential passes per layer.

    Parameters
    ----------
    num_params : int
        Dimension ``D`` of the targets.
    num_layers : int, default 5
        Number of MADE layers.
    hidden_units : sequence of int, default (64, 64)
        Widths of each MADE's hidden layers.
    activation : str, default "relu"
        Activation of the hidden layers.
    soft_clamping : float, default 1.9
        Bound of each layer's log-scale, ``alpha = b * tanh(raw / b)``; keeps training stable.
    permutation : {"reverse", "fixed", None}, default "reverse"
        Order change between layers: reversal, a fixed random permutation per layer (drawn
        from ``seed``, stored with the weights), or none (then the whole flow is triangular).
    seed : int or None
        Seed of the ``"fixed"`` permutations; None draws from NumPy's global state.

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks.inference.maf import MaskedAutoregressiveFlow
    >>> net = MaskedAutoregressiveFlow(num_params=2, num_layers=3, hidden_units=(32, 32))
    >>> z, log_det_J = net(np.zeros((4, 2), "float32"), np.ones((4, 3), "float32"))
    >>> tuple(z.shape), tuple(log_det_J.shape)
    ((4, 2), (4,))
    >>> tuple(net.sample(100, np.ones((4, 3), "float32"), seed=1).shape)
    (4, 100, 2)
    """

    def __init__(
        self,
        num_params: int,
        num_layers: int = 5,
        hidden_units: Sequence[int] = (64, 64),
        activation: str = "relu",
        soft_clamping: float = 1.9,
        permutation: str | None = "reverse",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(num_params, **kwargs)
        if self.num_params < 1:
            raise ArgumentError(f"MaskedAutoregressiveFlow needs num_params >= 1, received {num_params!r}.")
        if int(num_layers) < 1:
            raise ArgumentError(f"MaskedAutoregressiveFlow needs num_layers >= 1, received {num_layers!r}.")
        if permutation not in _PERMUTATIONS:
            raise ArgumentError(f"permutation must be one of {_PERMUTATIONS}, received {permutation!r}.")
        if not soft_clamping > 0:
            raise ArgumentError(f"soft_clamping must be > 0, received {soft_clamping!r}.")
        self.num_layers = int(num_layers)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.soft_clamping = float(soft_clamping)
        self.permutation = permutation
        self.seed = seed
        self.mades = [
            MADE(self.num_params, self.hidden_units, activation, name=f"made_{k}") for k in range(self.num_layers)
        ]
        self.condition_dim = None

    def build(self, targets_shape, condition_shape=None):
        self.condition_dim = None if condition_shape is None else int(condition_shape[-1])
        width = self.num_params + (self.condition_dim or 0)
        for made in self.mades:
            made.build((None, width))
        if self.permutation == "fixed":
            rng = np.random.default_rng(self.seed if self.seed is not None else np.random.randint(2**31))
            perms = np.stack([rng.permutation(self.num_params) for _ in range(self.num_layers)]).astype("int32")
            # Stored as a weight so that a saved flow keeps its permutations whatever the seed.
            self.permutations = self.add_weight(
                shape=perms.shape, dtype="int32", trainable=False, name="permutations",
                initializer=keras.initializers.Constant(perms),
            )
        self.built = True

    def get_build_config(self):
        return {"condition_dim": self.condition_dim}

    def build_from_config(self, config):
        condition_dim = config.get("condition_dim")
        self.build((None, self.num_params), None if condition_dim is None else (None, condition_dim))

    def _check_inputs(self, targets, condition):
        if targets.shape[-1] != self.num_params:
            raise ShapeError(
                f"MaskedAutoregressiveFlow expects targets of shape (B, {self.num_params}), "
                f"received {describe_shape(targets)}."
            )
        received = None if condition is None else condition.shape[-1]
        if received != self.condition_dim:
            expected = "None" if self.condition_dim is None else f"shape (B, {self.condition_dim})"
            raise ShapeError(
                f"MaskedAutoregressiveFlow was built for condition {expected}, "
                f"received {'None' if condition is None else describe_shape(condition)}."
            )

    def _order(self, layer: int):
        """Index order applied to the input of ``layer`` (None: keep the order)."""
        if layer == 0 or self.permutation is None or self.num_params == 1:
            return None
        if self.permutation == "reverse":
            return tf.range(self.num_params - 1, -1, -1)
        return self.permutations[layer]

    def _made_params(self, layer: int, x, condition):
        inputs = x if condition is None else tf.concat([x, condition], axis=-1)
        shift, raw = self.mades[layer](inputs)
        return shift, soft_clamp(raw, self.soft_clamping)

    def _forward(self, targets, condition, training):
        x = tf.convert_to_tensor(targets)
        condition = None if condition is None else tf.convert_to_tensor(condition, dtype=x.dtype)
        self._check_inputs(x, condition)
        log_det_J = tf.zeros(tf.shape(x)[:1], dtype=x.dtype)
        for layer in range(self.num_layers):
            order = self._order(layer)
            if order is not None:
                x = tf.gather(x, order, axis=-1)
            shift, log_scale = self._made_params(layer, x, condition)
            x = (x - shift) * tf.exp(-log_scale)
            log_det_J -= tf.reduce_sum(log_scale, axis=-1)
        return x, log_det_J

    def _inverse(self, z, condition, training):
        y = tf.convert_to_tensor(z)
        condition = None if condition is None else tf.convert_to_tensor(condition, dtype=y.dtype)
        self._check_inputs(y, condition)
        for layer in reversed(range(self.num_layers)):
            x = tf.zeros_like(y)
            # After pass i, x_1..x_{i+1} are exact: output i only depends on x_<i.
            for _ in range(self.num_params):
                shift, log_scale = self._made_params(layer, x, condition)
                x = y * tf.exp(log_scale) + shift
            order = self._order(layer)
            y = x if order is None else tf.gather(x, tf.math.invert_permutation(order), axis=-1)
        return y

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_params": self.num_params,
                "num_layers": self.num_layers,
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "soft_clamping": self.soft_clamping,
                "permutation": self.permutation,
                "seed": self.seed,
            }
        )
        return config
