"""Small helpers shared by the summary networks: input-shape checks and MLP stacks.

Argument checks are :mod:`amortflow._checks`' (``positive_int``, ``check_choice``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from amortflow.exceptions import ShapeError


def check_input_shape(layer_name: str, input_shape, rank: int, last_dim: int | None = None) -> None:
    """Raise :class:`ShapeError` unless ``input_shape`` has ``rank`` axes (and last axis ``last_dim``)."""
    shape = tuple(input_shape)
    if len(shape) != rank:
        raise ShapeError(
            f"{layer_name} expects inputs with {rank} axes, e.g. {_example(rank, last_dim)}; "
            f"received shape {shape}"
        )
    if last_dim is not None and shape[-1] is not None and shape[-1] != last_dim:
        raise ShapeError(
            f"{layer_name} was created with input_dim={last_dim} and expects inputs of shape "
            f"{_example(rank, last_dim)}; received shape {shape}"
        )


def _example(rank: int, last_dim: int | None) -> str:
    inner = ["B"] + ["N"] * (rank - 2) + [str(last_dim) if last_dim is not None else "d"]
    return "(" + ", ".join(inner) + ")"


def dense_stack(num_layers: int, dense_args: Mapping[str, Any], name: str) -> keras.Sequential:
    """Return ``num_layers`` ``Dense(**dense_args)`` layers in a ``keras.Sequential``.

    Dense layers act on the last axis only, so the stack is applied to every element of a
    set or every time step of a series at once, without a Python loop.
    """
    return keras.Sequential(
        [keras.layers.Dense(**dict(dense_args), name=f"{name}_dense_{i}") for i in range(num_layers)],
        name=name,
    )
