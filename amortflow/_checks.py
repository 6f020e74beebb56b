"""One helper per job for the checks and conversions every part of amortflow needs.

* :func:`positive_int` and :func:`check_choice` validate constructor and call arguments
  (:class:`~amortflow.exceptions.ArgumentError` naming the argument and the value received).
* :func:`numeric_array` turns user data into a numeric numpy array (optionally a given dtype,
  optionally finite), raising the error class the caller's layer uses; :func:`shaped_array`
  also checks the number of axes and the leading axes (e.g. ``(B, G, ...)`` of two-level draws).
* :func:`take_rows` / :func:`take_raw_rows` slice simulations out of a raw dict with one rule
  for ``None``, lists and non-batchable context.
* :func:`resolve_rng` gives ``rng=None`` its one meaning: a generator derived from NumPy's
  global state, so that ``af.set_seed(s)`` (or ``np.random.seed(s)``) makes every random
  draw of amortflow repeatable.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, ShapeError

#: What :func:`resolve_rng` accepts.
SeedLike = np.random.Generator | np.random.SeedSequence | int | None

#: The six keys of a raw simulation dict (see docs/architecture.md). Here, not in
#: ``simulation/generative_model.py``, because the shard format and the Dask tasks read them too.
RAW_KEYS = (
    "prior_non_batchable_context",
    "prior_batchable_context",
    "prior_draws",
    "sim_non_batchable_context",
    "sim_batchable_context",
    "sim_data",
)

#: Raw keys with one entry per simulation; the other raw keys hold one value per batch
#: (non-batchable context, e.g. ``n_obs``), which row slicing keeps as it is. The two-level keys
#: of :class:`~amortflow.simulation.TwoLevelGenerativeModel` are per simulation too: leaving them
#: out would slice a batch's data but not its parameters.
BATCHABLE_RAW_KEYS = (
    "prior_draws",
    "sim_data",
    "prior_batchable_context",
    "sim_batchable_context",
    "hyper_prior_draws",
    "local_prior_draws",
    "shared_prior_draws",
)

#: The end of the messages that refuse ragged two-level data (groups of different sizes in one batch).
SAME_GROUP_SIZE = (
    "with every group of every data set the same size N (groups of different sizes within a batch are not "
    "supported; N may change between batches through a non-batchable context)"
)


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as a plain ``int >= minimum``, or raise :class:`ArgumentError` naming ``name``.

    Booleans are refused (``True`` is an int to Python, never a count to a user); NumPy
    integers are accepted and returned as plain ints, so configs stay JSON-serializable.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an int >= {minimum}"
        raise ArgumentError(f"{name} must be {expected}, received {value!r}.")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise :class:`ArgumentError` listing them."""
    choices = tuple(choices)
    if isinstance(value, (list, dict, set)) or value not in choices:  # unhashable values are never a choice
        raise ArgumentError(f"{name} must be one of {choices}, received {value!r}.")
    return value


def numeric_array(
    value: Any,
    name: str,
    *,
    dtype: Any = None,
    finite: bool = False,
    error: type[Exception] = ArgumentError,
    expected: str = "numbers (a numeric array)",
) -> np.ndarray:
    """``value`` as a numeric numpy array (booleans, integers, floats), or raise ``error``.

    Messages read ``"{name} must be numeric: received <what>; expected {expected}."`` (or
    ``"{name} is not a rectangular array (...)"``, ``"{name} must be finite: ..."``).

    Parameters
    ----------
    value : array-like
        The data; nested lists must be rectangular.
    name : str
        The subject of a message, e.g. ``"DefaultPosteriorConfigurator: 'sim_data'"``.
    dtype : numpy dtype, optional
        Convert to this dtype (a C-contiguous array); by default the array keeps its own.
    finite : bool, default False
        Also refuse NaN and inf.
    error : exception class, default ArgumentError
        What to raise: each layer keeps its own class (``ConfigurationError`` in configurators,
        ``DataError`` for shards, ``SimulationError`` for what user functions return).
    expected : str
        The end of a message: what the caller needs.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise error(f"{name} is not a rectangular array ({exc}); expected {expected}.") from exc
    if array.dtype.kind not in "biuf":
        raise error(f"{name} must be numeric: received {_describe_value(value, array)}; expected {expected}.")
    if dtype is not None:
        array = np.ascontiguousarray(array, dtype=dtype)
    if finite and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise error(f"{name} must be finite: received {bad} NaN or inf value(s) in shape {array.shape}; expected {expected}.")
    return array


def shaped_array(
    value: Any,
    name: str,
    *,
    rank: int,
    leading: tuple[int, ...],
    expected: str,
    error: type[Exception] = ArgumentError,
) -> np.ndarray:
    """``value`` as a finite float array with ``rank`` axes whose first axes are ``leading``.

    An array with one axis fewer gains a last axis of length 1 (one feature or parameter);
    booleans and integers become ``float64``, floats keep their precision. Not rectangular,
    not numeric or not finite: ``error`` (via :func:`numeric_array`); a wrong number of axes or
    wrong leading axes: :class:`~amortflow.exceptions.ShapeError`. Messages read
    ``"{name} must have shape {expected}, received shape (...)."``.

    Parameters
    ----------
    value : array-like
    name : str
        The subject of a message, e.g. ``"simulator 'f' returned 'sim_data', which"``.
    rank : int
        The number of axes required (after adding a missing last axis).
    leading : tuple of int
        The required sizes of the first ``len(leading)`` axes.
    expected : str
        The shape required, in words, e.g. ``"(4, 3, N, d) (batch, groups, observations, features)"``.
    error : exception class, default ArgumentError
        The class for values that are not rectangular, numeric or finite.
    """
    array = numeric_array(value, name, error=error, expected=f"shape {expected}")
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    if array.ndim == rank - 1:
        array = array[..., None]
    if array.ndim != rank or array.shape[: len(leading)] != tuple(leading):
        raise ShapeError(f"{name} must have shape {expected}, received shape {array.shape}.")
    return numeric_array(array, name, finite=True, error=error, expected=f"finite values of shape {expected}")


def _describe_value(value: Any, array: np.ndarray) -> str:
    if isinstance(value, np.ndarray) or array.dtype != object:
        return f"an array of dtype {array.dtype} with shape {array.shape}"
    return f"a {type(value).__name__}"


def take_rows(value: Any, index: Any) -> Any:
    """Rows ``index`` (an int, int array or slice) of one batchable entry.

    ``None`` stays ``None``; arrays and tensors are indexed (``value[index]``); a list or
    tuple (contexts that are not numeric, e.g. strings) becomes the list of its selected items.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if isinstance(index, slice):
            return list(value[index])
        return [value[i] for i in np.atleast_1d(index)]
    return value[index]


def take_raw_rows(raw: Mapping, index: Any, keys: Iterable[str] = BATCHABLE_RAW_KEYS) -> dict:
    """The simulations ``index`` of a raw dict: ``keys`` sliced by :func:`take_rows`, other keys kept.

    Non-batchable context (one value per batch) is shared by every simulation, so it is kept
    as it is, as are the keys not in ``keys``; ``None`` entries stay ``None``.
    """
    out = dict(raw)
    for key in keys:
        if key in out:
            out[key] = take_rows(out[key], index)
    return out


def resolve_rng(rng: SeedLike = None) -> np.random.Generator:
    """Turn ``rng`` into a ``numpy.random.Generator``.

    A Generator is returned as it is; an int, a sequence of ints or a ``SeedSequence`` seeds
    a new one; ``None`` derives a generator from NumPy's *global* state (four 32-bit words
    drawn from it), so that after ``af.set_seed(s)`` (or ``np.random.seed(s)``) functions given ``rng=None`` are
    as repeatable as functions that use ``np.random`` directly.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(np.random.randint(0, 2**32, size=4, dtype=np.uint64))
    return np.random.default_rng(rng)
