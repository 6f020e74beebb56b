"""Pair plots of posterior draws: the sbi-style :func:`pairplot` and BayesFlow-style :func:`plot_posterior_2d`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from amortflow.diagnostics._inputs import check_samples_2d, to_numpy
from amortflow.diagnostics._pair_grid import check_limits, draw_pair_grid
from amortflow.diagnostics._plot_utils import (
    BAND_COLOR,
    MAIN_COLOR,
    PALETTE,
    TRUTH_COLOR,
    as_list_of_arrays,
    finish,
    param_labels,
)
from amortflow.exceptions import ArgumentError, ShapeError


def pairplot(
    samples: Any,
    limits: Any = None,
    labels: Sequence[str] | None = None,
    points: Any = None,
    *,
    param_names: Sequence[str] | None = None,
    diag: str = "kde",
    upper: str | None = "kde",
    lower: str | None = None,
    samples_colors: Sequence | None = None,
    points_colors: Sequence | None = None,
    legend_labels: Sequence[str] | None = None,
    height: float = 2.3,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Marginals on the diagonal and pairwise densities off it, with true values marked (as in sbi).

    Parameters
    ----------
    samples : array-like of shape (n, D), or a list of them
        Draws to show; several sets are overlaid in different colours (e.g. two posteriors).
    limits : (low, high) or array-like of shape (D, 2), optional
        Axis limits, the same for all dimensions or one pair per dimension. Default: the
        0.1-99.9 % quantiles of all samples (and the points), padded by 5 %.
    labels : sequence of str, optional
        One label per dimension (``param_names`` is accepted as an alias); default ``$\\theta_{i}$``.
    points : array-like of shape (D,) or (k, D), optional
        True parameter values to mark (lines on the diagonal, crosses off it).
    diag : {"kde", "hist"}, default "kde"
    upper, lower : {"kde", "hist", "scatter", None}, default "kde" and None
        What the upper / lower triangle shows; ``None`` removes that triangle.
        ``"kde"`` fills the 50 / 75 / 95 % highest-density regions.
    samples_colors, points_colors : sequence of colours, optional
    legend_labels : sequence of str, optional
        One name per sample set; adds a legend.
    height : float, default 2.3
        Size of one panel in inches (ignored when ``fig_size`` is given).
    fig_size : (width, height), optional
    save_path : str or Path, optional
        Save the figure there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sets = [check_samples_2d(s, "samples") for s in as_list_of_arrays(samples)]
    num_dims = sets[0].shape[1]
    if any(s.shape[1] != num_dims for s in sets):
        raise ShapeError(f"every sample set must have {num_dims} dimensions; received {[s.shape for s in sets]}.")
    if labels is not None and param_names is not None and list(labels) != list(param_names):
        raise ArgumentError("give either `labels` or `param_names`, not two different lists.")
    names = param_labels(labels if labels is not None else param_names, num_dims, "labels")
    pts = None
    if points is not None:
        pts = np.atleast_2d(to_numpy(points, "points"))
        if pts.shape[1] != num_dims:
            raise ShapeError(f"`points` must have shape ({num_dims},) or (k, {num_dims}); received {pts.shape}.")
    if samples_colors is None:
        samples_colors = [PALETTE[i % len(PALETTE)] for i in range(len(sets))]
    colors = list(samples_colors)
    pcolors = list(points_colors) if points_colors is not None else [TRUTH_COLOR] * (0 if pts is None else len(pts))
    fig = draw_pair_grid(
        sets, names, colors, diag=diag, upper=upper, lower=lower, limits=check_limits(limits, num_dims),
        points=pts, points_colors=pcolors, legend_labels=legend_labels, height=height, fig_size=fig_size,
    )
    return finish(fig, save_path)


def draw_prior(prior: Any, num_draws: int) -> np.ndarray:
    """Call a prior ``prior(n)`` (an amortflow ``Prior`` or any callable returning ``{"prior_draws": ...}``)."""
    out = prior(num_draws)
    draws = out["prior_draws"] if isinstance(out, dict) else out
    return check_samples_2d(draws, "prior(n)['prior_draws']")


def plot_posterior_2d(
    posterior_draws: Any,
    prior: Any = None,
    prior_draws: Any = None,
    param_names: Sequence[str] | None = None,
    *,
    true_params: Any = None,
    height: float = 2.5,
    post_color: str = MAIN_COLOR,
    prior_color: str = BAND_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Posterior of one data set as a pair plot (histograms, scatter above, KDE below), over its prior.

    Parameters
    ----------
    posterior_draws : array-like, shape (S, D) (or (1, S, D))
        Draws from the posterior of a single data set.
    prior : callable, optional
        An amortflow ``Prior`` (or any ``prior(n) -> {"prior_draws": (n, D)}``); ``S`` draws
        are taken from it and shown behind the posterior. Its ``param_names`` label the axes
        when ``param_names`` is not given.
    prior_draws : array-like, shape (n, D), optional
        Prior draws to show instead of calling ``prior``.
    param_names : sequence of str, optional
    true_params : array-like, shape (D,), optional
        The data-generating parameters, marked in every panel.
    height, fig_size, save_path :
        Panel size in inches, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if np.ndim(posterior_draws) == 3 and np.shape(posterior_draws)[0] != 1:
        raise ShapeError(
            "`posterior_draws` must be the draws of one data set, shape (n_samples, n_params) or "
            f"(1, n_samples, n_params); received {np.shape(posterior_draws)}. Pick one data set, e.g. draws[0]."
        )
    post = check_samples_2d(posterior_draws, "posterior_draws")
    if prior is not None and prior_draws is not None:
        raise ArgumentError("give either `prior` or `prior_draws`, not both.")
    if prior is not None:
        prior_draws = draw_prior(prior, post.shape[0])
        if param_names is None:
            param_names = getattr(prior, "param_names", None)
    sets, colors, legend = [post], [post_color], None  # a legend with one entry says nothing
    if prior_draws is not None:
        prior_arr = check_samples_2d(prior_draws, "prior_draws")
        if prior_arr.shape[1] != post.shape[1]:
            raise ShapeError(
                f"`prior_draws` {prior_arr.shape} must have {post.shape[1]} dimensions like the posterior."
            )
        sets, colors, legend = [prior_arr, post], [prior_color, post_color], ["Prior", "Posterior"]
    pts = None if true_params is None else np.atleast_2d(to_numpy(true_params, "true_params"))
    fig = draw_pair_grid(
        sets, param_labels(param_names, post.shape[1]), colors, diag="hist", upper="scatter", lower="kde",
        limits=None, points=pts, points_colors=[TRUTH_COLOR] * (0 if pts is None else len(pts)),
        legend_labels=legend, height=height, fig_size=fig_size,
    )
    return finish(fig, save_path)
