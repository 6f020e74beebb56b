"""Hand posterior draws to ArviZ: ``arviz.InferenceData`` for its plots, summaries and diagnostics.

ArviZ is an optional dependency (``pip install amortflow[arviz]``), imported only when
:func:`to_inference_data` is called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, NonFiniteInputError, ShapeError, describe_shape


def to_inference_data(
    draws,
    param_names: Sequence[str] | None = None,
    observed=None,
    prior_draws=None,
    posterior_predictive=None,
):
    """Posterior (and prior, observed and predictive) draws as an ``arviz.InferenceData``.

    Parameters
    ----------
    draws : array or MCMCResult
        ``(n_samples, D)`` draws of one data set (one chain), ``(n_datasets, n_samples, D)``
        (an extra ``dataset`` dimension per parameter), or an
        :class:`~amortflow.inference.MCMCResult` (its chains become ArviZ chains).
    param_names : sequence of str, optional
        ``D`` names (default ``theta_0, theta_1, ...``).
    observed : array or dict, optional
        The observed data (``observed_data`` group): an array becomes the variable ``x_obs``.
    prior_draws : array, optional
        ``(n_prior, D)`` prior draws (``prior`` group, same names).
    posterior_predictive : array or dict, optional
        Data simulated at the posterior draws, ``(n_samples, *data_shape)`` (see
        :func:`amortflow.simulation.posterior_predictive`); variable ``x``.

    Returns
    -------
    arviz.InferenceData
    """
    try:
        import arviz as az
    except ImportError as exc:  # an optional extra
        raise ImportError("to_inference_data needs ArviZ: pip install 'amortflow[arviz]' (or arviz).") from exc
    chains = _as_chains(draws)
    names = _param_names(param_names, chains.shape[2])
    groups: dict[str, Any] = {"posterior": _by_name(chains, names)}
    dims = {name: ["dataset"] for name in names} if chains.ndim == 4 else None
    if prior_draws is not None:
        prior = _check_array("prior_draws", prior_draws, (2,))
        if prior.shape[-1] != len(names):
            raise ShapeError(f"prior_draws must have shape (n_prior, {len(names)}), received {describe_shape(prior)}.")
        groups["prior"] = _by_name(prior[None], names)
    if observed is not None:
        groups["observed_data"] = _variables(observed, "x_obs", lambda value: value)
    if posterior_predictive is not None:
        groups["posterior_predictive"] = _variables(posterior_predictive, "x", lambda value: value[None])
    return az.from_dict(**groups, dims=dims)


def _as_chains(draws) -> np.ndarray:
    """``(chain, draw, D)`` or, for several data sets, ``(chain, draw, D, dataset)`` draws."""
    if hasattr(draws, "chains") and hasattr(draws, "r_hat"):  # an MCMCResult: (num_results, num_chains, D)
        return np.swapaxes(_check_array("draws", draws.chains, (3,)), 0, 1)
    values = _check_array("draws", draws, (2, 3))
    if values.ndim == 2:
        return values[None]
    return np.moveaxis(values, 0, -1)[None]  # (1, n_samples, D, n_datasets)


def _check_array(name: str, value, ranks: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name} must be a numeric array, received {type(value).__name__}.") from exc
    if array.ndim not in ranks or 0 in array.shape:
        axes = " or ".join(map(str, ranks))
        raise ShapeError(f"{name} must have {axes} non-empty axes, received {describe_shape(array)}.")
    if not np.all(np.isfinite(array)):
        raise NonFiniteInputError(f"{name} ({describe_shape(array)}) hold NaN or inf.")
    return array


def _param_names(param_names, dim: int) -> list[str]:
    if param_names is None:
        return [f"theta_{i}" for i in range(dim)]
    names = [str(name) for name in param_names]
    if len(names) != dim or len(set(names)) != dim:
        raise ArgumentError(f"param_names must be {dim} distinct names (one per parameter), received {param_names!r}.")
    return names


def _by_name(chains: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """One ArviZ variable per parameter: axis 2 of ``chains`` split by name."""
    return {name: chains[:, :, i] for i, name in enumerate(names)}


def _variables(value, default_name: str, shape_fn) -> dict[str, np.ndarray]:
    items = value.items() if isinstance(value, Mapping) else [(default_name, value)]
    return {str(name): shape_fn(np.asarray(item)) for name, item in items}
