"""Posterior predictive simulations: new data sets from the simulator at posterior draws.

``x_rep ~ p(x | theta)``, ``theta ~ q(theta | x_obs)``: data the fitted model expects. Compared
with ``x_obs`` (e.g. by a summary statistic), they show whether the model can reproduce the
observation at all (posterior predictive checks, Gelman, Meng & Stern 1996; plot them with
:func:`amortflow.diagnostics.plot_posterior_predictive`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, NonFiniteInputError, ShapeError, describe_shape
from amortflow.simulation.context import UNSET
from amortflow.simulation.validation import SeedLike, resolve_rng


def posterior_predictive(
    generative_model,
    draws,
    rng: SeedLike = None,
    *,
    non_batchable_context: Any = UNSET,
    max_draws: int | None = None,
) -> np.ndarray:
    """Simulate one data set per posterior draw.

    Parameters
    ----------
    generative_model : GenerativeModel or Simulator
        Its simulator is run on the draws (the prior is not used).
    draws : array
        Posterior draws ``(n_datasets, n_samples, D)`` (as returned by ``sample``) or
        ``(n_samples, D)`` for one data set.
    rng : numpy.random.Generator or int, optional
        Randomness of the simulator.
    non_batchable_context : optional, keyword-only
        Fix the simulator's non-batchable context (e.g. the number of observations of ``x_obs``)
        instead of drawing a new one; it is then the same for every simulation.
    max_draws : int, optional
        Simulate from the first ``max_draws`` draws per data set only (simulators can be slow).

    Returns
    -------
    numpy.ndarray
        ``(n_datasets, n_draws, *data_shape)``, or ``(n_draws, *data_shape)`` for draws ``(n_samples, D)``.

    Examples
    --------
    >>> draws = amortizer.sample(conf, n_samples=500)                   # (5, 500, 2)
    >>> x_rep = af.simulation.posterior_predictive(model, draws, rng=0)  # (5, 500, 10, 2)
    """
    simulator = getattr(generative_model, "simulator", generative_model)
    if not callable(simulator):
        raise ArgumentError(
            f"posterior_predictive needs a GenerativeModel or a Simulator, received {type(generative_model).__name__}."
        )
    values = _check_draws(draws)
    single = values.ndim == 2
    values = values[None] if single else values
    if max_draws is not None:
        if isinstance(max_draws, bool) or not isinstance(max_draws, (int, np.integer)) or max_draws < 1:
            raise ArgumentError(f"max_draws must be a positive integer or None, received {max_draws!r}.")
        values = values[:, : int(max_draws)]
    n_datasets, n_draws, dim = values.shape
    context = {} if non_batchable_context is UNSET else {"non_batchable_context": non_batchable_context}
    data = simulator(values.reshape(-1, dim), resolve_rng(rng), **context)["sim_data"]
    data = np.asarray(data).reshape(n_datasets, n_draws, *np.shape(data)[1:])
    return data[0] if single else data


def _check_draws(draws) -> np.ndarray:
    """``draws`` as a float array ``(n_samples, D)`` or ``(n_datasets, n_samples, D)``, finite and non-empty."""
    try:
        values = np.asarray(draws, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(
            f"posterior_predictive: draws must be a numeric array, received {type(draws).__name__}."
        ) from exc
    if values.ndim not in (2, 3) or 0 in values.shape:
        raise ShapeError(
            "posterior_predictive: draws must have shape (n_datasets, n_samples, D) or (n_samples, D) with no "
            f"empty axis, received {describe_shape(values)}."
        )
    if not np.all(np.isfinite(values)):
        raise NonFiniteInputError(f"posterior_predictive: draws ({describe_shape(values)}) hold NaN or inf.")
    return values
