"""The plumbing every summary network shares: input check, build, output shape and config.

A summary network maps data ``(B, ...)`` to summaries ``(B, summary_dim)``. A subclass

* calls :meth:`SummaryNetwork._store_config` in ``__init__`` with exactly its constructor
  arguments (they are ``get_config``'s entries, so a config round-trips),
* implements :meth:`SummaryNetwork._build_layers` (create the weights of its layers for the
  checked input shape),
* sets ``input_rank`` (the number of input axes, checked in ``build``; ``None`` checks
  nothing) and, when it has one, an ``input_dim`` attribute (the expected last axis),
* sets ``summary_dim`` or overrides ``compute_output_shape``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import keras

from amortflow.networks.summary._common import check_input_shape


def build_in_sequence(layers: Iterable[keras.layers.Layer], shape: tuple) -> tuple:
    """Build ``layers`` one after the other from ``shape``; return the shape after the last one."""
    for layer in layers:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


class SummaryNetwork(keras.layers.Layer):
    """Base class of amortflow's summary networks ``(B, ...) -> (B, summary_dim)``."""

    #: Number of input axes ``build`` checks (batch, set or time axes, features); None: no check.
    input_rank: int | None = 3

    def _store_config(self, *mappings: Mapping[str, Any], **config: Any) -> None:
        """Remember the constructor arguments (``mappings`` merged, then ``config``) for ``get_config``."""
        self._config = {key: value for mapping in mappings for key, value in mapping.items()} | config

    def _constructor_config(self) -> dict:
        """The constructor arguments for ``get_config`` (override where some need serializing)."""
        return dict(self._config)

    def _check_input(self, input_shape) -> tuple:
        """Raise :class:`~amortflow.exceptions.ShapeError` for inputs of the wrong rank or last axis."""
        if self.input_rank is not None:
            check_input_shape(type(self).__name__, input_shape, rank=self.input_rank,
                              last_dim=getattr(self, "input_dim", None))  # fmt: skip
        return tuple(input_shape)

    def _build_layers(self, shape: tuple) -> None:
        raise NotImplementedError

    def build(self, input_shape):
        self._build_layers(self._check_input(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.summary_dim)

    def get_config(self):
        config = super().get_config()
        config.update(self._constructor_config())
        return config
