"""SequenceNetwork and TimeSeriesTransformer specifics: causal multi-scale convolutions, time encoding, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks import SequenceNetwork, TimeSeriesTransformer
from amortflow.networks.summary import MultiConv1D, TimeEncoding

ATTENTION = {"num_heads": 2, "key_dim": 4}


def test_multi_conv_has_one_causal_convolution_per_kernel_size(rng):
    layer = MultiConv1D({"layer_args": {"filters": 5}, "min_kernel_size": 2, "max_kernel_size": 4})
    x = rng.normal(size=(2, 12, 3)).astype("float32")
    out = layer(x).numpy()
    assert [conv.kernel_size[0] for conv in layer.convs] == [2, 3, 4]
    assert out.shape == (2, 12, 5)
    # causal padding: changing the series after step 6 leaves steps 0..6 unchanged
    later_changed = x.copy()
    later_changed[:, 7:] += 1.0
    np.testing.assert_allclose(layer(later_changed).numpy()[:, :7], out[:, :7], atol=1e-6)
    assert np.max(np.abs(layer(later_changed).numpy()[:, 7:] - out[:, 7:])) > 1e-3


def test_sequence_network_reads_order_and_bidirectional_doubles_lstm_width(rng):
    net = SequenceNetwork(summary_dim=3, lstm_units=6, bidirectional=True)
    x = rng.normal(size=(2, 10, 2)).astype("float32")
    out = net(x).numpy()
    assert net.output_layer.kernel.shape == (12, 3)
    assert np.max(np.abs(net(x[:, ::-1]).numpy() - out)) > 1e-4  # a series is not a set


def test_sinusoidal_time_encoding_matches_its_formula(rng):
    """dim 4: [sin t, cos t, sin(t / 100), cos(t / 100)] since omega = 10000^(-2 floor(j/2) / 4)."""
    encoding = TimeEncoding(4)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    out = encoding(x).numpy()
    t = np.arange(6.0)[:, None]
    expected = np.concatenate([np.sin(t), np.cos(t), np.sin(t / 100), np.cos(t / 100)], axis=-1)
    np.testing.assert_array_equal(out[..., :3], x)
    np.testing.assert_allclose(out[..., 3:], np.broadcast_to(expected, (2, 6, 4)), atol=1e-6)
    assert not encoding.trainable_weights
    assert len(TimeEncoding(4, trainable_frequencies=True).trainable_weights) == 2


@pytest.mark.parametrize("template_type, layer_type", [("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)])
def test_time_series_transformer_uses_the_requested_template(template_type, layer_type, rng):
    net = TimeSeriesTransformer(2, summary_dim=4, attention_settings=ATTENTION, template_type=template_type, template_dim=5)
    out = net(rng.normal(size=(3, 8, 2)).astype("float32"))
    assert isinstance(net.template, layer_type) and out.shape == (3, 4)
    assert net.attention_blocks[0].input_dim == 2 + 8  # input features + default time_encoding_dim


def test_time_encoding_makes_attention_see_order(rng):
    """Without a template's memory, attention is order-blind; with the encoding it is not."""
    net = TimeSeriesTransformer(2, num_attention_blocks=1, attention_settings=ATTENTION, time_encoding_dim=4)
    x = rng.normal(size=(1, 7, 2)).astype("float32")
    encoded = net.time_encoding(x)
    reversed_encoded = net.time_encoding(x[:, ::-1])
    block = net.attention_blocks[0]
    out, out_rev = block(encoded).numpy(), block(reversed_encoded).numpy()
    assert np.max(np.abs(out[:, ::-1] - out_rev)) > 1e-3


def test_errors_name_the_argument_and_the_shape(rng):
    with pytest.raises(ArgumentError, match="template_type.*'rnn'"):
        TimeSeriesTransformer(2, template_type="rnn")
    with pytest.raises(ArgumentError, match="time_encoding.*'fourier'"):
        TimeSeriesTransformer(2, time_encoding="fourier")
    with pytest.raises(ShapeError, match=r"input_dim=2.*\(3, 8, 5\)"):
        TimeSeriesTransformer(2)(rng.normal(size=(3, 8, 5)).astype("float32"))
    with pytest.raises(ShapeError, match=r"3 axes.*\(3, 8\)"):
        SequenceNetwork()(rng.normal(size=(3, 8)).astype("float32"))
    with pytest.raises(ArgumentError, match="max_kernel_size.*1"):
        SequenceNetwork(conv_settings={"min_kernel_size": 2, "max_kernel_size": 1})
