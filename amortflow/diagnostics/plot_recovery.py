"""Parameter recovery (estimate vs truth) and posterior z-score vs contraction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import median_abs_deviation

from amortflow.diagnostics._inputs import check_draws_and_truth
from amortflow.diagnostics._plot_utils import (
    BAND_COLOR,
    MAIN_COLOR,
    add_panel_text,
    finish,
    outer_labels,
    panel_grid,
    param_labels,
    style_axis,
)
from amortflow.diagnostics.metrics.errors import correlation, r_squared
from amortflow.diagnostics.metrics.posterior import posterior_contraction, posterior_z_score


def plot_recovery(
    post_samples: Any,
    prior_samples: Any,
    point_agg: Callable[..., np.ndarray] = np.median,
    uncertainty_agg: Callable[..., np.ndarray] | None = median_abs_deviation,
    param_names: Sequence[str] | None = None,
    *,
    add_corr: bool = True,
    add_r2: bool = True,
    color: str = MAIN_COLOR,
    n_row: int | None = None,
    n_col: int | None = None,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Posterior point estimates against the true parameters, one panel per parameter.

    Each data set is a dot at ``(truth, point_agg(draws))`` with an error bar of
    ``± uncertainty_agg(draws)``; the dashed line is perfect recovery. The panel reports the
    Pearson correlation ``r`` and the ``R²`` of the identity line (see
    :func:`~amortflow.diagnostics.metrics.r_squared`).

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D)
    point_agg : callable, default numpy.median
        Called as ``point_agg(draws, axis=1)``.
    uncertainty_agg : callable or None, default scipy.stats.median_abs_deviation
        Called as ``uncertainty_agg(draws, axis=1)``; ``None`` draws no error bars.
    param_names : sequence of str, optional
    add_corr, add_r2 : bool, default True
        Write ``r`` / ``R²`` into each panel.
    color, n_row, n_col, fig_size, save_path :
        Point colour, grid layout, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    estimates = np.asarray(point_agg(post, axis=1))
    errors = None if uncertainty_agg is None else np.asarray(uncertainty_agg(post, axis=1))
    r_values, r2_values = correlation(estimates, prior), r_squared(estimates, prior)
    labels = param_labels(param_names, prior.shape[1])
    fig, axes = panel_grid(prior.shape[1], fig_size=fig_size, n_rows=n_row, n_cols=n_col, panel_size=(3.8, 3.6))
    alpha = float(np.clip(30.0 / np.sqrt(prior.shape[0]), 0.25, 0.9))  # fainter dots when there are many
    for d, ax in enumerate(axes):
        ax.errorbar(
            prior[:, d], estimates[:, d], yerr=None if errors is None else errors[:, d], fmt="o", markersize=3.5,
            color=color, alpha=alpha, elinewidth=0.8, capsize=0,
        )
        low = min(prior[:, d].min(), np.nanmin(estimates[:, d]))
        high = max(prior[:, d].max(), np.nanmax(estimates[:, d]))
        pad = 0.05 * (high - low) if high > low else 1.0
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color=BAND_COLOR, linestyle="--", linewidth=1.2)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        text = []
        if add_corr:
            text.append(f"$r$ = {r_values[d]:.3f}")
        if add_r2:
            text.append(f"$R^2$ = {r2_values[d]:.3f}")
        if text:
            add_panel_text(ax, "\n".join(text))
        ax.set_title(labels[d])
        style_axis(ax)
    outer_labels(axes, "Ground truth", "Estimate")
    return finish(fig, save_path)


def plot_z_score_contraction(
    post_samples: Any,
    prior_samples: Any,
    param_names: Sequence[str] | None = None,
    *,
    color: str = MAIN_COLOR,
    fig_size: tuple[float, float] | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Posterior z-score against posterior contraction, one dot per data set (Schad et al. 2021).

    Good inference puts the dots at contraction near one (the data are informative) and
    z-scores near zero (the posterior is centred on the truth): large ``|z|`` with high
    contraction means over-confidence; low contraction means the data say little (or the
    prior is too narrow to learn from). The prior variance is the variance of
    ``prior_samples`` over data sets.

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D)
    param_names : sequence of str, optional
    color, fig_size, save_path :
        Dot colour, total size, and where to save.

    Returns
    -------
    matplotlib.figure.Figure
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    z_scores = posterior_z_score(post, prior)
    contraction = posterior_contraction(post, prior_samples=prior)
    labels = param_labels(param_names, prior.shape[1])
    fig, axes = panel_grid(prior.shape[1], fig_size=fig_size, panel_size=(3.8, 3.4))
    alpha = float(np.clip(30.0 / np.sqrt(prior.shape[0]), 0.25, 0.9))
    z_max = max(3.5, float(np.nanmax(np.abs(z_scores))) * 1.05)
    for d, ax in enumerate(axes):
        ax.axhspan(-2, 2, color=BAND_COLOR, alpha=0.15, linewidth=0)
        ax.axhline(0, color=BAND_COLOR, linewidth=1.0, linestyle="--")
        ax.scatter(contraction[:, d], z_scores[:, d], s=10, color=color, alpha=alpha, linewidths=0)
        ax.set_xlim(min(-0.05, float(np.nanmin(contraction[:, d])) - 0.05), 1.05)
        ax.set_ylim(-z_max, z_max)
        ax.set_title(labels[d])
        style_axis(ax)
    outer_labels(axes, "Posterior contraction", "Posterior z-score")
    return finish(fig, save_path)
