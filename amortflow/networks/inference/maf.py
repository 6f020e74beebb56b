"""Conditional masked autoregressive flow (MAF): a pure transform conditioned by a MADE, per layer.

Each layer is an autoregressive bijection ``z_i = f(x_i; theta_i(x_<i, c))`` where ``f`` is a
pure elementwise transform of :mod:`amortflow.networks.inference.transforms`
(:class:`AffineTransform`: ``z_i = x_i exp(s_i) + t_i`` with the softly clamped log-scale
``s_i``; :class:`RationalQuadraticSpline`: a monotone spline) and its parameters ``theta_i`` come
from one pass of a :class:`~amortflow.networks.inference.made.MADE`, whose masks guarantee that
``theta_i`` only sees ``x_1 .. x_{i-1}`` (and the condition ``c``). So
``log|det dz/dx| = sum_i log|f'(x_i)|``, density evaluation needs one MADE pass per layer and
sampling ``D`` sequential passes. Layers are separated by permutations of
:mod:`amortflow.networks.inference.permutations`.

References
----------
Papamakarios, Pavlakou & Murray (2017), "Masked Autoregressive Flow for Density Estimation",
NeurIPS. Durkan, Bekasov, Murray & Papamakarios (2019), "Neural Spline Flows", NeurIPS.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from amortflow._checks import check_choice, positive_int
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.networks.inference.base import FlowNetwork
from amortflow.networks.inference.made import MADE, MaskedDense, hidden_degrees  # noqa: F401 - re-exported
from amortflow.networks.inference.permutations import FixedPermutation, ReversePermutation
from amortflow.networks.inference.transforms import AffineTransform, Transform

_PERMUTATIONS = ("reverse", "fixed", None)


@keras.saving.register_keras_serializable(package="amortflow")
class MaskedAutoregressiveFlow(FlowNetwork):
    """Conditional masked autoregressive flow: a stack of MADE-conditioned transforms with permutations.

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
    transform : Transform or None, default None
        The elementwise transform of every layer: ``AffineTransform()`` (None: the default,
        log-scale softly clamped to ``|s| < 1.9``) or ``RationalQuadraticSpline(bins=...)``.
    permutation : {"reverse", "fixed", None}, default "reverse"
        Order change between layers: :class:`ReversePermutation`, a
        :class:`FixedPermutation` per layer (drawn from ``seed``, stored with the weights), or
        none (then the whole flow is triangular).
    seed : int or None
        Seed of the ``"fixed"`` permutations (layer ``k`` uses ``seed + k``); None draws from
        NumPy's global state.

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks.inference import RationalQuadraticSpline
    >>> net = MaskedAutoregressiveFlow(num_params=2, num_layers=3, hidden_units=(32, 32))
    >>> z, log_det_J = net(np.zeros((4, 2), "float32"), np.ones((4, 3), "float32"))
    >>> tuple(z.shape), tuple(log_det_J.shape)
    ((4, 2), (4,))
    >>> tuple(net.sample(100, np.ones((4, 3), "float32"), seed=1).shape)
    (4, 100, 2)
    >>> spline = MaskedAutoregressiveFlow(2, num_layers=2, transform=RationalQuadraticSpline(bins=8))
    """

    def __init__(
        self,
        num_params: int,
        num_layers: int = 5,
        hidden_units: Sequence[int] = (64, 64),
        activation: str = "relu",
        transform: Transform | dict | None = None,
        permutation: str | None = "reverse",
        seed: int | None = None,
        **kwargs,
    ):
        num_params = positive_int("num_params", num_params)
        super().__init__(num_params, **kwargs)
        self.num_layers = positive_int("num_layers", num_layers)
        self.permutation = check_choice("permutation", permutation, _PERMUTATIONS)
        if isinstance(transform, dict):
            transform = keras.saving.deserialize_keras_object(transform)
        self.transform = AffineTransform() if transform is None else transform
        if not isinstance(self.transform, Transform):
            raise ArgumentError(
                f"transform must be a Transform (AffineTransform(), RationalQuadraticSpline()), received {transform!r}."
            )
        self.hidden_units = [positive_int("hidden_units[i]", u) for u in hidden_units]
        self.activation = activation
        self.seed = seed
        per_dim = self.transform.params_per_dim
        self.mades = [MADE(num_params, self.hidden_units, activation, per_dim, name=f"made_{k}")
                      for k in range(self.num_layers)]  # fmt: skip
        # permutation_layers[k - 1] reorders the input of layer k (layer 0 sees the targets as given);
        # empty without permutations (or for one dimension, which has no order to change).
        permute = self.permutation is not None and num_params > 1
        self.permutation_layers = [self._make_permutation(k) for k in range(1, self.num_layers)] if permute else []
        self.condition_dim = None

    def _make_permutation(self, layer: int):
        if self.permutation == "reverse":
            return ReversePermutation(name=f"reverse_{layer}")
        return FixedPermutation(seed=None if self.seed is None else int(self.seed) + layer, name=f"permutation_{layer}")

    def build(self, targets_shape, condition_shape=None):
        self.condition_dim = None if condition_shape is None else int(condition_shape[-1])
        width = self.num_params + (self.condition_dim or 0)
        for made in self.mades:
            made.build((None, width))
        for layer in self.permutation_layers:
            layer.build((None, self.num_params))
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

    def _permutation(self, layer: int):
        """The permutation in front of ``layer``, or None."""
        return self.permutation_layers[layer - 1] if layer > 0 and self.permutation_layers else None

    def _params(self, layer: int, x, condition):
        """Transform parameters ``(B, D, params_per_dim)`` of ``layer`` given ``x`` (and ``condition``)."""
        return self.mades[layer](x if condition is None else tf.concat([x, condition], axis=-1))

    def _prepare(self, values, condition):
        values = tf.convert_to_tensor(values)
        condition = None if condition is None else tf.convert_to_tensor(condition, dtype=values.dtype)
        self._check_inputs(values, condition)
        return values, condition

    def _forward(self, targets, condition, training):
        x, condition = self._prepare(targets, condition)
        log_det_J = tf.zeros(tf.shape(x)[:1], dtype=x.dtype)
        for layer in range(self.num_layers):
            permutation = self._permutation(layer)
            if permutation is not None:
                x, _ = permutation.forward(x)
            x, log_det = self.transform.forward(x, self._params(layer, x, condition))
            log_det_J += log_det
        return x, log_det_J

    def _inverse(self, z, condition, training):
        y, condition = self._prepare(z, condition)
        for layer in reversed(range(self.num_layers)):
            x = tf.zeros_like(y)
            # After pass i, x_1..x_{i+1} are exact: the parameters of dimension i only see x_<i.
            for _ in range(self.num_params):
                x, _ = self.transform.inverse(y, self._params(layer, x, condition))
            permutation = self._permutation(layer)
            y = x if permutation is None else permutation.inverse(x)[0]
        return y

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_params": self.num_params,
                "num_layers": self.num_layers,
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "transform": keras.saving.serialize_keras_object(self.transform),
                "permutation": self.permutation,
                "seed": self.seed,
            }
        )
        return config
