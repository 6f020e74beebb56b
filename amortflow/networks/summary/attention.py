"""Attention blocks for sets and sequences (Lee et al. 2019, "Set Transformer", ICML).

* ``MAB(X, Y)``: ``H = LN(X + Multihead(X, Y, Y))``, ``MAB(X, Y) = LN(H + rFF(H))``;
  ``rFF`` is a row-wise MLP ending in ``Dense(input_dim)``, so every block keeps the width
  ``input_dim`` of its queries (residual connections need it).
* ``SAB(X) = MAB(X, X)``: self-attention, permutation-equivariant, ``O(N^2)``.
* ``ISAB(X) = MAB(X, MAB(I, X))`` with ``m`` learned inducing points ``I``: equivariant, ``O(N m)``.
* ``PMA(Z) = MAB(S, rFF(Z))`` with ``k`` learned seeds ``S``: pools a set into ``k`` vectors
  of width ``output_dim`` (``rFF`` maps the elements to that width first), invariant to
  permutations of ``Z``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from amortflow._checks import positive_int
from amortflow.defaults import DEFAULT_ATTENTION_DENSE, DEFAULT_ATTENTION_SETTINGS, merge_settings
from amortflow.networks.summary._common import dense_stack


def _batch_broadcast(points, like):
    """Repeat learned ``(m, d)`` points for every batch entry of ``like`` -> ``(B, m, d)``."""
    batch_size = keras.ops.shape(like)[0]
    return keras.ops.broadcast_to(keras.ops.expand_dims(points, 0), (batch_size, *points.shape))


@keras.saving.register_keras_serializable(package="amortflow")
class MultiHeadAttentionBlock(keras.layers.Layer):
    """``MAB(X, Y)``: queries ``X`` ``(B, n, input_dim)`` attend to ``Y`` ``(B, N, d_y)`` -> ``(B, n, input_dim)``.

    Parameters
    ----------
    input_dim : int
        Width of the queries and of the output.
    attention_settings : dict or None
        ``keras.layers.MultiHeadAttention`` arguments merged over ``DEFAULT_ATTENTION_SETTINGS``.
    num_dense_fc : int
        Hidden Dense layers of ``rFF`` (before its final ``Dense(input_dim)``).
    dense_settings : dict or None
        Dense arguments of those hidden layers, merged over ``DEFAULT_ATTENTION_DENSE``.
    use_layer_norm : bool
        Apply the two layer normalisations.
    """

    def __init__(
        self,
        input_dim: int,
        attention_settings: Mapping[str, Any] | None = None,
        num_dense_fc: int = 2,
        dense_settings: Mapping[str, Any] | None = None,
        use_layer_norm: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = positive_int("input_dim", input_dim)
        self.num_dense_fc = positive_int("num_dense_fc", num_dense_fc, minimum=0)
        self.attention_settings = attention_settings
        self.dense_settings = dense_settings
        self.use_layer_norm = bool(use_layer_norm)
        self.attention = keras.layers.MultiHeadAttention(
            **merge_settings(DEFAULT_ATTENTION_SETTINGS, attention_settings), name="attention"
        )
        self.fc = dense_stack(num_dense_fc, merge_settings(DEFAULT_ATTENTION_DENSE, dense_settings), "fc")
        self.fc.add(keras.layers.Dense(input_dim, name="fc_out"))
        self.norms = [keras.layers.LayerNormalization(name=f"norm_{i}") for i in range(2 * use_layer_norm)]

    def build(self, x_shape, y_shape):
        x_shape = (*tuple(x_shape)[:-1], self.input_dim)
        self.attention.build(x_shape, tuple(y_shape))
        self.fc.build(x_shape)
        for norm in self.norms:
            norm.build(x_shape)
        self.built = True

    def call(self, x, y, training=False):
        h = x + self.attention(x, y, training=training)
        if self.use_layer_norm:
            h = self.norms[0](h)
        out = h + self.fc(h, training=training)
        return self.norms[1](out) if self.use_layer_norm else out

    def compute_output_shape(self, x_shape, y_shape):
        return (*tuple(x_shape)[:-1], self.input_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            attention_settings=self.attention_settings,
            num_dense_fc=self.num_dense_fc,
            dense_settings=self.dense_settings,
            use_layer_norm=self.use_layer_norm,
        )
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class SelfAttentionBlock(MultiHeadAttentionBlock):
    """``SAB(X) = MAB(X, X)``: ``(B, N, input_dim) -> (B, N, input_dim)``, permutation-equivariant."""

    def build(self, input_shape):
        super().build(input_shape, input_shape)

    def call(self, x, training=False):
        return super().call(x, x, training=training)

    def compute_output_shape(self, input_shape):
        return super().compute_output_shape(input_shape, input_shape)


class _LearnedPointsBlock(keras.layers.Layer):
    """Shared constructor of blocks that own ``num_points`` learned vectors of width ``dim``."""

    def __init__(self, dim, num_points, attention_settings, num_dense_fc, dense_settings, use_layer_norm, **kwargs):
        super().__init__(**kwargs)
        self.block_args = dict(
            attention_settings=attention_settings,
            num_dense_fc=num_dense_fc,
            dense_settings=dense_settings,
            use_layer_norm=use_layer_norm,
        )
        self.dim = dim
        self.num_points = num_points
        self.points = self.add_weight(shape=(num_points, dim), initializer="glorot_uniform", name="points")


@keras.saving.register_keras_serializable(package="amortflow")
class InducedSelfAttentionBlock(_LearnedPointsBlock):
    """``ISAB_m(X) = MAB(X, MAB(I, X))`` with ``m = num_inducing_points`` learned points ``I``.

    ``(B, N, input_dim) -> (B, N, input_dim)``, permutation-equivariant, cost ``O(N m)``.
    Other arguments as in :class:`MultiHeadAttentionBlock`.
    """

    def __init__(
        self,
        input_dim: int,
        num_inducing_points: int = 32,
        attention_settings: Mapping[str, Any] | None = None,
        num_dense_fc: int = 2,
        dense_settings: Mapping[str, Any] | None = None,
        use_layer_norm: bool = True,
        **kwargs,
    ):
        input_dim = positive_int("input_dim", input_dim)
        num_points = positive_int("num_inducing_points", num_inducing_points)
        super().__init__(input_dim, num_points, attention_settings, num_dense_fc, dense_settings, use_layer_norm, **kwargs)
        self.input_dim = input_dim
        self.induced = MultiHeadAttentionBlock(input_dim, **self.block_args, name="induced")
        self.output_block = MultiHeadAttentionBlock(input_dim, **self.block_args, name="output")

    def build(self, input_shape):
        points_shape = (input_shape[0], self.num_points, self.input_dim)
        self.induced.build(points_shape, tuple(input_shape))
        self.output_block.build(tuple(input_shape), points_shape)
        self.built = True

    def call(self, x, training=False):
        h = self.induced(_batch_broadcast(self.points, x), x, training=training)
        return self.output_block(x, h, training=training)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.input_dim)

    def get_config(self):
        config = super().get_config()
        config.update(self.block_args, input_dim=self.input_dim, num_inducing_points=self.num_points)
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class PoolingByMultiHeadAttention(_LearnedPointsBlock):
    """``PMA_k(Z) = MAB(S, rFF(Z))`` with ``k = num_seeds`` learned seeds ``S`` of width ``output_dim``.

    ``(B, N, d) -> (B, k, output_dim)``, invariant to permutations of the ``N`` axis. ``rFF``
    maps every element from ``d`` to ``output_dim`` features before the attention pooling,
    so the pooled width does not depend on (and is not limited by) the input width ``d``.
    Other arguments as in :class:`MultiHeadAttentionBlock`.
    """

    def __init__(
        self,
        output_dim: int,
        num_seeds: int = 1,
        attention_settings: Mapping[str, Any] | None = None,
        num_dense_fc: int = 2,
        dense_settings: Mapping[str, Any] | None = None,
        use_layer_norm: bool = True,
        **kwargs,
    ):
        output_dim = positive_int("output_dim", output_dim)
        num_points = positive_int("num_seeds", num_seeds)
        super().__init__(output_dim, num_points, attention_settings, num_dense_fc, dense_settings, use_layer_norm, **kwargs)
        self.output_dim = output_dim
        self.fc = dense_stack(num_dense_fc, merge_settings(DEFAULT_ATTENTION_DENSE, dense_settings), "fc")
        self.fc.add(keras.layers.Dense(output_dim, name="fc_out"))
        self.pooling = MultiHeadAttentionBlock(output_dim, **self.block_args, name="pooling")

    def build(self, input_shape):
        self.fc.build(tuple(input_shape))
        z_shape = (*tuple(input_shape)[:-1], self.output_dim)
        self.pooling.build((input_shape[0], self.num_points, self.output_dim), z_shape)
        self.built = True

    def call(self, x, training=False):
        z = self.fc(x, training=training)
        return self.pooling(_batch_broadcast(self.points, x), z, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_points, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(self.block_args, output_dim=self.output_dim, num_seeds=self.num_points)
        return config
