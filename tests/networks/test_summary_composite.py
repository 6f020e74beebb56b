"""HierarchicalNetwork and SplitNetwork: they apply their networks exactly as documented."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks import DeepSet, HierarchicalNetwork, SequenceNetwork, SplitNetwork
from amortflow.networks.summary import split_by_feature, split_by_index_column

SMALL = {"dense_s1_args": {"units": 8}, "dense_s2_args": {"units": 8}, "dense_s3_args": {"units": 8}}


def test_hierarchical_network_summarises_each_group_then_across_groups(rng):
    inner, outer = DeepSet(summary_dim=4, **SMALL), DeepSet(summary_dim=3, **SMALL)
    net = HierarchicalNetwork([inner, outer])
    x = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    level_1, level_2 = net(x, return_all=True)
    per_group = np.stack([inner(x[:, g]).numpy() for g in range(5)], axis=1)  # (2, 5, 4)
    np.testing.assert_allclose(level_1.numpy(), per_group, atol=1e-6)
    np.testing.assert_allclose(level_2.numpy(), outer(per_group).numpy(), atol=1e-6)
    np.testing.assert_array_equal(net(x).numpy(), level_2.numpy())


def test_hierarchical_network_checks_its_arguments_and_input_rank(rng):
    with pytest.raises(ArgumentError, match="non-empty list"):
        HierarchicalNetwork([])
    with pytest.raises(ArgumentError, match=r"networks_list\[1\].*str"):
        HierarchicalNetwork([DeepSet(), "deep_set"])
    with pytest.raises(ShapeError, match=r"4 axes.*\(2, 7, 3\)"):
        HierarchicalNetwork([DeepSet(), DeepSet()])(rng.normal(size=(2, 7, 3)).astype("float32"))


def test_split_by_index_column_selects_the_rows_of_each_split():
    x = np.array([[[1.0, 2.0, 0.0], [3.0, 4.0, 1.0], [5.0, 6.0, 0.0]]], "float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(split_by_index_column(0, x)), [[[1, 2, 1], [0, 0, 0], [5, 6, 1]]]
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(split_by_index_column(1, x)), [[[0, 0, 0], [3, 4, 1], [0, 0, 0]]]
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(split_by_feature(1, x)), x[..., 1:2])


def test_split_network_concatenates_the_summaries_of_its_networks(rng):
    net = SplitNetwork(3, "split_by_feature", SequenceNetwork, {"summary_dim": 2, "lstm_units": 4})
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    out = net(x).numpy()
    expected = np.concatenate([sub(x[..., i : i + 1]).numpy() for i, sub in enumerate(net.networks)], axis=-1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert net.get_config()["network_type"] == "amortflow>SequenceNetwork"


@keras.saving.register_keras_serializable(package="amortflow_tests")
def first_or_second_half(i, x):
    half = x.shape[1] // 2
    return x[:, :half] if i == 0 else x[:, half:]


def test_split_network_takes_registered_functions_and_rejects_unregistered_ones(rng):
    net = SplitNetwork(2, first_or_second_half, network_kwargs={"summary_dim": 2, **SMALL})
    assert net.get_config()["split_data_configurator"] == "amortflow_tests>first_or_second_half"
    clone = SplitNetwork.from_config(net.get_config())
    assert clone.split_data_configurator is first_or_second_half
    assert clone(rng.normal(size=(2, 8, 3)).astype("float32")).shape == (2, 4)
    with pytest.raises(ArgumentError, match="not registered"):
        SplitNetwork(2, lambda i, x: x).get_config()
    with pytest.raises(ArgumentError, match="split_data_configurator.*'by_magic'"):
        SplitNetwork(2, "by_magic")
    with pytest.raises(ArgumentError, match="network_type.*'NoSuchNet'"):
        SplitNetwork(2, network_type="NoSuchNet")
