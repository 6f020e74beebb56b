"""Prior checks: the joint prior (:func:`plot_prior2d`) and the prior predictive (:func:`plot_pushforward`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from amortflow.diagnostics._data_panels import data_panels
from amortflow.diagnostics._pair_grid import draw_pair_grid
from amortflow.diagnostics._plot_utils import MAIN_COLOR, finish, param_labels
from amortflow.diagnostics.plot_posterior import draw_prior
from amortflow.exceptions import ShapeError


def plot_prior2d(
    prior: Any,
    param_names: Sequence[str] | None = None,
    n_samples: int = 2000,
    *,
    height: float = 2.5,
    color: str = MAIN_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Pair plot of ``n_samples`` prior draws: histograms, scatter above, KDE contours below.

    Parameters
    ----------
    prior : callable
        An amortflow ``Prior`` or any ``prior(n) -> {"prior_draws": (n, D)}``. Its
        ``param_names`` label the axes when ``param_names`` is not given.
    param_names : sequence of str, optional
    n_samples : int, default 2000
    height, color, fig_size, save_path :
        Panel size in inches, colour, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    draws = draw_prior(prior, n_samples)
    if param_names is None:
        param_names = getattr(prior, "param_names", None)
    labels = param_labels(param_names, draws.shape[1])
    fig = draw_pair_grid(
        [draws], labels, [color], diag="hist", upper="scatter", lower="kde", height=height, fig_size=fig_size
    )
    fig.suptitle("Prior")
    return finish(fig, save_path)


def _simulate(generative_model: Callable, n_simulations: int, rng) -> np.ndarray:
    """``generative_model(n)["sim_data"]``, passing ``rng`` when the model accepts it."""
    try:
        accepts_rng = "rng" in inspect.signature(generative_model).parameters
    except (TypeError, ValueError):  # some callables have no inspectable signature
        accepts_rng = False
    if rng is not None and accepts_rng:
        out = generative_model(n_simulations, rng=rng)
    else:
        out = generative_model(n_simulations)
    if not isinstance(out, dict) or "sim_data" not in out:
        raise ShapeError("`generative_model(n)` must return a dict with key 'sim_data'.")
    return np.asarray(out["sim_data"], dtype=np.float64)


def plot_pushforward(
    generative_model: Callable,
    n_simulations: int = 500,
    *,
    kind: str = "auto",
    summary_fun: Callable[[np.ndarray], np.ndarray] | None = None,
    observed_data: Any = None,
    data_names: Sequence[str] | None = None,
    rng: np.random.Generator | int | None = None,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Prior predictive check: the data the prior and simulator produce, optionally against observed data.

    Parameters
    ----------
    generative_model : callable
        An amortflow ``GenerativeModel`` or any ``model(batch_size) -> {"sim_data": (B, ...)}``.
    n_simulations : int, default 500
    kind : {"auto", "series", "marginals"}, default "auto"
        ``"series"``: per channel of ``(B, T[, C])`` data, the median, 50 % and 90 % bands over
        simulations along the time/index axis, plus a few example simulations.
        ``"marginals"``: per channel (last axis), a histogram of all simulated values.
        ``"auto"`` picks "series" for ``(B, T)`` data and "marginals" otherwise.
    summary_fun : callable, optional
        Maps data ``(B, ...)`` to statistics ``(B, k)``; then one histogram per statistic is drawn.
    observed_data : array-like, optional
        One real data set (shape of one simulation), drawn on top in red.
    data_names : sequence of str, optional
        Panel titles (channels or statistics).
    rng : numpy.random.Generator or int, optional
        Passed to ``generative_model`` when it takes an ``rng`` keyword.
    fig_size, save_path :
        Total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sims = _simulate(generative_model, n_simulations, rng)
    fig = data_panels(sims, observed_data, kind, summary_fun, data_names, fig_size, "Prior predictive")
    return finish(fig, save_path)
