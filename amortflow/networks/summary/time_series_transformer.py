"""TimeSeriesTransformer: self-attention over time steps, summarised by a recurrent template.

Structure as in BayesFlow 1 (``num_attention_blocks`` self-attention blocks, then an LSTM
or GRU "template" whose last state goes through ``Dense(summary_dim)``), with a time
encoding concatenated to the inputs so that attention, which is blind to order, sees
where each step lies in the series. Any length ``T`` works.

The time encoding of step ``t = 0, 1, ..., T-1`` has ``time_encoding_dim`` features
``sin(omega_j t + phi_j)`` with ``omega_j = 10000^(-2 floor(j/2) / time_encoding_dim)`` and
``phi_j = (j mod 2) pi/2`` (Vaswani et al. 2017, i.e. sin/cos pairs). With
``time_encoding="learned"`` the frequencies and phases start there and are trained
(a periodic Time2Vec-style encoding, Kazemi et al. 2019).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from amortflow._checks import check_choice, positive_int
from amortflow.networks.summary.base import SummaryNetwork, build_in_sequence
from amortflow.networks.summary.attention import SelfAttentionBlock

_TEMPLATES = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@keras.saving.register_keras_serializable(package="amortflow")
class TimeEncoding(keras.layers.Layer):
    """``(B, T, d) -> (B, T, d + dim)``: concatenates ``sin(omega t + phi)`` features of the step index.

    Parameters
    ----------
    dim : int
        Number of time features.
    trainable_frequencies : bool
        Learn ``omega`` and ``phi`` (initialised to the sinusoidal values) instead of fixing them.
    """

    def __init__(self, dim: int = 8, trainable_frequencies: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim = positive_int("time_encoding_dim", dim)
        self.trainable_frequencies = bool(trainable_frequencies)
        j = np.arange(dim)
        omega = 10000.0 ** (-2.0 * (j // 2) / dim)
        phi = (j % 2) * (math.pi / 2.0)
        self.omega = self.add_weight(
            shape=(dim,), initializer=keras.initializers.Constant(omega), trainable=trainable_frequencies, name="omega"
        )
        self.phi = self.add_weight(
            shape=(dim,), initializer=keras.initializers.Constant(phi), trainable=trainable_frequencies, name="phi"
        )

    def call(self, x):
        shape = keras.ops.shape(x)
        steps = keras.ops.cast(keras.ops.arange(shape[1]), x.dtype)  # (T,)
        features = keras.ops.sin(steps[:, None] * self.omega + self.phi)  # (T, dim)
        features = keras.ops.broadcast_to(features[None], (shape[0], shape[1], self.dim))
        return keras.ops.concatenate([x, features], axis=-1)

    def compute_output_shape(self, input_shape):
        last = None if input_shape[-1] is None else input_shape[-1] + self.dim
        return (*tuple(input_shape)[:-1], last)

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, trainable_frequencies=self.trainable_frequencies)
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class TimeSeriesTransformer(SummaryNetwork):
    """Summary network for time series ``(B, T, input_dim) -> (B, summary_dim)``.

    Parameters
    ----------
    input_dim : int
        Number of features per time step.
    summary_dim : int, default 10
        Number of learned summary statistics.
    attention_settings, dense_settings : dict or None
        As in :class:`~amortflow.networks.summary.set_transformer.SetTransformer`.
    num_attention_blocks : int, default 2
        Self-attention blocks over time (width ``input_dim + time_encoding_dim``).
    template_type : {"lstm", "gru"}, default "lstm"
        Recurrent layer that summarises the attended sequence.
    template_dim : int, default 64
        Units of the recurrent template (per direction).
    bidirectional : bool, default False
        Read the sequence in both directions.
    time_encoding : {"sinusoidal", "learned", None}, default "sinusoidal"
        Time features concatenated to the inputs (see the module docstring); ``None`` when
        the inputs already carry time (e.g. a time-stamp column).
    time_encoding_dim : int, default 8
        Number of time features.
    use_layer_norm : bool, default True
        Layer normalisation inside the attention blocks.
    num_dense_fc : int, default 2
        Hidden Dense layers of each block's row-wise MLP.
    """

    def __init__(
        self,
        input_dim: int,
        summary_dim: int = 10,
        attention_settings: Mapping[str, Any] | None = None,
        dense_settings: Mapping[str, Any] | None = None,
        num_attention_blocks: int = 2,
        template_type: str = "lstm",
        template_dim: int = 64,
        bidirectional: bool = False,
        time_encoding: str | None = "sinusoidal",
        time_encoding_dim: int = 8,
        use_layer_norm: bool = True,
        num_dense_fc: int = 2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = input_dim = positive_int("input_dim", input_dim)
        self.summary_dim = summary_dim = positive_int("summary_dim", summary_dim)
        num_attention_blocks = positive_int("num_attention_blocks", num_attention_blocks, minimum=0)
        check_choice("template_type", template_type, tuple(_TEMPLATES))
        check_choice("time_encoding", time_encoding, ("sinusoidal", "learned", None))
        template_dim = positive_int("template_dim", template_dim)
        time_encoding_dim = positive_int("time_encoding_dim", time_encoding_dim)
        num_dense_fc = positive_int("num_dense_fc", num_dense_fc, minimum=0)
        self.time_encoding = None
        width = input_dim
        if time_encoding is not None:
            self.time_encoding = TimeEncoding(time_encoding_dim, time_encoding == "learned", name="time_encoding")
            width += self.time_encoding.dim
        self.attention_blocks = [
            SelfAttentionBlock(width, attention_settings, num_dense_fc, dense_settings, use_layer_norm, name=f"sab_{i}")
            for i in range(num_attention_blocks)
        ]
        template = _TEMPLATES[template_type](template_dim, name=template_type)
        self.template = keras.layers.Bidirectional(template, name="bidirectional") if bidirectional else template
        self.output_layer = keras.layers.Dense(summary_dim, name="output")
        self._store_config(
            input_dim=input_dim,
            summary_dim=summary_dim,
            attention_settings=attention_settings,
            dense_settings=dense_settings,
            num_attention_blocks=num_attention_blocks,
            template_type=template_type,
            template_dim=template_dim,
            bidirectional=bool(bidirectional),
            time_encoding=time_encoding,
            time_encoding_dim=time_encoding_dim,
            use_layer_norm=use_layer_norm,
            num_dense_fc=num_dense_fc,
        )

    def _build_layers(self, shape):
        if self.time_encoding is not None:
            shape = self.time_encoding.compute_output_shape(shape)
        for block in self.attention_blocks:
            block.build(shape)
        build_in_sequence([self.template, self.output_layer], shape)

    def call(self, x, training=False):
        """Return the learned summary statistics of each series, shape ``(B, summary_dim)``."""
        if self.time_encoding is not None:
            x = self.time_encoding(x)
        for block in self.attention_blocks:
            x = block(x, training=training)
        return self.output_layer(self.template(x, training=training))
