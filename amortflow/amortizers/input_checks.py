"""Checks of the inputs of every public inference call, made before any TensorFlow op.

An amortizer records the axes of every input it is trained on
(:attr:`~amortflow.amortizers.Amortizer.trained_shapes`, saved in its ``.keras`` file). A query
(``sample``, ``log_posterior``, ``log_likelihood``, ``log_ratio``, ``posterior_probs``,
``amortizer(inputs)``, MCMC on ``x_obs``) checks each input against them:

* type: a numeric array, tensor, list or tuple; a list or tuple of data sets is stacked into
  one array (it is not read as "the first data set");
* shape: ``(n_datasets, *trained axes)`` with the trained feature (last) axis; one data set
  without its batch axis is accepted with a warning and gets one; a set size or a number of
  time steps other than the trained one(s) is accepted with a warning (set and sequence
  networks handle any size, but the network never saw it);
* at least one data set, and no axis of length zero (an empty set has no summary);
* finite values: NaN or inf raise :class:`~amortflow.exceptions.NonFiniteInputError`, or with
  ``nonfinite="drop"`` the set elements (along axis 1) that hold them are dropped;
* one row per data set in every key (parameters, conditions, observables).

The output is checked too: NaN (or +inf) from finite inputs raises
:class:`~amortflow.exceptions.NonFiniteOutputError` instead of coming back as an answer
(``-inf`` stays allowed in log densities: zero density is an answer).

Where an amortizer has no record yet (never trained or called), only what needs no record is
checked. A traced call (inside ``tf.function``, i.e. training) is not checked here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from amortflow.amortizers.base import check_input_dict
from amortflow.exceptions import (
    ArgumentError,
    ConfigurationError,
    NonFiniteInputError,
    NonFiniteOutputError,
    ShapeError,
    describe_shape,
)

logger = logging.getLogger("amortflow")

NONFINITE_CHOICES = ("raise", "drop")
CONDITION_KEYS = ("summary_conditions", "direct_conditions")
#: Keys whose axis 1 holds set elements or observations (where ``nonfinite="drop"`` can drop some).
SET_KEYS = ("summary_conditions", "observables")


# --- one array ---------------------------------------------------------------------------
def expected_shape(axes: list, extra: tuple = ()) -> str:
    """``(n_datasets, N, 2)``-style text for trained ``axes`` (None: an axis that varies)."""
    middle = len(axes) - 1
    names = []
    for i, dim in enumerate(axes):
        if dim is not None:
            names.append(str(dim))
        elif i == middle:
            names.append("d")
        else:
            names.append("N" if middle == 1 else f"N{i + 1}")
    return "(" + ", ".join(["n_datasets", *extra, *names]) + ")"


def as_input(owner: str, key: str, value: Any):
    """``value`` as a float32 array (lists and tuples stacked), or an eager tensor left as it is.

    Tensors are not converted: a copy to numpy would cut gradients that flow into the inputs.
    """
    if tf.is_tensor(value):
        if not (value.dtype.is_floating or value.dtype.is_integer or value.dtype == tf.bool):
            raise ArgumentError(f"{owner}: {key} must hold numbers, received a tensor of dtype {value.dtype.name}.")
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists of data sets
        raise ShapeError(
            f"{owner}: {key} must be an array (n_datasets, ...); the {type(value).__name__} received could not be "
            f"stacked into one ({exc}). Data sets of different sizes need one call each."
        ) from exc
    if array.dtype.kind not in "biuf":
        raise ArgumentError(f"{owner}: {key} must hold numbers, received {describe_shape(array)}.")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: refused below
        return array.astype(np.float32, copy=False)


def _shape(array) -> list:
    return [None if dim is None else int(dim) for dim in array.shape]


def _add_batch_axis(array):
    return array[None] if isinstance(array, np.ndarray) else tf.expand_dims(array, 0)


def fit_batch_axis(owner: str, key: str, array, axes: list):
    """``array`` with a batch axis: ``(n_datasets, *axes)``; one data set without it gets one.

    A vector ``(B,)`` for a key with one feature (``axes == [1]``) is ``B`` data sets ``(B, 1)``.
    """
    shape = _shape(array)
    if len(shape) == len(axes) + 1:
        return array
    if len(shape) == 1 and axes == [1]:
        return array[:, None] if isinstance(array, np.ndarray) else tf.reshape(array, (-1, 1))
    if len(shape) == len(axes) and len(shape) > 0 and shape[-1] == axes[-1]:
        logger.warning(
            "%s: %s has %s, one data set without its batch axis; it is used as shape %s. Pass %s[None] "
            "(a batch of one) to say so and silence this warning.",
            owner, key, describe_shape(array), (1, *shape), key,
        )  # fmt: skip
        return _add_batch_axis(array)
    hint = " (one axis too many)" if len(shape) > len(axes) + 1 else ""
    raise ShapeError(
        f"{owner}: {key} must have shape {expected_shape(axes)}, as in training, received "
        f"{describe_shape(array)}{hint}. One data set is {key}[None] (batch axis of size 1)."
    )


def check_axes(owner: str, key: str, array, axes: list, extra: tuple = ()) -> None:
    """ShapeError unless the feature axis is the trained one; a warning where a fixed middle axis differs."""
    shape = _shape(array)[1 + len(extra) :]
    if axes[-1] is not None and shape[-1] is not None and shape[-1] != axes[-1]:
        raise ShapeError(
            f"{owner}: {key} must have shape {expected_shape(axes, extra)}, as in training, received "
            f"{describe_shape(array)}: {shape[-1]} features on the last axis instead of {axes[-1]}."
        )
    changed = [(got, want) for got, want in zip(shape[:-1], axes[:-1]) if want is not None and got not in (None, want)]
    if changed:
        logger.warning(
            "%s: %s has %s, but the amortizer was trained on %s only; the network is used outside its training data.",
            owner, key, describe_shape(array), expected_shape(axes),
        )  # fmt: skip


def check_nonempty(owner: str, key: str, array) -> None:
    """ShapeError for zero data sets or an axis of length zero (a set with no elements)."""
    shape = _shape(array)
    if shape and shape[0] == 0:
        raise ShapeError(f"{owner}: {key} has {describe_shape(array)}: zero data sets. Give at least one.")
    empty = [axis for axis, dim in enumerate(shape[1:], start=1) if dim == 0]
    if empty:
        raise ShapeError(
            f"{owner}: {key} has {describe_shape(array)}: axis {empty[0]} has zero elements. A set or series "
            "with no elements has no summary (the network would return NaN); give every data set at least one."
        )


def check_finite(owner: str, key: str, array, nonfinite: str = "raise"):
    """``array`` if all its values are finite; else NonFiniteInputError, or with ``nonfinite="drop"``
    the array without the set elements (axis 1) that hold NaN or inf."""
    values = array if isinstance(array, np.ndarray) else np.asarray(array)
    finite = np.isfinite(values)
    if finite.all():
        return array
    droppable = key in SET_KEYS and values.ndim >= 3
    if nonfinite == "drop" and droppable:
        return _drop_nonfinite_elements(owner, key, values, finite)
    bad = np.argwhere(~finite)
    advice = ", or pass nonfinite='drop' to drop the set elements that hold them" if droppable else ""
    raise NonFiniteInputError(
        f"{owner}: {key} ({describe_shape(array)}) holds {len(bad)} NaN or inf value(s), the first at index "
        f"{tuple(int(i) for i in bad[0])} (data set {int(bad[0][0])}). The network would turn them into NaN "
        f"draws or densities. Remove or impute them{advice}."
    )


def _drop_nonfinite_elements(owner: str, key: str, values: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Drop set elements (axis 1) with a NaN or inf; every data set must keep the same number."""
    keep = finite.reshape(finite.shape[0], finite.shape[1], -1).all(axis=-1)  # (B, N)
    counts = keep.sum(axis=1)
    if counts.min() == 0:
        raise ShapeError(
            f"{owner}: every element of data set {int(np.argmin(counts))} of {key} ({describe_shape(values)}) "
            "holds NaN or inf; nothing is left after dropping them."
        )
    if counts.min() != counts.max():
        raise NonFiniteInputError(
            f"{owner}: dropping the elements of {key} ({describe_shape(values)}) that hold NaN or inf leaves sets "
            f"of {counts.min()} to {counts.max()} elements, which do not stack into one array; pass the data sets "
            "one call at a time."
        )
    logger.info("%s: dropped %d element(s) of %s that hold NaN or inf.", owner, int((~keep).sum()), key)
    return values[keep].reshape(values.shape[0], int(counts[0]), *values.shape[2:])


# --- a dict of inputs -----------------------------------------------------------------------
def trained_axes(amortizer, key: str) -> list | None:
    """The axes after the batch axis that ``amortizer`` was trained on for ``key``, or None if unknown."""
    axes = getattr(amortizer, "_input_axes", {}).get(key)
    if axes is None and key == "parameters" and hasattr(amortizer, "num_params"):
        return [int(amortizer.num_params)]  # a posterior knows its parameter dimension before training
    return axes


def check_array(amortizer, owner: str, key: str, value, *, draws: bool = False, values: bool = True,
                nonfinite: str = "raise"):  # fmt: skip
    """One input ``key`` checked (see the module docstring); returns the array to use.

    ``draws=True`` also accepts ``(n_datasets, n_draws, *axes)`` (several rows per data set).
    """
    array = as_input(owner, key, value)
    axes = trained_axes(amortizer, key)
    if len(array.shape) == 0:
        raise ShapeError(f"{owner}: {key} must be an array (n_datasets, ...), received {describe_shape(value)}.")
    if key == "observables":
        _check_observables(amortizer, owner, array)
    elif axes is not None:
        if draws and len(array.shape) == len(axes) + 2:
            check_axes(owner, key, array, axes, extra=("n_draws",))
        else:
            array = fit_batch_axis(owner, key, array, axes)
            check_axes(owner, key, array, axes)
    check_nonempty(owner, key, array)
    return check_finite(owner, key, array, nonfinite) if values else array


def _check_observables(amortizer, owner: str, array) -> None:
    """A likelihood takes i.i.d. sets ``(B, N, d)`` and fixed-size data ``(B, d)`` alike: check rank and ``d``."""
    d = int(amortizer.data_dim)
    shape = _shape(array)
    if len(shape) not in (2, 3) or shape[-1] != d:
        raise ShapeError(
            f"{owner}: observables must have shape (n_datasets, N, {d}) or (n_datasets, {d}), received "
            f"{describe_shape(array)}."
        )


def check_keys(amortizer, owner: str, input_dict: Mapping, keys: tuple[str, ...]) -> None:
    """ConfigurationError when the condition keys given differ from those the amortizer was trained with."""
    trained = [key for key in keys if trained_axes(amortizer, key) is not None]
    if getattr(amortizer, "summary_net", None) is None and "summary_conditions" in trained:
        trained.remove("summary_conditions")  # seen by a call that failed: without a summary net it is refused
    if not trained:
        return  # no record: the networks say what they miss
    given = [key for key in keys if input_dict.get(key) is not None]
    for key in trained:
        if key not in given:
            raise ConfigurationError(
                f"{owner} needs data: the amortizer was trained with {key} of shape "
                f"{expected_shape(trained_axes(amortizer, key))}, but the input has no {key}; "
                f"received keys {sorted(k for k in input_dict if input_dict[k] is not None)}."
            )
    for key in given:
        if key not in trained:
            raise ConfigurationError(
                f"{owner}: {key} ({describe_shape(input_dict[key])}) was not among the amortizer's training inputs "
                f"({trained}); pass the keys it was trained with."
            )


def check_rows(owner: str, arrays: Mapping) -> int | None:
    """The common number of data sets (first axis) of ``arrays``; ShapeError when they disagree."""
    rows = {key: _shape(value)[0] for key, value in arrays.items() if value is not None}
    known = {n for n in rows.values() if n is not None}
    if len(known) > 1:
        listed = ", ".join(f"{key} {describe_shape(arrays[key])}" for key in rows)
        raise ShapeError(
            f"{owner}: the inputs disagree on the number of data sets (first axis): {listed}. Give one row per data "
            "set in every key; for several parameter vectors per data set use parameters (n_datasets, n_draws, D)."
        )
    return known.pop() if known else None


def check_inputs(amortizer, owner: str, input_dict, *, keys: tuple[str, ...] = CONDITION_KEYS,
                 row_keys: tuple[str, ...] = (), draws_key: str | None = None, values: bool = True,
                 nonfinite: str = "raise") -> dict:  # fmt: skip
    """The checked copy of ``input_dict``: ``row_keys`` are required, ``keys`` must be the trained ones.

    Every given key of ``row_keys + keys`` must have the same number of data sets.
    """
    check_input_dict(owner, input_dict, row_keys)
    check_keys(amortizer, owner, input_dict, keys)
    checked = dict(input_dict)
    for key in (*row_keys, *keys):
        if input_dict.get(key) is not None:
            checked[key] = check_array(
                amortizer, owner, key, input_dict[key], draws=key == draws_key, values=values, nonfinite=nonfinite
            )
    check_rows(owner, {key: checked.get(key) for key in (*row_keys, *keys)})
    return checked


def check_observed(amortizer, key: str, value, *, batched: bool, nonfinite: str = "raise") -> np.ndarray:
    """One observed data set ``x_obs`` for ``key`` (MCMC, importance sampling), checked; ``(1, ...)``.

    ``batched=False``: an array without its batch axis (a batch of one is accepted too).
    """
    owner = "x_obs"
    array = as_input(owner, key, value)
    axes = trained_axes(amortizer, key)
    is_batch_of_one = axes is not None and len(array.shape) == len(axes) + 1 and array.shape[0] == 1
    if not batched and not is_batch_of_one and key != "observables":
        array = _add_batch_axis(array)
    if axes is not None and key != "observables" and len(array.shape) != len(axes) + 1:
        inner = expected_shape(axes).replace("n_datasets, ", "")
        raise ShapeError(
            f"x_obs ({key}) must be one data set of shape {inner} (or {expected_shape(axes)} with n_datasets = 1), "
            f"as in training, received {describe_shape(value)}."
        )
    array = np.asarray(check_array(amortizer, owner, key, array, nonfinite=nonfinite))
    if array.shape[0] != 1:
        raise ShapeError(
            f"x_obs ({key}) must be ONE data set, received {describe_shape(value)}. Run the sampler once per data set."
        )
    return array


def check_output(owner: str, result, allow_neg_inf: bool = False):
    """``result`` unless it holds NaN (or inf; ``-inf`` allowed with ``allow_neg_inf``): NonFiniteOutputError."""
    for value in result if isinstance(result, tuple) else (result,):
        if value is None:
            continue
        array = np.asarray(value)
        bad = np.isnan(array) | (np.isinf(array) & ~(allow_neg_inf & (array < 0)))
        if bad.any():
            raise NonFiniteOutputError(
                f"{owner} produced {int(bad.sum())} NaN or inf value(s) in an output of shape {array.shape} from "
                "finite inputs: the network overflows, usually for inputs far outside its training data."
            )
    return result
