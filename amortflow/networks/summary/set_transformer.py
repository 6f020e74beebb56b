"""SetTransformer: attention-based permutation-invariant summary network.

Reference: Lee et al. (2019), "Set Transformer: A Framework for Attention-based
Permutation-Invariant Neural Networks", ICML.

``(B, N, input_dim)`` -> ``num_attention_blocks`` equivariant blocks (ISAB with learned
inducing points, or SAB when ``num_inducing_points=None``) -> PMA pooling into
``num_seeds`` vectors of width ``summary_dim`` -> flatten -> ``Dense(summary_dim)``
(as in BayesFlow 1). The equivariant blocks keep the width ``input_dim`` (residual
connections); ``attention_settings["key_dim"]`` sets the width inside the attention
heads, and PMA's row-wise MLP lifts every element to ``summary_dim`` features before
pooling, so the summary is not limited to ``input_dim`` numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from amortflow._checks import positive_int
from amortflow.networks.summary.base import SummaryNetwork
from amortflow.networks.summary.attention import (
    InducedSelfAttentionBlock,
    PoolingByMultiHeadAttention,
    SelfAttentionBlock,
)


@keras.saving.register_keras_serializable(package="amortflow")
class SetTransformer(SummaryNetwork):
    """Permutation-invariant summary network ``(B, N, input_dim) -> (B, summary_dim)``.

    Parameters
    ----------
    input_dim : int
        Number of features per set element (last input axis).
    summary_dim : int, default 10
        Number of learned summary statistics.
    num_attention_blocks : int, default 2
        Number of ISAB (or SAB) blocks before pooling.
    num_inducing_points : int or None, default 32
        Inducing points per ISAB block (cost ``O(N m)``); ``None`` uses full self-attention
        blocks (SAB, cost ``O(N^2)``).
    num_seeds : int, default 1
        Seed vectors of the PMA pooling; their outputs are concatenated.
    attention_settings : dict or None
        ``keras.layers.MultiHeadAttention`` arguments merged over
        :data:`amortflow.defaults.DEFAULT_ATTENTION_SETTINGS`.
    dense_settings : dict or None
        Hidden Dense arguments of each block's row-wise MLP, merged over
        :data:`amortflow.defaults.DEFAULT_ATTENTION_DENSE`.
    use_layer_norm : bool, default True
        Layer normalisation inside every block.
    num_dense_fc : int, default 2
        Hidden Dense layers of each block's row-wise MLP.
    """

    def __init__(
        self,
        input_dim: int,
        summary_dim: int = 10,
        num_attention_blocks: int = 2,
        num_inducing_points: int | None = 32,
        num_seeds: int = 1,
        attention_settings: Mapping[str, Any] | None = None,
        dense_settings: Mapping[str, Any] | None = None,
        use_layer_norm: bool = True,
        num_dense_fc: int = 2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = input_dim = positive_int("input_dim", input_dim)
        self.summary_dim = summary_dim = positive_int("summary_dim", summary_dim)
        num_attention_blocks = positive_int("num_attention_blocks", num_attention_blocks, minimum=0)
        num_seeds = positive_int("num_seeds", num_seeds)
        num_dense_fc = positive_int("num_dense_fc", num_dense_fc, minimum=0)
        block_args = dict(
            input_dim=input_dim,
            attention_settings=attention_settings,
            num_dense_fc=num_dense_fc,
            dense_settings=dense_settings,
            use_layer_norm=use_layer_norm,
        )
        if num_inducing_points is None:
            self.attention_blocks = [SelfAttentionBlock(**block_args, name=f"sab_{i}") for i in range(num_attention_blocks)]
        else:
            num_inducing_points = positive_int("num_inducing_points", num_inducing_points)
            self.attention_blocks = [
                InducedSelfAttentionBlock(num_inducing_points=num_inducing_points, **block_args, name=f"isab_{i}")
                for i in range(num_attention_blocks)
            ]
        pooling_args = {k: v for k, v in block_args.items() if k != "input_dim"}
        self.pooling = PoolingByMultiHeadAttention(summary_dim, num_seeds, **pooling_args, name="pma")
        self.output_layer = keras.layers.Dense(summary_dim, name="output")
        self._store_config(
            block_args,
            summary_dim=summary_dim,
            num_attention_blocks=num_attention_blocks,
            num_inducing_points=num_inducing_points,
            num_seeds=num_seeds,
        )

    def _build_layers(self, shape):
        for block in self.attention_blocks:
            block.build(shape)
        self.pooling.build(shape)
        self.output_layer.build((shape[0], self.pooling.num_points * self.summary_dim))

    def call(self, x, training=False):
        """Return the learned summary statistics of each set, shape ``(B, summary_dim)``."""
        for block in self.attention_blocks:
            x = block(x, training=training)
        pooled = self.pooling(x, training=training)  # (B, num_seeds, summary_dim)
        flat = keras.ops.reshape(pooled, (-1, self.pooling.num_points * self.summary_dim))
        return self.output_layer(flat)
