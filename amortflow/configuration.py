"""Configurators: raw simulation dicts -> float32 network inputs.

A configurator is any callable ``raw dict -> dict of float32 arrays`` (see
``docs/architecture.md``); the classes here are the defaults the amortizers use.

Where the raw entries go (posterior, ratio and model comparison):

* ``prior_draws (B, D)`` -> ``parameters``.
* ``sim_data`` with a set/time axis, ``(B, N, d)`` (or more axes) -> ``summary_conditions``,
  with the **batchable** contexts (prior's, then simulator's; one value per simulation)
  appended to the last axis. A context of shape ``(B, N)`` or ``(B, N, k)`` matching the
  data's middle axes is attached per observation; any other ``(B, ...)`` context is
  flattened to ``(B, k)`` and repeated along the middle axes.
* ``sim_data`` of shape ``(B, d)`` (or ``(B,)``) has no set axis to summarize: it goes to
  ``direct_conditions`` (with the flattened batchable contexts), ``summary_conditions`` is ``None``.
* **non-batchable** contexts (prior's, then simulator's; one value per batch, e.g. ``n_obs``)
  are repeated for every simulation and appended to ``direct_conditions`` as ``(B, k)``,
  optionally transformed (``non_batchable_transform="sqrt"`` suits counts like ``n_obs``).

Example
-------
>>> import numpy as np
>>> raw = {"prior_draws": np.zeros((4, 2)), "sim_data": np.ones((4, 10, 3)), "sim_non_batchable_context": 16}
>>> conf = DefaultPosteriorConfigurator(non_batchable_transform="sqrt")(raw)
>>> conf["parameters"].shape, conf["summary_conditions"].shape, conf["direct_conditions"][0]
((4, 2), (4, 10, 3), array([4.], dtype=float32))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from amortflow._checks import numeric_array, positive_int
from amortflow.exceptions import ArgumentError, ConfigurationError

BATCHABLE_KEYS = ("prior_batchable_context", "sim_batchable_context")
NON_BATCHABLE_KEYS = ("prior_non_batchable_context", "sim_non_batchable_context")
_TRANSFORMS = {None: None, "sqrt": np.sqrt, "log": np.log}


def _resolve_transform(transform: str | Callable | None) -> Callable | None:
    if callable(transform):
        return transform
    if transform not in _TRANSFORMS:
        raise ArgumentError(f"non_batchable_transform must be None, 'sqrt', 'log' or a callable, received {transform!r}.")
    return _TRANSFORMS[transform]


def _check_raw(raw: Any, who: str) -> Mapping:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{who} expected a raw simulation dict, received {type(raw).__name__}.")
    return raw


def _float32(value: Any, key: str, who: str) -> np.ndarray:
    """``value`` as a float32 array, or a :class:`ConfigurationError` for non-numeric content."""
    return numeric_array(value, f"{who}: '{key}'", dtype=np.float32,
                         error=ConfigurationError, expected="numbers (a float array)")


def _batch_array(raw: Mapping, key: str, batch_size: int | None, who: str, min_ndim: int = 1) -> np.ndarray:
    array = _float32(raw[key], key, who)
    if array.ndim < min_ndim or (batch_size is not None and array.shape[0] != batch_size):
        expected = f"({batch_size if batch_size is not None else 'B'}, ...)" + (" with 2 axes" if min_ndim == 2 else "")
        raise ConfigurationError(f"{who}: '{key}' has shape {array.shape}; expected {expected}, one row per simulation.")
    return array


def _attach_per_observation(context: np.ndarray, data_shape: tuple) -> np.ndarray:
    """Shape a batchable context ``(B, ...)`` to ``data_shape[:-1] + (k,)`` for concatenation."""
    if context.shape == data_shape[:-1]:
        return context[..., None]
    if context.ndim == len(data_shape) and context.shape[:-1] == data_shape[:-1]:
        return context
    flat = context.reshape(context.shape[0], -1)
    expand = flat.reshape((flat.shape[0],) + (1,) * (len(data_shape) - 2) + (flat.shape[1],))
    return np.broadcast_to(expand, data_shape[:-1] + (flat.shape[1],))


def _non_batchable_matrix(value: Any, key: str, batch_size: int, transform: Callable | None, who: str) -> np.ndarray:
    array = _float32(value, key, who)
    if array.ndim > 1:
        raise ConfigurationError(
            f"{who}: '{key}' (one value per batch) has shape {array.shape}; expected a scalar or a vector (k,)."
        )
    if transform is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            array = np.asarray(transform(array.astype(np.float64)), dtype=np.float32)
        if not np.isfinite(array).all():
            raise ConfigurationError(f"{who}: non_batchable_transform of '{key}'={value!r} is not finite.")
    return np.tile(array.reshape(1, -1), (batch_size, 1))


class DefaultPosteriorConfigurator:
    """Raw dict -> ``parameters``, ``summary_conditions``, ``direct_conditions`` (float32).

    Parameters
    ----------
    non_batchable_transform : None, "sqrt", "log" or callable, default None
        Applied to non-batchable contexts before they become direct conditions.

    ``prior_draws`` may be absent (observed data): then ``parameters`` is ``None``.
    See the module docstring for where each entry goes.
    """

    name = "DefaultPosteriorConfigurator"

    def __init__(self, *, non_batchable_transform: str | Callable | None = None):
        self.non_batchable_transform = non_batchable_transform
        self._transform = _resolve_transform(non_batchable_transform)

    def __call__(self, raw: Mapping) -> dict:
        raw = _check_raw(raw, self.name)
        summary, direct = self.conditions(raw)
        batch_size = (summary if summary is not None else direct).shape[0]
        params = None
        if raw.get("prior_draws") is not None:
            params = _batch_array(raw, "prior_draws", batch_size, self.name, min_ndim=2)
            if params.ndim != 2:
                raise ConfigurationError(f"{self.name}: 'prior_draws' has shape {params.shape}; expected (B, D).")
        return {"parameters": params, "summary_conditions": summary, "direct_conditions": direct}

    def conditions(self, raw: Mapping) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(summary_conditions, direct_conditions)`` of a raw dict (either may be ``None``)."""
        if raw.get("sim_data") is None:
            raise ConfigurationError(f"{self.name} needs the key 'sim_data'; received keys {sorted(raw)}.")
        data = _batch_array(raw, "sim_data", None, self.name)
        batch_size = data.shape[0]
        batchables = [_batch_array(raw, k, batch_size, self.name) for k in BATCHABLE_KEYS if raw.get(k) is not None]
        if data.ndim >= 3:
            summary = np.concatenate([data] + [_attach_per_observation(c, data.shape) for c in batchables], axis=-1)
            direct_parts = []
        else:
            summary = None
            direct_parts = [data.reshape(batch_size, -1)] + [c.reshape(batch_size, -1) for c in batchables]
        direct_parts += [
            _non_batchable_matrix(raw[k], k, batch_size, self._transform, self.name)
            for k in NON_BATCHABLE_KEYS
            if raw.get(k) is not None
        ]
        direct = np.concatenate(direct_parts, axis=-1) if direct_parts else None
        return summary, direct


class DefaultLikelihoodConfigurator:
    """Raw dict -> ``observables`` (``sim_data``) and ``conditions`` (``prior_draws`` + contexts), float32.

    ``conditions`` is ``prior_draws (B, D)`` followed by the batchable contexts flattened to
    ``(B, k)`` and the non-batchable contexts repeated per simulation, so ``(B, D + k)``;
    without contexts exactly ``(B, D)``. ``sim_data`` may be absent (to sample from a
    learned likelihood): then ``observables`` is ``None``.
    """

    name = "DefaultLikelihoodConfigurator"

    def __init__(self, *, non_batchable_transform: str | Callable | None = None):
        self.non_batchable_transform = non_batchable_transform
        self._transform = _resolve_transform(non_batchable_transform)

    def __call__(self, raw: Mapping) -> dict:
        raw = _check_raw(raw, self.name)
        if raw.get("prior_draws") is None:
            raise ConfigurationError(f"{self.name} needs the key 'prior_draws'; received keys {sorted(raw)}.")
        params = _batch_array(raw, "prior_draws", None, self.name, min_ndim=2)
        if params.ndim != 2:
            raise ConfigurationError(f"{self.name}: 'prior_draws' has shape {params.shape}; expected (B, D).")
        batch_size = params.shape[0]
        observables = None
        if raw.get("sim_data") is not None:
            observables = _batch_array(raw, "sim_data", batch_size, self.name)
        parts = [params] + [
            _batch_array(raw, k, batch_size, self.name).reshape(batch_size, -1)
            for k in BATCHABLE_KEYS
            if raw.get(k) is not None
        ]
        parts += [
            _non_batchable_matrix(raw[k], k, batch_size, self._transform, self.name)
            for k in NON_BATCHABLE_KEYS
            if raw.get(k) is not None
        ]
        return {"observables": observables, "conditions": np.concatenate(parts, axis=-1)}


class DefaultJointConfigurator:
    """Raw dict -> ``{"posterior_inputs": ..., "likelihood_inputs": ...}`` for joint posterior + likelihood."""

    def __init__(self, *, non_batchable_transform: str | Callable | None = None):
        self.non_batchable_transform = non_batchable_transform
        self.posterior = DefaultPosteriorConfigurator(non_batchable_transform=non_batchable_transform)
        self.likelihood = DefaultLikelihoodConfigurator(non_batchable_transform=non_batchable_transform)

    def __call__(self, raw: Mapping) -> dict:
        return {"posterior_inputs": self.posterior(raw), "likelihood_inputs": self.likelihood(raw)}


class DefaultModelComparisonConfigurator:
    """MultiGenerativeModel output -> ``model_indices`` (one-hot), ``summary_conditions``, ``direct_conditions``.

    The per-model outputs are configured like a posterior's (without parameters, whose
    dimensions differ between models) and merged into one batch in the order of
    ``model_indices``: the ``j``-th simulation of model ``m`` goes to the ``j``-th position
    where ``model_indices == m``. All models must give conditions of the same shape.
    A plain raw dict (observed data, no ``model_outputs``) is configured as one batch;
    ``model_indices`` is then one-hot if given, else ``None``.

    Parameters
    ----------
    num_models : int
        Number of models ``M`` (width of the one-hot ``model_indices``).
    non_batchable_transform : None, "sqrt", "log" or callable, default None
        As in :class:`DefaultPosteriorConfigurator`.
    """

    name = "DefaultModelComparisonConfigurator"

    def __init__(self, num_models: int, *, non_batchable_transform: str | Callable | None = None):
        self.num_models = positive_int(f"{self.name}(num_models=...)", num_models, minimum=2)
        self.non_batchable_transform = non_batchable_transform
        self._posterior = DefaultPosteriorConfigurator(non_batchable_transform=non_batchable_transform)

    def __call__(self, raw: Mapping) -> dict:
        raw = _check_raw(raw, self.name)
        if "model_outputs" not in raw:
            summary, direct = self._posterior.conditions(raw)
            batch_size = (summary if summary is not None else direct).shape[0]
            indices = None if raw.get("model_indices") is None else self._one_hot(raw["model_indices"], batch_size)
            return {"model_indices": indices, "summary_conditions": summary, "direct_conditions": direct}
        if raw.get("model_indices") is None:
            raise ConfigurationError(f"{self.name}: 'model_outputs' needs 'model_indices'; received keys {sorted(raw)}.")
        indices = np.asarray(raw["model_indices"])
        one_hot = self._one_hot(indices, None)
        outputs = raw["model_outputs"]
        if len(outputs) != self.num_models:
            raise ConfigurationError(f"{self.name}: expected {self.num_models} entries in 'model_outputs', received {len(outputs)}.")
        per_model = {}
        for m in np.unique(indices):
            if outputs[m] is None:
                raise ConfigurationError(f"{self.name}: model_indices contains {m}, but model_outputs[{m}] is None.")
            per_model[int(m)] = self._posterior.conditions(outputs[m])
        summary = self._merge(indices, {m: c[0] for m, c in per_model.items()}, "summary_conditions")
        direct = self._merge(indices, {m: c[1] for m, c in per_model.items()}, "direct_conditions")
        return {"model_indices": one_hot, "summary_conditions": summary, "direct_conditions": direct}

    def _one_hot(self, indices: Any, batch_size: int | None) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu" or indices.ndim != 1 or (batch_size is not None and len(indices) != batch_size):
            raise ConfigurationError(
                f"{self.name}: 'model_indices' must be integers of shape ({batch_size or 'B'},); received "
                f"dtype {indices.dtype}, shape {indices.shape}."
            )
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_models):
            raise ConfigurationError(
                f"{self.name}: 'model_indices' must lie in [0, {self.num_models}); received values "
                f"{indices.min()}..{indices.max()}."
            )
        return np.eye(self.num_models, dtype=np.float32)[indices]

    def _merge(self, indices: np.ndarray, parts: dict, key: str) -> np.ndarray | None:
        present = {m for m, p in parts.items() if p is not None}
        if not present:
            return None
        if present != set(parts):
            raise ConfigurationError(
                f"{self.name}: '{key}' exists for models {sorted(present)} but not for {sorted(set(parts) - present)}; "
                "all models must give the same kinds of inputs."
            )
        shapes = {m: p.shape[1:] for m, p in parts.items()}
        if len(set(shapes.values())) > 1:
            raise ConfigurationError(
                f"{self.name}: '{key}' has different shapes per simulation across models "
                f"({', '.join(f'model {m}: {s}' for m, s in shapes.items())}); expected one shape for all models."
            )
        merged = np.empty((len(indices),) + next(iter(shapes.values())), dtype=np.float32)
        for m, part in parts.items():
            rows = np.flatnonzero(indices == m)
            if len(rows) != len(part):
                raise ConfigurationError(
                    f"{self.name}: model_outputs[{m}] holds {len(part)} simulations but model_indices names "
                    f"model {m} {len(rows)} times."
                )
            merged[rows] = part
        return merged
