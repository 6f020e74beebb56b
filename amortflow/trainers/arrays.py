"""Helpers for configured inputs: (possibly nested) dicts whose leaves are arrays or ``None``.

A configured dict (see ``docs/architecture.md``) maps keys to float32 arrays with one row per
simulation, to ``None`` (an absent input), or to another such dict (the joint amortizer's
``posterior_inputs`` / ``likelihood_inputs``). The trainer slices, stacks and compares them
without caring which amortizer they belong to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from amortflow._checks import numeric_array
from amortflow.exceptions import ConfigurationError

Nested = Any  # a Mapping of (arrays | None | Nested)


def iter_leaves(data: Nested, prefix: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Yield ``(path, leaf)`` for every non-dict value, in key order (``None`` leaves included)."""
    for key in sorted(data):
        value = data[key]
        if isinstance(value, Mapping):
            yield from iter_leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def map_arrays(fn: Callable[[np.ndarray], Any], data: Nested) -> Nested:
    """Apply ``fn`` to every array leaf; ``None`` stays ``None``, the dict structure is kept."""
    return {
        key: map_arrays(fn, value) if isinstance(value, Mapping) else (None if value is None else fn(value))
        for key, value in data.items()
    }


def zip_arrays(fn: Callable[..., Any], items: list[Nested]) -> Nested:
    """Combine the matching array leaves of several dicts of the same structure with ``fn(list)``."""
    first = items[0]
    out = {}
    for key, value in first.items():
        if isinstance(value, Mapping):
            out[key] = zip_arrays(fn, [item[key] for item in items])
        else:
            out[key] = None if value is None else fn([item[key] for item in items])
    return out


def as_float32(data: Nested, who: str = "configurator") -> Nested:
    """Every leaf as a float32 numpy array (``ConfigurationError`` naming the key otherwise)."""

    def convert(path: str, value):
        return numeric_array(value, f"{who}: '{path}'", dtype=np.float32,
                             error=ConfigurationError, expected="float32 arrays")

    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{who} must return a dict of arrays, received {type(data).__name__}.")
    return _map_with_path(convert, data)


def _map_with_path(fn, data: Nested, prefix: str = "") -> Nested:
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out[key] = _map_with_path(fn, value, path + "/")
        else:
            out[key] = None if value is None else fn(path, value)
    return out


def num_rows(data: Nested, who: str = "configured inputs") -> int:
    """The common first dimension of all array leaves (``ConfigurationError`` if they disagree)."""
    sizes = {"/".join(path): np.shape(leaf)[0] for path, leaf in iter_leaves(data) if leaf is not None}
    if not sizes:
        raise ConfigurationError(f"{who} hold no arrays; received keys {sorted(data)}.")
    if len(set(sizes.values())) > 1:
        raise ConfigurationError(f"{who} disagree on the number of simulations (first axis): {sizes}.")
    return next(iter(sizes.values()))


def take_rows(data: Nested, index) -> Nested:
    """Rows ``index`` (an int array or a slice) of every array leaf."""
    return map_arrays(lambda array: array[index], data)


def stack(items: list[Nested]) -> Nested:
    """Stack same-shaped dicts along a new first axis: ``K x (B, ...) -> (K, B, ...)``."""
    return zip_arrays(np.stack, items)


def concatenate(items: list[Nested]) -> Nested:
    """Concatenate dicts of the same structure along the first (simulation) axis."""
    return zip_arrays(lambda arrays: np.concatenate(arrays, axis=0), items)


def shape_signature(data: Nested) -> tuple:
    """Per-leaf ``(path, shape[1:])``: batches with equal signatures can be stacked and mixed."""
    return tuple((path, None if leaf is None else tuple(np.shape(leaf)[1:])) for path, leaf in iter_leaves(data))


def unstack_index(data: Nested, i: int) -> Nested:
    """Entry ``i`` of a stacked dict: ``(K, B, ...) -> (B, ...)``."""
    return map_arrays(lambda array: array[i], data)


def flatten(data: Nested) -> tuple[tuple, dict[tuple, np.ndarray]]:
    """``(template, {path: array})``: the structure (with ``None`` leaves) and the arrays."""
    return shape_signature(data), {path: leaf for path, leaf in iter_leaves(data) if leaf is not None}


def unflatten(template: tuple, flat: dict[tuple, np.ndarray]) -> Nested:
    """Inverse of :func:`flatten` (``template`` as returned by :func:`shape_signature`)."""
    out: dict = {}
    for path, shape in template:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = None if shape is None else flat[path]
    return out
