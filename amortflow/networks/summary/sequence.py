"""SequenceNetwork: multi-scale 1-D convolutions followed by an LSTM, for time series.

Structure as in BayesFlow 1: each :class:`MultiConv1D` layer runs one ``Conv1D`` per
kernel size in ``[min_kernel_size, max_kernel_size]`` in parallel (local patterns at
several time scales), concatenates them along the channel axis and mixes them with a
``1x1`` convolution. Causal padding keeps the length ``T``, so any ``T`` works. An LSTM
reads the resulting sequence and its last state goes through ``Dense(summary_dim)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from amortflow._checks import positive_int
from amortflow.defaults import DEFAULT_MULTI_CONV, merge_settings
from amortflow.networks.summary.base import SummaryNetwork, build_in_sequence


@keras.saving.register_keras_serializable(package="amortflow")
class MultiConv1D(keras.layers.Layer):
    """``(B, T, d) -> (B, T, filters)``: parallel ``Conv1D`` of several kernel sizes, concatenated, mixed by a 1x1 conv.

    Parameters
    ----------
    settings : dict or None
        Merged over :data:`amortflow.defaults.DEFAULT_MULTI_CONV`: ``layer_args``
        (``Conv1D`` arguments, ``filters`` included), ``min_kernel_size``, ``max_kernel_size``.
    """

    def __init__(self, settings: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings
        merged = merge_settings(DEFAULT_MULTI_CONV, settings)
        low = positive_int("min_kernel_size", merged["min_kernel_size"])
        high = positive_int("max_kernel_size", merged["max_kernel_size"], minimum=low)
        layer_args = merged["layer_args"]
        self.convs = [keras.layers.Conv1D(kernel_size=k, **layer_args, name=f"conv_k{k}") for k in range(low, high + 1)]
        self.mix = keras.layers.Conv1D(
            filters=layer_args["filters"], kernel_size=1, padding="valid", name="mix"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
        self.mix.build((*shape[:-1], sum(conv.filters for conv in self.convs)))
        self.built = True

    def call(self, x, training=False):
        return self.mix(keras.ops.concatenate([conv(x) for conv in self.convs], axis=-1))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.mix.filters)

    def get_config(self):
        config = super().get_config()
        config.update(settings=self.settings)
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class SequenceNetwork(SummaryNetwork):
    """Summary network for time series ``(B, T, d) -> (B, summary_dim)``.

    Parameters
    ----------
    summary_dim : int, default 10
        Number of learned summary statistics.
    num_conv_layers : int, default 2
        Number of :class:`MultiConv1D` layers.
    lstm_units : int, default 128
        Units of the LSTM (per direction).
    bidirectional : bool, default False
        Read the sequence in both directions (output width ``2 * lstm_units``).
    conv_settings : dict or None
        :class:`MultiConv1D` settings, merged over :data:`amortflow.defaults.DEFAULT_MULTI_CONV`.
    """

    def __init__(
        self,
        summary_dim: int = 10,
        num_conv_layers: int = 2,
        lstm_units: int = 128,
        bidirectional: bool = False,
        conv_settings: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.summary_dim = summary_dim = positive_int("summary_dim", summary_dim)
        num_conv_layers = positive_int("num_conv_layers", num_conv_layers, minimum=0)
        lstm_units = positive_int("lstm_units", lstm_units)
        self.conv_layers = [MultiConv1D(conv_settings, name=f"multi_conv_{i}") for i in range(num_conv_layers)]
        lstm = keras.layers.LSTM(lstm_units, name="lstm")
        self.recurrent = keras.layers.Bidirectional(lstm, name="bidirectional") if bidirectional else lstm
        self.output_layer = keras.layers.Dense(summary_dim, name="output")
        self._store_config(
            summary_dim=summary_dim,
            num_conv_layers=num_conv_layers,
            lstm_units=lstm_units,
            bidirectional=bool(bidirectional),
            conv_settings=conv_settings,
        )

    def _build_layers(self, shape):
        build_in_sequence([*self.conv_layers, self.recurrent, self.output_layer], shape)

    def call(self, x, training=False):
        """Return the learned summary statistics of each series, shape ``(B, summary_dim)``."""
        for layer in self.conv_layers:
            x = layer(x, training=training)
        return self.output_layer(self.recurrent(x, training=training))
