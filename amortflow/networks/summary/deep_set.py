"""DeepSet: a permutation-invariant summary network for exchangeable data (sets).

Reference: Zaheer et al. (2017), "Deep Sets", NeurIPS; structure as in BayesFlow 1.

An invariant module computes ``rho(pool_i phi(x_i))`` (``phi`` = s1 MLP applied to every
element, ``pool`` = mean/max/sum over the set axis, ``rho`` = s2 MLP). An equivariant module
maps every element to ``psi([x_i, rho(pool_j phi(x_j))])`` (``psi`` = s3 MLP), so permuting
the elements permutes its outputs. ``DeepSet`` stacks ``num_equiv`` equivariant modules,
one invariant module and a linear ``Dense(summary_dim)``.

Every MLP is a stack of ``Dense`` layers acting on the last axis, so all elements are
processed in one batched matmul (no Python loop), and any set size ``N`` works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from amortflow._checks import check_choice, positive_int
from amortflow.defaults import DEFAULT_DEEP_SET_DENSE, DEFAULT_DEEP_SET_NUM_EQUIV, merge_settings
from amortflow.networks.summary._common import check_input_shape, dense_stack
from amortflow.networks.summary.base import SummaryNetwork, build_in_sequence

#: Pooling functions over the set axis (axis -2 of ``(B, N, d)``).
POOLING_FUNCTIONS = {"mean": keras.ops.mean, "max": keras.ops.max, "sum": keras.ops.sum}


@keras.saving.register_keras_serializable(package="amortflow")
class InvariantModule(keras.layers.Layer):
    """``(B, N, d) -> (B, units_s2)``: ``rho(pool_i phi(x_i))``, invariant to permuting ``N``.

    Parameters
    ----------
    num_dense_s1, num_dense_s2 : int
        Number of Dense layers of ``phi`` (per element, before pooling) and ``rho`` (after).
    dense_s1_args, dense_s2_args : dict or None
        ``keras.layers.Dense`` arguments merged over ``DEFAULT_DEEP_SET_DENSE``.
    pooling_fun : {"mean", "max", "sum"}
        Pooling over the set axis.
    """

    def __init__(
        self,
        num_dense_s1: int = 2,
        num_dense_s2: int = 2,
        dense_s1_args: Mapping[str, Any] | None = None,
        dense_s2_args: Mapping[str, Any] | None = None,
        pooling_fun: str = "mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_dense_s1 = positive_int("num_dense_s1", num_dense_s1)
        self.num_dense_s2 = positive_int("num_dense_s2", num_dense_s2)
        self.dense_s1_args = dense_s1_args
        self.dense_s2_args = dense_s2_args
        self.pooling_fun = check_choice("pooling_fun", pooling_fun, tuple(POOLING_FUNCTIONS))
        self._pool = POOLING_FUNCTIONS[pooling_fun]
        self.s1 = dense_stack(num_dense_s1, merge_settings(DEFAULT_DEEP_SET_DENSE, dense_s1_args), "s1")
        self.s2 = dense_stack(num_dense_s2, merge_settings(DEFAULT_DEEP_SET_DENSE, dense_s2_args), "s2")

    def build(self, input_shape):
        check_input_shape(type(self).__name__, input_shape, rank=3)
        self.s1.build(tuple(input_shape))
        self.s2.build((input_shape[0], self.s1.layers[-1].units))
        self.built = True

    def call(self, x, training=False):
        pooled = self._pool(self.s1(x, training=training), axis=-2)
        return self.s2(pooled, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.s2.layers[-1].units)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_dense_s1=self.num_dense_s1,
            num_dense_s2=self.num_dense_s2,
            dense_s1_args=self.dense_s1_args,
            dense_s2_args=self.dense_s2_args,
            pooling_fun=self.pooling_fun,
        )
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class EquivariantModule(keras.layers.Layer):
    """``(B, N, d) -> (B, N, units_s3)``: ``psi([x_i, rho(pool_j phi(x_j))])`` for every element ``i``.

    Permuting the set axis of the input permutes the output the same way. Arguments as in
    :class:`InvariantModule`, plus ``num_dense_s3`` / ``dense_s3_args`` for ``psi``.
    """

    def __init__(
        self,
        num_dense_s1: int = 2,
        num_dense_s2: int = 2,
        num_dense_s3: int = 2,
        dense_s1_args: Mapping[str, Any] | None = None,
        dense_s2_args: Mapping[str, Any] | None = None,
        dense_s3_args: Mapping[str, Any] | None = None,
        pooling_fun: str = "mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_dense_s3 = positive_int("num_dense_s3", num_dense_s3)
        self.dense_s3_args = dense_s3_args
        self.invariant_module = InvariantModule(
            num_dense_s1, num_dense_s2, dense_s1_args, dense_s2_args, pooling_fun, name="invariant"
        )
        self.s3 = dense_stack(num_dense_s3, merge_settings(DEFAULT_DEEP_SET_DENSE, dense_s3_args), "s3")

    def build(self, input_shape):
        check_input_shape(type(self).__name__, input_shape, rank=3)
        self.invariant_module.build(input_shape)
        inv_units = self.invariant_module.compute_output_shape(input_shape)[-1]
        concat_dim = None if input_shape[-1] is None else input_shape[-1] + inv_units
        self.s3.build((input_shape[0], input_shape[1], concat_dim))
        self.built = True

    def call(self, x, training=False):
        invariant = self.invariant_module(x, training=training)  # (B, u)
        first = self.s3.layers[0]
        if first.lora_enabled or first.quantization_mode is not None:
            # Only a plain kernel can be split below; other Dense variants see the concatenation.
            target_shape = tuple(keras.ops.shape(x)[:-1]) + (invariant.shape[-1],)
            repeated = keras.ops.broadcast_to(keras.ops.expand_dims(invariant, axis=-2), target_shape)
            return self.s3(keras.ops.concatenate([x, repeated], axis=-1), training=training)
        # The first s3 layer sees [x_i, invariant] for every element i. Splitting its kernel,
        # [x_i, inv] @ W = x_i @ W[:d] + inv @ W[d:], computes the invariant's share once per
        # set instead of once per element: the same function and weights, ~20% fewer FLOPs.
        kernel, d = first.kernel, x.shape[-1]
        per_set = keras.ops.matmul(invariant, kernel[d:])
        if first.bias is not None:
            per_set = per_set + first.bias
        hidden = keras.ops.matmul(x, kernel[:d]) + keras.ops.expand_dims(per_set, axis=-2)
        if first.activation is not None:
            hidden = first.activation(hidden)
        for layer in self.s3.layers[1:]:
            hidden = layer(hidden, training=training)
        return hidden

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.s3.layers[-1].units)

    def get_config(self):
        config = super().get_config()
        inv = self.invariant_module
        config.update(
            num_dense_s1=inv.num_dense_s1,
            num_dense_s2=inv.num_dense_s2,
            num_dense_s3=self.num_dense_s3,
            dense_s1_args=inv.dense_s1_args,
            dense_s2_args=inv.dense_s2_args,
            dense_s3_args=self.dense_s3_args,
            pooling_fun=inv.pooling_fun,
        )
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class DeepSet(SummaryNetwork):
    """Permutation-invariant summary network ``(B, N, d) -> (B, summary_dim)``.

    Parameters
    ----------
    summary_dim : int, default 10
        Number of learned summary statistics (width of the final linear layer).
    num_dense_s1, num_dense_s2, num_dense_s3 : int, default 2
        Dense layers of the per-element (s1), post-pooling (s2) and equivariant (s3) MLPs.
    num_equiv : int, default 1
        Number of equivariant modules before the invariant one (0 gives a plain
        ``rho(pool phi(x))`` network). BayesFlow uses 2; one was as accurate on the
        quickstart problem at half the cost (:data:`amortflow.defaults.DEFAULT_DEEP_SET_NUM_EQUIV`).
    dense_s1_args, dense_s2_args, dense_s3_args : dict or None
        ``keras.layers.Dense`` arguments merged over
        :data:`amortflow.defaults.DEFAULT_DEEP_SET_DENSE` (64 ReLU units).
    pooling_fun : {"mean", "max", "sum"}, default "mean"
        Pooling over the set axis. ``"mean"`` keeps activations on the same scale for every
        ``N``; ``"sum"`` lets the network see ``N`` directly.

    Examples
    --------
    >>> import numpy as np
    >>> net = DeepSet(summary_dim=10)
    >>> tuple(net(np.zeros((32, 50, 4), "float32")).shape)
    (32, 10)
    >>> tuple(net(np.zeros((32, 7, 4), "float32")).shape)  # another set size, same network
    (32, 10)
    """

    def __init__(
        self,
        summary_dim: int = 10,
        num_dense_s1: int = 2,
        num_dense_s2: int = 2,
        num_dense_s3: int = 2,
        num_equiv: int = DEFAULT_DEEP_SET_NUM_EQUIV,
        dense_s1_args: Mapping[str, Any] | None = None,
        dense_s2_args: Mapping[str, Any] | None = None,
        dense_s3_args: Mapping[str, Any] | None = None,
        pooling_fun: str = "mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.summary_dim = positive_int("summary_dim", summary_dim)
        self.num_equiv = positive_int("num_equiv", num_equiv, minimum=0)
        num_dense_s1 = positive_int("num_dense_s1", num_dense_s1)
        num_dense_s2 = positive_int("num_dense_s2", num_dense_s2)
        num_dense_s3 = positive_int("num_dense_s3", num_dense_s3)
        module_args = (num_dense_s1, num_dense_s2)
        dense_args = (dense_s1_args, dense_s2_args)
        self.equivariant_modules = [
            EquivariantModule(*module_args, num_dense_s3, *dense_args, dense_s3_args, pooling_fun, name=f"equiv_{i}")
            for i in range(num_equiv)
        ]
        self.invariant_module = InvariantModule(*module_args, *dense_args, pooling_fun, name="invariant")
        self.output_layer = keras.layers.Dense(self.summary_dim, name="output")
        self._store_config(
            summary_dim=self.summary_dim,
            num_dense_s1=num_dense_s1,
            num_dense_s2=num_dense_s2,
            num_dense_s3=num_dense_s3,
            num_equiv=self.num_equiv,
            dense_s1_args=dense_s1_args,
            dense_s2_args=dense_s2_args,
            dense_s3_args=dense_s3_args,
            pooling_fun=pooling_fun,
        )

    def _build_layers(self, shape):
        shape = build_in_sequence(self.equivariant_modules, shape)
        build_in_sequence([self.invariant_module, self.output_layer], shape)

    def equivariant(self, x, training=False):
        """Return the output of the equivariant modules, ``(B, N, units_s3)`` (``x`` if ``num_equiv=0``)."""
        for module in self.equivariant_modules:
            x = module(x, training=training)
        return x

    def call(self, x, training=False):
        """Return the learned summary statistics of each set, shape ``(B, summary_dim)``."""
        invariant = self.invariant_module(self.equivariant(x, training=training), training=training)
        return self.output_layer(invariant)
