"""The interface of a pure (weight-free) elementwise transform used inside coupling layers.

A transform maps ``x`` of shape ``(B, d)`` with parameters ``params`` of shape
``(B, d, params_per_dim)`` (produced by a conditioner) to ``(y, log_det)``, where
``log_det`` of shape ``(B,)`` is ``sum_i log|dy_i/dx_i|``. It holds no trainable state,
so the same transform object can be shared, serialized as a small config and tested alone.
"""

from __future__ import annotations


class Transform:
    """Base class: subclasses set ``params_per_dim`` and implement ``forward`` and ``inverse``."""

    #: Number of conditioner outputs each transformed dimension needs.
    params_per_dim: int = 0

    def forward(self, x, params):
        """Return ``(y, log_det)`` with shapes ``(B, d)`` and ``(B,)``."""
        raise NotImplementedError

    def inverse(self, y, params):
        """Return ``(x, log_det)``: the preimage and the log-det of the *inverse* map, ``(B,)``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)
