"""HierarchicalNetwork: summary networks applied level by level to nested sets.

For data ``(B, G, N, d)`` (``G`` groups of ``N`` exchangeable observations) and
``networks_list = [inner, outer]``: ``inner`` summarises each group's ``N`` observations
(run once on the ``(B * G, N, d)`` reshaped batch), giving ``(B, G, s_inner)``; ``outer``
summarises across groups, giving ``(B, s_outer)``. With ``L`` networks the input has
``L + 2`` axes; every level may have any size (``G``, ``N`` can change between batches).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.networks.summary.base import SummaryNetwork


def _config_without_build(layer) -> dict:
    """Serialize a nested network without its build state: the parent rebuilds it in ``build``.

    Keeping the build state out makes ``get_config`` the same before and after the first
    call, so ``get_config -> from_config -> get_config`` round-trips.
    """
    config = keras.saving.serialize_keras_object(layer)
    config.pop("build_config", None)
    return config


@keras.saving.register_keras_serializable(package="amortflow")
class HierarchicalNetwork(SummaryNetwork):
    """Summary network for nested sets ``(B, n_L, ..., n_1, d) -> (B, s_L)``.

    Parameters
    ----------
    networks_list : sequence of keras layers (or their serialized configs)
        ``networks_list[0]`` summarises the innermost set axis, each following network the
        next axis outwards. Each must map ``(B', n, d') -> (B', s)``.

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks import DeepSet
    >>> net = HierarchicalNetwork([DeepSet(summary_dim=8), DeepSet(summary_dim=10)])
    >>> tuple(net(np.zeros((16, 5, 30, 2), "float32")).shape)
    (16, 10)
    """

    def __init__(self, networks_list: Sequence, **kwargs):
        super().__init__(**kwargs)
        if isinstance(networks_list, (str, bytes)) or not isinstance(networks_list, Sequence) or not networks_list:
            raise ArgumentError(
                f"networks_list must be a non-empty list of summary networks, received {networks_list!r}"
            )
        self.networks = [
            keras.saving.deserialize_keras_object(net) if isinstance(net, dict) else net for net in networks_list
        ]
        for i, net in enumerate(self.networks):
            if not isinstance(net, keras.layers.Layer):
                raise ArgumentError(f"networks_list[{i}] must be a keras Layer, received {type(net).__name__}")

    @property
    def expected_rank(self) -> int:
        """Number of input axes: batch + one set axis per network + features."""
        return len(self.networks) + 2

    def _check_input(self, input_shape) -> tuple:
        shape = tuple(input_shape)
        self._check_rank(shape, describe=f"shape {shape}")
        return shape

    def _build_layers(self, shape):
        for net in self.networks:
            inner = (None, *shape[-2:])
            net.build(inner)
            shape = (*shape[:-2], net.compute_output_shape(inner)[-1])

    def call(self, x, training=False, return_all=False):
        """Return the top-level summary ``(B, s_L)``; with ``return_all=True`` the list of every level's output.

        Level ``k`` gives shape ``(B, n_L, ..., n_{k+2}, s_{k+1})``.
        """
        self._check_rank(x.shape, describe=describe_shape(x))
        outputs = []
        for net in self.networks:
            outer = keras.ops.shape(x)[:-2]
            flat = keras.ops.reshape(x, (-1, *keras.ops.shape(x)[-2:]))  # (prod(outer), n, d)
            summary = net(flat, training=training)
            x = keras.ops.reshape(summary, (*outer, summary.shape[-1]))
            outputs.append(x)
        return outputs if return_all else x

    def _check_rank(self, shape, describe: str) -> None:
        if len(shape) != self.expected_rank:
            raise ShapeError(
                f"HierarchicalNetwork with {len(self.networks)} networks expects inputs with "
                f"{self.expected_rank} axes (batch, {len(self.networks)} set axes, features); received {describe}"
            )

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for net in self.networks:
            shape = (*shape[:-2], net.compute_output_shape((None, *shape[-2:]))[-1])
        return shape

    def _constructor_config(self) -> dict:
        return {"networks_list": [_config_without_build(net) for net in self.networks]}
