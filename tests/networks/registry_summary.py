"""Summary-network entries of the registry (``tests.networks.registry.SUMMARY_NETWORKS``).

Factory signature: ``factory(input_dim: int) -> (network, make_input)`` where ``network``
is a fresh, unbuilt summary network for inputs with ``input_dim`` features and
``make_input(batch_size: int, size: int, rng: numpy.random.Generator) -> np.ndarray``
returns a float32 batch whose set / time axes have length ``size`` (so tests can vary
both the batch size and the set size or series length).

``SUMMARY_TRAITS[name]`` says what the contract suite may expect of that case:
``output_dim`` (the width of the ``(B, output_dim)`` output for ``INPUT_DIM`` features) and
``invariant_axes`` (input axes whose permutation must leave the output unchanged).

Widths are tiny (8-16 units) to keep the suite fast. ``SummaryHolder`` is the small
registered ``keras.Model`` that holds a summary network as an attribute, the pattern the
amortizers use, for the ``.keras`` save/load tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from amortflow.networks.summary import (
    ConvSummary,
    DeepSet,
    HierarchicalNetwork,
    SequenceNetwork,
    SetTransformer,
    SplitNetwork,
    TimeSeriesTransformer,
)
from tests.networks.registry import register_summary

#: Number of input features every contract test uses.
INPUT_DIM = 3

_DENSE = {"units": 16}
_ATTENTION = {"num_heads": 2, "key_dim": 8}
_CONV = {"layer_args": {"filters": 8}}


@dataclass(frozen=True)
class SummaryTraits:
    """What the contract suite checks for one case (see the module docstring)."""

    output_dim: int
    invariant_axes: tuple = ()


SUMMARY_TRAITS: dict[str, SummaryTraits] = {}


def summary_case(name: str, output_dim: int, invariant_axes: tuple = ()):
    """Register ``factory`` under ``name`` together with its traits."""

    def decorator(factory):
        SUMMARY_TRAITS[name] = SummaryTraits(output_dim, invariant_axes)
        return register_summary(name)(factory)

    return decorator


def normal_input(input_dim: int, *inner_axes: int):
    """``make_input`` for ``(B, *inner_axes, size, input_dim)`` standard-normal data."""

    def make_input(batch_size, size, rng):
        return rng.normal(size=(batch_size, *inner_axes, size, input_dim)).astype("float32")

    return make_input


def index_column_input(input_dim: int, num_splits: int):
    """``make_input`` whose last feature is the integer split index of each element."""

    def make_input(batch_size, size, rng):
        x = rng.normal(size=(batch_size, size, input_dim)).astype("float32")
        x[..., -1] = rng.integers(0, num_splits, size=(batch_size, size))
        return x

    return make_input


def _deep_set(**kwargs):
    dense = {f"dense_s{i}_args": _DENSE for i in (1, 2, 3)}
    return DeepSet(**dense, **kwargs)


@summary_case("deep_set_mean", output_dim=6, invariant_axes=(1,))
def deep_set_mean(input_dim):
    return _deep_set(summary_dim=6), normal_input(input_dim)


@summary_case("deep_set_max_one_equiv", output_dim=4, invariant_axes=(1,))
def deep_set_max_one_equiv(input_dim):
    return _deep_set(summary_dim=4, num_equiv=1, num_dense_s1=1, pooling_fun="max"), normal_input(input_dim)


@summary_case("deep_set_sum_invariant_only", output_dim=5, invariant_axes=(1,))
def deep_set_sum_invariant_only(input_dim):
    return _deep_set(summary_dim=5, num_equiv=0, pooling_fun="sum"), normal_input(input_dim)


@summary_case("set_transformer_isab", output_dim=6, invariant_axes=(1,))
def set_transformer_isab(input_dim):
    net = SetTransformer(
        input_dim, summary_dim=6, num_inducing_points=4, attention_settings=_ATTENTION, dense_settings=_DENSE
    )
    return net, normal_input(input_dim)


@summary_case("set_transformer_sab_two_seeds_no_norm", output_dim=5, invariant_axes=(1,))
def set_transformer_sab(input_dim):
    net = SetTransformer(
        input_dim,
        summary_dim=5,
        num_attention_blocks=1,
        num_inducing_points=None,
        num_seeds=2,
        attention_settings=_ATTENTION,
        dense_settings=_DENSE,
        use_layer_norm=False,
    )
    return net, normal_input(input_dim)


@summary_case("sequence_lstm", output_dim=5)
def sequence_lstm(input_dim):
    return SequenceNetwork(summary_dim=5, lstm_units=8, conv_settings=_CONV), normal_input(input_dim)


@summary_case("sequence_bidirectional_wide_kernels", output_dim=4)
def sequence_bidirectional(input_dim):
    conv = {**_CONV, "max_kernel_size": 5}
    net = SequenceNetwork(summary_dim=4, num_conv_layers=1, lstm_units=8, bidirectional=True, conv_settings=conv)
    return net, normal_input(input_dim)


@summary_case("ts_transformer_lstm_sinusoidal", output_dim=6)
def ts_transformer_lstm(input_dim):
    net = TimeSeriesTransformer(
        input_dim, summary_dim=6, attention_settings=_ATTENTION, dense_settings=_DENSE, template_dim=8
    )
    return net, normal_input(input_dim)


@summary_case("ts_transformer_gru_learned_bidirectional", output_dim=4)
def ts_transformer_gru(input_dim):
    net = TimeSeriesTransformer(
        input_dim,
        summary_dim=4,
        attention_settings=_ATTENTION,
        dense_settings=_DENSE,
        num_attention_blocks=1,
        template_type="gru",
        template_dim=8,
        bidirectional=True,
        time_encoding="learned",
        time_encoding_dim=4,
    )
    return net, normal_input(input_dim)


@summary_case("ts_transformer_no_time_encoding", output_dim=3)
def ts_transformer_plain(input_dim):
    net = TimeSeriesTransformer(
        input_dim, summary_dim=3, attention_settings=_ATTENTION, dense_settings=_DENSE, time_encoding=None,
        template_dim=8,
    )
    return net, normal_input(input_dim)


@summary_case("hierarchical_deep_set_set_transformer", output_dim=5, invariant_axes=(1, 2))
def hierarchical(input_dim):
    inner = _deep_set(summary_dim=4, num_equiv=1)
    outer = SetTransformer(4, summary_dim=5, num_inducing_points=2, attention_settings=_ATTENTION, dense_settings=_DENSE)
    return HierarchicalNetwork([inner, outer]), normal_input(input_dim, 3)


@summary_case("split_index_column_deep_sets", output_dim=2 * 4, invariant_axes=(1,))
def split_index_column(input_dim):
    kwargs = {"summary_dim": 4, "num_equiv": 1, "dense_s1_args": _DENSE, "dense_s2_args": _DENSE, "dense_s3_args": _DENSE}
    return SplitNetwork(2, network_kwargs=kwargs), index_column_input(input_dim, 2)


@summary_case("split_by_feature_sequences", output_dim=INPUT_DIM * 2)
def split_by_feature(input_dim):
    kwargs = {"summary_dim": 2, "num_conv_layers": 1, "lstm_units": 4, "conv_settings": _CONV}
    return SplitNetwork(input_dim, "split_by_feature", SequenceNetwork, kwargs), normal_input(input_dim)


def grid_input(input_dim: int, spatial_dims: int, cells_per_size: int, frames: bool = False):
    """``make_input`` for fields ``(B, *grid, input_dim)`` with ``cells_per_size * size`` cells per grid axis;
    with ``frames``, ``(B, size, 8, ..., input_dim)``: ``size`` frames of a fixed grid."""

    def make_input(batch_size, size, rng):
        grid = (8,) * spatial_dims if frames else (cells_per_size * size,) * spatial_dims
        lead = (batch_size, size) if frames else (batch_size,)
        return rng.normal(size=(*lead, *grid, input_dim)).astype("float32")

    return make_input


@summary_case("conv_summary_2d", output_dim=5)
def conv_summary_2d(input_dim):
    return ConvSummary(summary_dim=5, num_stages=2, filters=4), grid_input(input_dim, 2, 4)


@summary_case("conv_summary_1d_gelu_kernel_5", output_dim=3)
def conv_summary_1d(input_dim):
    return ConvSummary(summary_dim=3, spatial_dims=1, num_stages=3, filters=4, kernel_size=5, activation="gelu"), \
        grid_input(input_dim, 1, 8)


@summary_case("conv_summary_3d_one_stage", output_dim=4)
def conv_summary_3d(input_dim):
    return ConvSummary(summary_dim=4, spatial_dims=3, num_stages=1, filters=4), grid_input(input_dim, 3, 2)


@summary_case("conv_summary_frames_then_sequence", output_dim=3)
def conv_summary_in_time(input_dim):
    time_network = SequenceNetwork(summary_dim=3, num_conv_layers=1, lstm_units=8, conv_settings=_CONV)
    net = ConvSummary(summary_dim=4, num_stages=2, filters=4, time_network=time_network)
    return net, grid_input(input_dim, 2, 0, frames=True)


@keras.saving.register_keras_serializable(package="amortflow_tests")
class SummaryHolder(keras.Model):
    """A minimal amortizer-like model: holds a summary network as an attribute and calls it."""

    def __init__(self, summary_net, **kwargs):
        super().__init__(**kwargs)
        if isinstance(summary_net, dict):
            summary_net = keras.saving.deserialize_keras_object(summary_net)
        self.summary_net = summary_net

    def call(self, x, training=False):
        return self.summary_net(x, training=training)

    def get_config(self):
        return {"name": self.name, "summary_net": keras.saving.serialize_keras_object(self.summary_net)}


def output_of(network, x: np.ndarray) -> np.ndarray:
    """Eager output of ``network`` on ``x`` as numpy (inference mode)."""
    return network(x, training=False).numpy()
