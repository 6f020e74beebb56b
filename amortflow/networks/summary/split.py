"""SplitNetwork: one summary network per part of the data, outputs concatenated.

As in BayesFlow 1: ``num_splits`` networks of the same type; network ``i`` receives
``split_data_configurator(i, x)`` and the ``num_splits`` summaries are concatenated.

``split_data_configurator`` is one of the built-in functions below (by name or object)
or any function registered with
``@keras.saving.register_keras_serializable(package=...)``, so the network saves to a
``.keras`` file. Built-ins:

* ``split_by_index_column`` (default): the last feature of every element holds the integer
  index of the split it belongs to (e.g. which sensor, which experimental condition).
  Split ``i`` gets the other features of its own elements, zeros for the remaining
  elements, and a 0/1 membership column in place of the index, so its network can tell
  real zeros from absent elements. Input ``(B, N, d)`` -> ``(B, N, d)`` per split.
* ``split_by_feature``: split ``i`` gets feature ``i`` only, ``(B, N, d) -> (B, N, 1)``
  (one network per channel; use ``num_splits = d``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import logging

import keras

from amortflow._checks import positive_int
from amortflow.exceptions import ArgumentError
from amortflow.networks.summary.base import SummaryNetwork

logger = logging.getLogger("amortflow")


@keras.saving.register_keras_serializable(package="amortflow")
def split_by_index_column(i, x):
    """Rows of ``x`` whose last feature equals ``i``: ``[x[..., :-1] * member, member]``, zeros elsewhere."""
    member = keras.ops.cast(keras.ops.equal(x[..., -1:], keras.ops.cast(i, x.dtype)), x.dtype)
    return keras.ops.concatenate([x[..., :-1] * member, member], axis=-1)


@keras.saving.register_keras_serializable(package="amortflow")
def split_by_feature(i, x):
    """Feature ``i`` of every element, keeping the axis: ``x[..., i:i+1]``."""
    return x[..., i : i + 1]


_BUILTIN_SPLITS = {"split_by_index_column": split_by_index_column, "split_by_feature": split_by_feature}


def _resolve_function(value) -> Callable:
    if callable(value):
        return value
    if isinstance(value, str) and value in _BUILTIN_SPLITS:
        return _BUILTIN_SPLITS[value]
    if isinstance(value, (str, dict)):
        function = keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else (
            keras.saving.get_registered_object(value)
        )
        if callable(function):
            return function
    raise ArgumentError(
        f"split_data_configurator must be one of {tuple(_BUILTIN_SPLITS)}, a registered function "
        f"or its serialized form; received {value!r}"
    )


def _serialize_function(function: Callable):
    """Built-ins by their short name, other functions by their Keras registration."""
    for name, builtin in _BUILTIN_SPLITS.items():
        if function is builtin:
            return name
    registered = keras.saving.get_registered_name(function)
    if keras.saving.get_registered_object(registered) is not function:
        raise ArgumentError(
            f"split_data_configurator {function!r} is not registered, so SplitNetwork cannot be saved; "
            "decorate it with @keras.saving.register_keras_serializable(package='...')"
        )
    return registered


def _resolve_network_type(value) -> type:
    cls = keras.saving.get_registered_object(value) if isinstance(value, str) else value
    if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
        raise ArgumentError(
            f"network_type must be a registered keras Layer class or its registered name "
            f"(e.g. 'amortflow>DeepSet'); received {value!r}"
        )
    return cls


@keras.saving.register_keras_serializable(package="amortflow")
class SplitNetwork(SummaryNetwork):
    """``num_splits`` networks applied to parts of the data, summaries concatenated: ``(B, ...) -> (B, sum s_i)``.

    Parameters
    ----------
    num_splits : int
        Number of parts (and networks).
    split_data_configurator : str or callable, default "split_by_index_column"
        ``f(i, x) -> x_i`` selecting the input of network ``i`` (see the module docstring).
        A custom function must be registered serializable.
    network_type : str or type, default "amortflow>DeepSet"
        Registered Keras layer class of the networks (class or registered name).
    network_kwargs : dict or None
        Constructor arguments of every network.
    """

    def __init__(
        self,
        num_splits: int,
        split_data_configurator: str | Callable = "split_by_index_column",
        network_type: str | type = "amortflow>DeepSet",
        network_kwargs: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_splits = positive_int("num_splits", num_splits)
        self.split_data_configurator = _resolve_function(split_data_configurator)
        self.network_type = _resolve_network_type(network_type)
        self.network_kwargs = dict(network_kwargs or {})
        self.networks = [
            self.network_type(**self.network_kwargs, name=f"split_{i}") for i in range(self.num_splits)
        ]

    def _split_shape(self, i: int, input_shape) -> tuple | None:
        """Shape of ``split_data_configurator(i, x)`` for ``x`` of ``input_shape``, by symbolic evaluation.

        Returns None when the function cannot run on symbolic Keras tensors (e.g. it uses
        raw TensorFlow ops); that network then builds on its first call instead.
        """
        spec = keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype)
        try:
            return tuple(self.split_data_configurator(i, spec).shape)
        except Exception:  # noqa: BLE001 - any failure only means "build lazily"
            logger.debug("SplitNetwork: split %d cannot be traced symbolically; building lazily", i)
            return None

    #: Any input rank: the split functions decide what each network receives.
    input_rank = None

    def _build_layers(self, shape):
        for i, net in enumerate(self.networks):
            split_shape = self._split_shape(i, shape)
            if split_shape is not None:
                net.build(split_shape)

    def call(self, x, training=False):
        summaries = [net(self.split_data_configurator(i, x), training=training) for i, net in enumerate(self.networks)]
        return keras.ops.concatenate(summaries, axis=-1)

    def compute_output_shape(self, input_shape):
        dims = []
        for i, net in enumerate(self.networks):
            shape = self._split_shape(i, input_shape)
            dims.append(getattr(net, "summary_dim", None) if shape is None else net.compute_output_shape(shape)[-1])
        return (input_shape[0], None if None in dims else sum(dims))

    def _constructor_config(self) -> dict:
        return dict(
            num_splits=self.num_splits,
            split_data_configurator=_serialize_function(self.split_data_configurator),
            network_type=keras.saving.get_registered_name(self.network_type),
            network_kwargs=self.network_kwargs,
        )
