"""Posterior predictive check: data simulated from posterior draws against the observed data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from amortflow.diagnostics._data_panels import data_panels
from amortflow.diagnostics._plot_utils import finish


def plot_posterior_predictive(
    observed_data: Any,
    simulated_data: Any,
    *,
    kind: str = "auto",
    summary_fun: Callable[[np.ndarray], np.ndarray] | None = None,
    data_names: Sequence[str] | None = None,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Does data simulated from the posterior look like the observed data?

    Parameters
    ----------
    observed_data : array-like, shape (...) or (1, ...)
        The observed data set, e.g. ``(T,)``, ``(T, C)`` or ``(N, d)``.
    simulated_data : array-like, shape (S, ...)
        ``S`` data sets simulated from ``S`` posterior draws (same trailing shape as the observed).
    kind : {"auto", "series", "marginals"}, default "auto"
        ``"series"``: median, 50 % and 90 % bands of the simulations along the time/index axis,
        with the observed series on top. ``"marginals"``: per channel (last axis), a histogram
        of simulated values with the observed values' histogram outlined.
        ``"auto"`` picks "series" for ``(T,)`` data and "marginals" otherwise.
    summary_fun : callable, optional
        Maps data ``(B, ...)`` to statistics ``(B, k)``; each statistic gets a histogram over
        simulations with the observed value as a vertical line.
    data_names : sequence of str, optional
        Panel titles (channels or statistics).
    fig_size, save_path :
        Total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = data_panels(simulated_data, observed_data, kind, summary_fun, data_names, fig_size, "Posterior predictive")
    return finish(fig, save_path)
