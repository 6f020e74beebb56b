"""Small helpers shared by the summary networks: argument checks and MLP stacks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import keras

from amortflow.exceptions import ArgumentError, ShapeError, describe_shape


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise :class:`ArgumentError` naming ``name`` if it is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ArgumentError(f"{name} must be an int >= {minimum}, received {value!r}")
    return int(value)  # a plain int also for NumPy integers, so configs stay JSON-serializable


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`ArgumentError`."""
    if value not in choices:
        raise ArgumentError(f"{name} must be one of {choices}, received {value!r}")
    return value


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


def check_tensor_rank(layer_name: str, x, rank: int) -> None:
    """Eager/trace-time rank check with a message that shows the value received."""
    if len(x.shape) != rank:
        raise ShapeError(f"{layer_name} expects inputs with {rank} axes; received {describe_shape(x)}")


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
