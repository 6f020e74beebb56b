"""Calling user functions and checking what they return.

Every prior, context and simulator function goes through :func:`call_user`, and every
array they return through the checks below, so that a bad return value fails *here*,
with a message naming the function, the output key, the shape received and the shape
expected, instead of deep inside a network three calls later.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from amortflow._checks import SeedLike, numeric_array, resolve_rng  # noqa: F401 - re-exported
from amortflow.exceptions import AmortflowError, ShapeError, SimulationError, describe_shape

# ``resolve_rng`` and ``SeedLike`` live in amortflow._checks (one meaning of ``rng=None`` for
# the whole library); they are re-exported here for the simulation modules that import them.


def accepts_rng(fn: Callable) -> bool:
    """Whether ``fn`` has a parameter named ``rng`` (then amortflow passes its generator as ``rng=``)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and some C extensions have no signature
        return False
    param = parameters.get("rng")
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)


def function_label(role: str, fn: Callable) -> str:
    """A name for error messages, e.g. ``"simulator_fun 'gaussian_sim'"``."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return f"{role} {name!r}"


class UserFunction:
    """A user callable with its role (for messages) and whether it takes ``rng``; checked once."""

    def __init__(self, fn: Callable, role: str):
        if not callable(fn):
            raise SimulationError(f"{role} must be callable, received {describe_shape(fn)}.")
        self.fn = fn
        self.role = role
        self.label = function_label(role, fn)
        self.takes_rng = accepts_rng(fn)

    def __call__(self, *args, rng: np.random.Generator, during: str = "") -> Any:
        """Call the function, passing ``rng`` only if it asks for it; wrap its exceptions."""
        try:
            if self.takes_rng:
                return self.fn(*args, rng=rng)
            return self.fn(*args)
        except AmortflowError:
            raise
        except Exception as exc:  # noqa: BLE001 - any user error becomes a SimulationError with context
            where = f" {during}" if during else ""
            raise SimulationError(f"{self.label} raised {type(exc).__name__}{where}: {exc}") from exc


def to_numeric(value: Any, label: str, key: str, where: str = "") -> np.ndarray:
    """Convert ``value`` to a real-valued numpy array, or raise a :class:`SimulationError`.

    Booleans and integers become ``float64``; floats keep their precision.
    """
    name = f"{label} returned '{key}'{where}, which"
    array = numeric_array(value, name, error=SimulationError, expected="numbers (a float array)")
    return array.astype(np.float64) if array.dtype.kind in "biu" else array


def stack_per_sample(values: Sequence[Any], label: str, key: str) -> np.ndarray:
    """Stack one numeric output per simulation into ``(B, ...)``; all must have the same shape."""
    arrays = [to_numeric(v, label, key, where=f" (simulation {i})") for i, v in enumerate(values)]
    first = arrays[0].shape
    for i, array in enumerate(arrays[1:], start=1):
        if array.shape != first:
            raise ShapeError(
                f"{label} returned '{key}' of inconsistent shapes within one batch: shape {array.shape} "
                f"for simulation {i}, but shape {first} for simulation 0; expected every simulation of "
                "a batch to have the same shape."
            )
    return np.stack(arrays, axis=0)


def check_batch_dim(array: np.ndarray, batch_size: int, label: str, key: str, expected: str) -> None:
    """Raise a :class:`ShapeError` unless ``array`` has at least one axis of length ``batch_size`` first."""
    if array.ndim == 0 or array.shape[0] != batch_size:
        raise ShapeError(
            f"{label} returned '{key}' with shape {array.shape} for batch_size={batch_size}; "
            f"expected shape {expected}."
        )


def nonfinite_rows(array: np.ndarray) -> np.ndarray:
    """Boolean mask ``(B,)``: rows of ``array`` with any NaN or inf."""
    return ~np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)


def format_vector(vector: np.ndarray) -> str:
    """A compact, readable rendering of a parameter vector for messages."""
    values = np.asarray(vector, dtype=float).ravel()
    shown = ", ".join(f"{v:.4g}" for v in values[:8])
    return f"[{shown}{', ...' if values.size > 8 else ''}]"


def maybe_numeric_batch(values: list, batch_size: int) -> np.ndarray | list:
    """Stack per-simulation context values into an array when they are numeric and rectangular.

    Contexts may be anything the user's functions need (even strings); when they are
    numbers they become one array ``(B, ...)`` so that they can be saved and configured.
    """
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        return list(values)
    if array.dtype.kind in "biuf" and array.ndim >= 1 and array.shape[0] == batch_size:
        return array
    return list(values)


def select_rows(batch: np.ndarray | list | None, rows: np.ndarray) -> np.ndarray | list | None:
    """Rows ``rows`` (integer indices) of a batchable context that is an array, a list or None."""
    if batch is None:
        return None
    if isinstance(batch, np.ndarray):
        return batch[rows]
    return [batch[i] for i in rows]


def replace_rows(batch, rows: np.ndarray, new):
    """Write ``new`` into rows ``rows`` of ``batch`` (array or list); returns the updated batch."""
    if batch is None:
        return None
    if isinstance(batch, np.ndarray) and isinstance(new, np.ndarray) and new.shape[1:] == batch.shape[1:]:
        batch = batch.copy()
        batch[rows] = new
        return batch
    merged = list(batch)
    for row, value in zip(rows, new):
        merged[row] = value
    return maybe_numeric_batch(merged, len(merged))
